"""The evaluator inside the real tocsind: a tcp probe against a loopback listener that is
taken down and brought back, next to the host probe, with alerting, recording and
threshold rules and an SLO over the probes' series. Checks /metrics (ALERTS, rule and SLO metrics) and the transitions
table of the state database, and that kill -9 during a pending period and after firing
neither delays the alert nor announces it again."""

import os
import signal
import sqlite3
import subprocess
import time

from conftest import tocsind_path, wait_for
from listener import Listener


RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe="svc"} == 0
        for: 6s
        labels: {team: ops}
        annotations:
          summary: "{{ $labels.probe }} is down"
      - record: svc:probe_success:avg1m
        expr: avg_over_time(tocsin_probe_success{probe="svc"}[1m])
      - record: host:load1
        expr: max without (probe) (node_load1)
      - alert: HostOverloaded
        threshold:
          expr: node_load1
          warn: 10000
          crit: 20000
      - alert: SlowService
        threshold:
          expr: tocsin_probe_duration_seconds{probe="svc"}
          direction: above
          warn: 5
          crit: 10
slos:
  - name: svc-availability
    objective: 99
    period: 1d
    probe: svc
"""


def config(port, rules_path):
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: host
    type: host
    interval: 1s
  - name: svc
    type: tcp
    target: "127.0.0.1:{port}"
    interval: 1s
    timeout: 500ms
"""


