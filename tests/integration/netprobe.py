"""Helpers for the tcp, dns and icmp probe tests: run `tocsind --once` on a config and
read back its samples and each probe's status and reason."""

import os
import re
import subprocess

from conftest import tocsind_path

SAMPLE = re.compile(r'^  ([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
RESULT = re.compile(r'^probe (\S+) \(type (\S+)\): (\S+) in [0-9.]+ ms: (.*)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class OnceResult:
    """Parsed output of one `tocsind --once` run."""

    def __init__(self, returncode, output):
        self.returncode = returncode
        self.output = output
        self.samples = []  # (name, labels dict, value)
        self.results = {}  # probe name -> (status, reason)
        for line in output.splitlines():
            m = SAMPLE.match(line)
            if m:
                labels = dict(LABEL.findall(m.group(2)))
                self.samples.append((m.group(1), labels, float(m.group(3))))
                continue
            m = RESULT.match(line)
            if m:
                self.results[m.group(1)] = (m.group(3), m.group(4))

    def status(self, probe):
        assert probe in self.results, f"no result for {probe}:\n{self.output}"
        return self.results[probe][0]

    def reason(self, probe):
        assert probe in self.results, f"no result for {probe}:\n{self.output}"
        return self.results[probe][1]

    def value(self, probe, name, **labels):
        """The value of one sample, or None when the probe did not emit it."""
        for n, l, v in self.samples:
            if n == name and l.get("probe") == probe and all(l.get(k) == w for k, w in labels.items()):
                return v
        return None


def write_config(directory, text):
    path = os.path.join(directory, "tocsin.yml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def run_once(directory, config_text, prefix=(), timeout=60):
    """Runs tocsind --once on config_text, with `prefix` (a command such as unshare)
    before it. Returns an OnceResult; stdout and stderr are merged."""
    path = write_config(directory, config_text)
    cmd = list(prefix) + [tocsind_path(), "--once", "--log-level", "debug", "--config", path]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in proc.stdout, proc.stdout[-4000:]
    return OnceResult(proc.returncode, proc.stdout)
