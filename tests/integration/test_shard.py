"""Sharding: `shard: I/N` and --shard split the probes, discovered targets included, among
N instances by the FNV-1a hash of each probe's name; --once prints the assignment."""

import re
import subprocess

from conftest import tocsind_path, wait_for

SHARD_LINE = re.compile(r"^  shard (\d+)/(\d+): (.+)$", re.M)
RAN_LINE = re.compile(r"^probe (.+) \(type \w+\): ", re.M)

PROBE_NAMES = [f"true-{i:02d}" for i in range(1, 13)]
# Closed ports on loopback: the tcp probe fails at once with "connection refused".
TARGETS = [f"127.0.0.1:{port}" for port in (1, 2, 3, 4, 5, 6)]


def fnv1a_shard(name, count):
    """The documented assignment: FNV-1a (64-bit) of the name and a zero byte, then
    MurmurHash3's fmix64 finalizer, modulo N."""
    mask = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for byte in name.encode() + b"\0":
        h = ((h ^ byte) * 0x100000001b3) & mask
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & mask
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & mask
    h ^= h >> 33
    return h % count


def probes_config(extra=""):
    lines = [extra, "interval: 10s", "timeout: 2s", "retention: [10s:1h]", "probes:"]
    for name in PROBE_NAMES:
        lines += [f"  - name: {name}", "    type: exec", "    command: [/bin/true]"]
    return "\n".join(lines) + "\n"


def run_once(tmp_path, cfg, *args):
    r = subprocess.run([tocsind_path(), "--config", str(cfg), "--once",
                        "--data-dir", str(tmp_path / "data"), *args],
                       capture_output=True, text=True, timeout=60)
    # An ASan build reports leaks and memory errors on stderr at exit.
    for report in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert report not in r.stderr, r.stderr[-4000:]
    return r


def assignment(out):
    return {m.group(3): (int(m.group(1)), int(m.group(2))) for m in SHARD_LINE.finditer(out)}


def test_three_shards_split_probes(tmp_path):
    cfg = tmp_path / "shard.yml"
    cfg.write_text(probes_config())
    ran = []
    for index in range(3):
        r = run_once(tmp_path, cfg, "--shard", f"{index}/3")
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        names = set(RAN_LINE.findall(r.stdout))
        expected = {n for n in PROBE_NAMES if fnv1a_shard(n, 3) == index}
        assert names == expected, out
        assert f"shard {index}/3: runs {len(expected)} of 12 probes" in r.stdout, out
        assert f"{len(expected)} probes, {len(expected)} succeeded, 0 failed" in r.stdout, out
        # Every run prints the whole assignment, the same in each instance.
        assert assignment(r.stdout) == {n: (fnv1a_shard(n, 3), 3) for n in PROBE_NAMES}, out
        ran.append(names)
    assert not ran[0] & ran[1]
    assert not ran[0] & ran[2]
    assert not ran[1] & ran[2]
    assert ran[0] | ran[1] | ran[2] == set(PROBE_NAMES)
    # A 12-probe config split three ways leaves no instance idle with these names.
    assert all(ran)


def test_without_shard_runs_everything(tmp_path):
    cfg = tmp_path / "shard.yml"
    cfg.write_text(probes_config())
    r = run_once(tmp_path, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(RAN_LINE.findall(r.stdout)) == set(PROBE_NAMES)
    assert not SHARD_LINE.search(r.stdout)


def test_config_key_and_override(tmp_path):
    cfg = tmp_path / "shard.yml"
    cfg.write_text(probes_config("shard: 1/3"))
    own = [n for n in PROBE_NAMES if fnv1a_shard(n, 3) == 1]

    r = subprocess.run([tocsind_path(), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"shard 1/3: runs {len(own)} of 12 probes" in r.stdout, r.stdout

    r = run_once(tmp_path, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(RAN_LINE.findall(r.stdout)) == set(own)

    # --shard wins over the file's key.
    r = run_once(tmp_path, cfg, "--shard", "0/2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(RAN_LINE.findall(r.stdout)) == {n for n in PROBE_NAMES
                                                if fnv1a_shard(n, 2) == 0}


def test_invalid_shard_values(tmp_path):
    cfg = tmp_path / "shard.yml"
    cfg.write_text(probes_config("shard: 3/3"))
    r = subprocess.run([tocsind_path(), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert re.search(r'shard\.yml:1:8: shard: "3/3" has I >= N, but .*expected I/N with '
                     r'0 <= I < N', r.stderr), r.stderr

    cfg.write_text(probes_config("shard: three"))
    r = subprocess.run([tocsind_path(), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert re.search(r'shard\.yml:1:8: shard: "three" is not of the form I/N', r.stderr), \
        r.stderr

    cfg.write_text(probes_config())
    for bad in ("1/0", "-1/3", "2", "3/3"):
        r = run_once(tmp_path, cfg, "--shard", bad)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert f'--shard: "{bad}"' in r.stderr, r.stderr
        assert not RAN_LINE.search(r.stdout)


def test_discovered_targets_split_across_two_shards(tmp_path):
    targets = tmp_path / "targets.yml"
    quoted = ", ".join(f'"{t}"' for t in TARGETS)
    targets.write_text(f"- targets: [{quoted}]\n  labels: {{ env: test }}\n")
    cfg = tmp_path / "shard.yml"
    cfg.write_text(f"""
interval: 10s
timeout: 2s
retention: [10s:1h]
probes:
  - name: local
    type: exec
    command: [/bin/true]
  - name: web
    type: tcp
    target: "${{target}}"
    discovery:
      file_sd: {{ files: ["{targets}"], refresh_interval: 10s }}
""")
    discovered = [f"web/{t}" for t in TARGETS]
    everything = set(discovered) | {"local"}
    ran = []
    for index in range(2):
        r = run_once(tmp_path, cfg, "--shard", f"{index}/2")
        out = r.stdout + r.stderr
        names = set(RAN_LINE.findall(r.stdout))
        expected = {n for n in everything if fnv1a_shard(n, 2) == index}
        assert names == expected, out
        assert assignment(r.stdout) == {n: (fnv1a_shard(n, 2), 2) for n in everything}, out
        assert f"shard {index}/2: runs {len(expected)} of 7 probes" in r.stdout, out
        # The template itself is not a probe and has no shard.
        assert "web" not in assignment(r.stdout)
        ran.append(names)
        # Each shard runs some of the template's targets, not all or none of them.
        assert 0 < len(names & set(discovered)) < len(discovered), out
    assert not ran[0] & ran[1]
    assert ran[0] | ran[1] == everything


def test_daemon_exports_only_its_shard(daemon_factory):
    text = probes_config().replace("interval: 10s", "interval: 1s").replace(
        "timeout: 2s", "timeout: 500ms").replace("retention: [10s:1h]", "retention: [1s:1h]")
    d = daemon_factory(text, extra_args=("--shard", "2/3"))
    own = {n for n in PROBE_NAMES if fnv1a_shard(n, 3) == 2}

    def exported():
        return set(re.findall(r'^tocsin_probe_success\{[^}]*probe="([^"]+)"[^}]*\} 1$', d.metrics(), re.M))

    wait_for(lambda: exported() == own, timeout=20, what="the shard's probes on /metrics")
    # Foreign probes never start, so not one of their series appears.
    body = d.metrics()
    for name in set(PROBE_NAMES) - own:
        assert f'probe="{name}"' not in body
    assert f"shard 2/3: runs {len(own)} of 12 probes" in d.log_text()