def transitions(d):
    db = os.path.join(d.data_dir, "state", "state.db")
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(
            "SELECT time_ms, alertname, from_state, to_state FROM transitions ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def states(d, alertname):
    return [(t, f, s) for (t, a, f, s) in transitions(d) if a == alertname]


def alerts_line(d, state):
    return [line for line in d.metrics().splitlines()
            if line.startswith("ALERTS{") and f'alertstate="{state}"' in line
            and 'alertname="ServiceDown"' in line]


def kill9(d):
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.log.close()


def test_rules_lifecycle_through_kill9(daemon_factory, tmp_path):
    listener = Listener()
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    d = daemon_factory(config(listener.port, rules_path))

    # Up: the recording rule and the SLO metrics appear, no alert.
    wait_for(lambda: "svc:probe_success:avg1m" in d.metrics(), timeout=20,
             what="the recording rule's series")
    wait_for(lambda: 'tocsin_slo_objective_ratio{slo="svc-availability"} 0.99' in d.metrics(),
             timeout=40, what="the SLO's objective")
    assert 'tocsin_rule_evaluation_duration_seconds{rule_group="svc"}' in d.metrics()
    wait_for(lambda: "host:load1" in d.metrics(), timeout=10, what="a rule over the host probe")
    assert not alerts_line(d, "pending") and not alerts_line(d, "firing")

    # Down: pending, then kill -9 two seconds into the pending period.
    listener.stop()
    wait_for(lambda: alerts_line(d, "pending"), timeout=15, what="ServiceDown pending")
    pending = wait_for(lambda: states(d, "ServiceDown"), timeout=5, what="pending row")
    assert pending[-1][1:] == ("inactive", "pending")
    pending_at = pending[-1][0]
    time.sleep(2)
    kill9(d)
    time.sleep(1)
    d.start()

    # It fires at the original time (pending + 6 s), not 6 s after the restart.
    fired = wait_for(lambda: [r for r in states(d, "ServiceDown") if r[2] == "firing"],
                     timeout=20, what="ServiceDown firing")
    assert len(fired) == 1
    delay = (fired[0][0] - pending_at) / 1000.0
    assert 6 <= delay < 8.5, f"fired {delay:.1f}s after it became pending"
    assert len([r for r in states(d, "ServiceDown") if r[2] == "pending"]) == 1
    wait_for(lambda: alerts_line(d, "firing"), timeout=10, what="ALERTS firing in /metrics")
    assert 'team="ops"' in alerts_line(d, "firing")[0]

    # Kill -9 while firing: after the restart it is still firing and not announced again.
    kill9(d)
    d.start()
    wait_for(lambda: alerts_line(d, "firing"), timeout=15, what="ALERTS firing after restart")
    time.sleep(3)
    assert len([r for r in states(d, "ServiceDown") if r[2] == "firing"]) == 1

    # Back up: resolved once.
    listener.start()
    wait_for(lambda: [r for r in states(d, "ServiceDown") if r[1:] == ("firing", "inactive")],
             timeout=20, what="ServiceDown resolved")
    wait_for(lambda: not alerts_line(d, "firing"), timeout=10, what="ALERTS gone")
    rows = states(d, "ServiceDown")
    assert [r[1:] for r in rows] == [("inactive", "pending"), ("pending", "firing"),
                                     ("firing", "inactive")]

    # The SLO counts failed runs. A counter is counted from its second reading and the SLO
    # reads every 30 s (at :00 and :30), so the outages before and during the restarts may
    # fall before its first reading. Once it has read twice (the SLI appears), a short
    # outage shows in the next reading's burn rate.
    def slo_series(name):
        return [float(line.split()[-1]) for line in d.metrics().splitlines()
                if line.startswith(name + "{") and 'window="1d"' in line]
    wait_for(lambda: slo_series("tocsin_slo_sli_ratio"), timeout=75,
             what="the SLO's 1d SLI")
    listener.stop()
    time.sleep(3)
    listener.start()

    def burn_1d():
        burn = slo_series("tocsin_slo_burn_rate")
        return burn if burn and burn[0] > 0 else None
    burn = wait_for(burn_1d, timeout=45, what="a 1d burn rate above 0; SLO series: %s" % [
        line for line in d.metrics().splitlines() if line.startswith("tocsin_slo")])
    assert burn[0] > 0
    d.stop()
    listener.stop()


def test_invalid_rule_file_rejects_start_and_reload(daemon_factory, tmp_path):
    listener = Listener()
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    d = daemon_factory(config(listener.port, rules_path))
    wait_for(lambda: "svc:probe_success:avg1m" in d.metrics(), timeout=20,
             what="the recording rule's series")

    # A broken rule file: the reload is rejected and the old rules keep running.
    rules_path.write_text(RULES.replace("== 0", "== )"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in d.log_text(), timeout=10, what="rejected reload")
    assert "rules.yml:7:" in d.log_text()
    listener.stop()
    wait_for(lambda: alerts_line(d, "pending"), timeout=15, what="old rules still evaluated")
    d.stop()

    # The same file at start: tocsind refuses to start and names the position.
    d2 = daemon_factory(config(listener.port, rules_path), start=False)
    r = subprocess.run([tocsind_path(), "--config", d2.config_path, "--data-dir",
                        d2.data_dir, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "rules.yml:7:" in r.stderr


def test_restored_alert_resolves_after_first_probe_runs(daemon_factory, tmp_path):
    """An alert that fired before a restart, whose condition cleared while tocsind was
    down, resolves once the probes have run. With 1 s probes that is about 2 s after the
    start, not the 15 s of the top-level default interval and timeout, which no probe uses."""
    listener = Listener()
    listener.stop()
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES.replace("        for: 6s\n", ""))
    d = daemon_factory(config(listener.port, rules_path))
    wait_for(lambda: alerts_line(d, "firing"), timeout=20, what="ServiceDown firing")
    assert d.stop() == 0

    listener.start()
    try:
        started = time.monotonic()
        d.start()
        wait_for(lambda: states(d, "ServiceDown")[-1][2] == "inactive", timeout=20,
                 what="ServiceDown resolved after the restart")
        resolved = time.monotonic() - started
        assert resolved < 8, f"the restored alert resolved {resolved:.1f}s after the start"
        assert not alerts_line(d, "firing")
    finally:
        listener.stop()


EARLY_RULES = """
groups:
  - name: slow
    interval: 8s
    rules:
      - alert: TargetDown
        expr: tocsin_probe_success{probe="svc"} == 0
"""


def group_value(d, name):
    for line in d.metrics().splitlines():
        if line.startswith(name + '{rule_group="slow"}'):
            return float(line.split()[-1])
    return None


def test_probe_failure_evaluates_group_out_of_turn(daemon_factory, tmp_path):
    """A group evaluated every 8 s raises an alert on a failed probe run at once, not at
    its next turn: the changed outcome makes the evaluator run it out of turn. A second
    change within the spacing (2 s for this interval) waits for the spacing, and still
    comes before the group's own turn."""
    listener = Listener()
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(EARLY_RULES)
    d = daemon_factory(f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{listener.port}"
    interval: 1s
    timeout: 500ms
""")
    early = "tocsin_rule_group_early_evaluations_total"
    last = "tocsin_rule_group_last_evaluation_timestamp_seconds"
    wait_for(lambda: group_value(d, early) is not None, timeout=15, what="the group's series")

    # Wait for a regular turn (the last evaluation moves while the early count does not),
    # so that the next one is 8 s away.
    before = (group_value(d, early), group_value(d, last))
    wait_for(lambda: group_value(d, last) != before[1] and group_value(d, early) == before[0],
             timeout=20, interval=0.05, what="a regular turn of the group")
    regular_at = group_value(d, last)
    time.sleep(2.2)

    stopped_at = time.time()
    listener.stop()
    fired = wait_for(lambda: [r for r in states(d, "TargetDown") if r[2] == "firing"],
                     timeout=10, interval=0.05, what="TargetDown firing")
    fired_at = fired[0][0] / 1000.0
    assert fired_at - stopped_at < 1.5, f"fired {fired_at - stopped_at:.2f}s after the stop"
    assert fired_at < regular_at + 7.9, "fired at the group's regular turn"
    assert group_value(d, early) == before[0] + 1

    # Back up right away: the out-of-turn evaluation waits for the 2 s spacing.
    listener.start()
    resolved = wait_for(lambda: [r for r in states(d, "TargetDown") if r[2] == "inactive"],
                        timeout=10, interval=0.05, what="TargetDown resolved")
    resolved_at = resolved[0][0] / 1000.0
    assert 1.9 <= resolved_at - fired_at, f"resolved {resolved_at - fired_at:.2f}s after firing"
    assert resolved_at < regular_at + 7.9, "resolved at the group's regular turn"
    assert group_value(d, early) == before[0] + 2
    d.stop()
    listener.stop()
