"""The real-time pulse path (issue 19), black-box on the simulated backend.

With real-time priority (these tests run as root), pulses keep their count and
rate while a CPU hog runs on every core; without it (CAP_SYS_NICE dropped and
RLIMIT_RTPRIO 0, as for an unprivileged checkout) acud says so once and pulses
on its event loop as before. Skipped pulses are counted per channel, in the
status and the history, and a channel missing more than [alarm] timing_share
of its pulses raises the low timing alarm. Generous bounds: the strict
figures are `make bench`'s.
"""

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import alarm
from simgpio import (STIM_PROFILES, edges, mono_ns, read_trace, start_ok, state_path, stim,
                     stim_config, wait_state)

pytestmark = pytest.mark.xdist_group("timing")

# Real-time priority refused as it is to an unprivileged user: no CAP_SYS_NICE
# (root keeps it otherwise, whatever the rlimit) and RLIMIT_RTPRIO 0.
NO_RT = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice",
         "prlimit", "--rtprio=0", "--"]
NOT_PERMITTED = "real-time pulse thread not permitted"


def trace_of(d):
    return read_trace(os.path.join(d.dir, "trace"))


def fifo_threads(pid):
    """Threads of pid under SCHED_FIFO (policy 1, field 41 of stat)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if int(fields[41 - 3]) == 1:
            out.append((int(tid), int(fields[40 - 3])))
    return out


def history(d, room):
    return d.ok({"cmd": "history", "room": room, "limit": 1000})["entries"]


def no_rt_daemon(make_daemon, monkeypatch, conf_text):
    wrapper = os.environ.get("ACUD_WRAPPER", "")
    monkeypatch.setenv("ACUD_WRAPPER", shlex.join(NO_RT) + " " + wrapper)
    return make_daemon(conf_text=conf_text)


def rate_check(rises, t0, t1, hz):
    """Pulses counted on the profile's grid over [t0, t1): count, gaps."""
    n = len([t for t in rises if t0 <= t < t1])
    expect = (t1 - t0) / 1e9 * hz
    gaps = [(b - a) / 1e6 for a, b in zip(rises, rises[1:]) if t0 <= a < t1]
    return n, expect, gaps


def test_rt_thread_runs(make_daemon):
    d = make_daemon(conf_text=stim_config())
    assert "pulses and cut-offs on a real-time thread (SCHED_FIFO priority 40)" in d.stderr()
    fifo = fifo_threads(d.pid)
    assert len(fifo) == 1 and fifo[0][1] == 40, fifo
    # the event loop itself is not real-time
    assert d.pid not in [t for t, _ in fifo]


def test_rt_pulses_keep_rate_under_cpu_hog(make_daemon):
    """A busy loop on every core for 2 s: the 100 Hz train keeps its count and
    rate (the thread outranks them), and no pulse is skipped."""
    d = make_daemon(conf_text=stim_config())
    sp = state_path(d)
    start_ok(d, "1", "p100", stim=True)
    wait_state(sp, "17", 1)
    time.sleep(0.3)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        t0 = mono_ns()
        time.sleep(2.0)
        t1 = mono_ns()
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    r = d.status("1")
    rises = edges(trace_of(d), "22", 1, since=t0 - 20_000_000, until=t1 + 20_000_000)
    n, expect, gaps = rate_check(rises, t0, t1, 100)
    print(f"\nunder {len(hogs)} CPU hogs: {n} pulses in {(t1 - t0) / 1e9:.3f} s "
          f"(expected {expect:.0f}); gaps {min(gaps):.2f}..{max(gaps):.2f} ms; "
          f"missed {r['stim']['missed_pulses']}")
    # Generous (make check runs beside other workers): the sim backend writes
    # a file per edge, which a busy disk can hold up now and then.
    missed = r["stim"]["missed_pulses"]
    assert n >= 0.97 * expect and n <= expect + 2, (n, expect)
    assert missed <= 0.03 * expect, r["stim"]
    assert min(gaps) > 5.0, f"pulses closer than half a period: {min(gaps)} ms"


def test_rt_expiry_cut_on_time_under_cpu_hog(make_daemon):
    """The gate-off at expiry is the thread's planned cut: on time although the
    event loop competes with a hog on every core."""
    d = make_daemon(conf_text=stim_config())
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        t_req = mono_ns()
        start_ok(d, "1", "p100", stim=True, duration_s=2)
        wait_state(state_path(d), "17", 1)
        time.sleep(2.3)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    tr = trace_of(d)
    on = edges(tr, "17", 1)[-1]
    off = edges(tr, "17", 0, since=on)[0]
    late_ms = (off - on - 2_000_000_000) / 1e6
    print(f"\nexpiry under CPU hogs: gate off {late_ms:.3f} ms after gate-on + 2 s")
    # Never before 2 s from the request (the session's clock is read after it
    # arrives); the gate-on line itself may be written a few ms after that
    # reading under the hogs, so only the upper bound is against it.
    assert off >= t_req + 2_000_000_000, (off - t_req) / 1e6
    assert late_ms < 10.0, late_ms
    d.wait_room("1", lambda r: r["state"] == "due", what="due")
    assert not edges(tr, "22", 1, since=off)
    ents = history(d, "1")
    gate_off = [e for e in ents if e.get("type") == "gate" and e.get("on") is False]
    assert gate_off and gate_off[0]["cause"] == "expiry", gate_off


def test_rt_fallback_logs_once_and_pulses(make_daemon, monkeypatch):
    """Real-time priority refused: said once (a reload does not say it again),
    no real-time thread, and the loop sends the pulses as before."""
    d = no_rt_daemon(make_daemon, monkeypatch, stim_config())
    assert fifo_threads(d.pid) == []
    start_ok(d, "1", "p100", stim=True)
    wait_state(state_path(d), "17", 1)
    t0 = mono_ns()
    time.sleep(1.0)
    t1 = mono_ns()
    d.ok({"cmd": "reload"})
    os.kill(d.pid, signal.SIGHUP)
    time.sleep(0.3)
    rises = edges(trace_of(d), "22", 1, since=t0 - 20_000_000, until=t1 + 20_000_000)
    n, expect, _ = rate_check(rises, t0, t1, 100)
    r = d.status("1")
    skipped = r["stim"]["missed_pulses"]
    print(f"\nevent-loop pulses: {n} in {(t1 - t0) / 1e9:.3f} s (expected {expect:.0f}), "
          f"{skipped} skipped")
    assert n + skipped >= expect - 3 and n <= expect + 2, (n, skipped, expect)
    err = d.stderr()
    assert err.count(NOT_PERMITTED) == 1, err
    assert "Operation not permitted" in err and "LimitRTPRIO=40" in err


def test_rt_fallback_no_burst_after_stall(make_daemon, monkeypatch):
    """The loop's own train after a stall skips, never bursts (as before)."""
    d = no_rt_daemon(make_daemon, monkeypatch, stim_config())
    start_ok(d, "1", "p100", stim=True)
    wait_state(state_path(d), "17", 1)
    time.sleep(0.3)
    t_stop = mono_ns()
    os.kill(d.pid, signal.SIGSTOP)
    time.sleep(0.2)
    os.kill(d.pid, signal.SIGCONT)
    time.sleep(0.4)
    rises = edges(trace_of(d), "22", 1, since=t_stop - 100_000_000)
    worst = max(len([u for u in rises if t <= u < t + 10_000_000]) for t in rises)
    assert worst <= 2, f"{worst} pulses within one 10 ms period after a stall"
    r = d.status("1")
    assert r["stim"]["missed_pulses"] >= 10, r["stim"]
    assert alarm(r, "timing") is not None


def _stall(d, secs):
    os.kill(d.pid, signal.SIGSTOP)
    try:
        time.sleep(secs)
    finally:
        os.kill(d.pid, signal.SIGCONT)


@pytest.mark.parametrize("rt", [True, False], ids=["rt", "loop"])
def test_timing_alarm_on_skipped_pulses(make_daemon, monkeypatch, rt):
    """A stall of 300 ms at 100 Hz after 0.5 s: about 30 of 80 pulses missed on
    both channels, over the default 1 % share: the low timing alarm, the counts
    per channel in the status, a timing record in the history, and the
    session's counts in its finish record."""
    conf = stim_config()
    d = make_daemon(conf_text=conf) if rt else no_rt_daemon(make_daemon, monkeypatch, conf)
    sp = state_path(d)
    start_ok(d, "1", "p100", stim=True)
    wait_state(sp, "17", 1)
    time.sleep(0.5)
    _stall(d, 0.3)
    # The thread may report the late pulses in more than one piece, and the
    # first piece can already raise the alarm: wait for the whole stall.
    r = d.wait_room("1", lambda x: alarm(x, "timing") is not None and
                    all(c["missed_pulses"] >= 20 for c in x["stim"]["channels"]),
                    timeout=5, what="timing alarm and 20 missed pulses a channel")
    a = alarm(r, "timing")
    assert a["priority"] == "low"
    chans = r["stim"]["channels"]
    assert all(c["missed_pulses"] >= 20 for c in chans), chans
    assert r["stim"]["missed_pulses"] >= 20
    assert r["stim"]["armed"] is True, "late pulses are not a stop cause"
    ents = history(d, "1")
    rec = [e for e in ents if e.get("type") == "timing"]
    assert rec and rec[-1]["missed_pulses"] >= 1, rec
    assert {c["channel"] for c in rec[-1]["channels"]} == {1, 2}, rec[-1]
    raised = [e for e in ents if e.get("type") == "alarm" and e.get("kind") == "timing"]
    assert raised, [e.get("type") for e in ents]
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 2})
    session = [e for e in history(d, "1") if e.get("type") == "session"][-1]["session"]
    assert session["stim"]["missed_pulses"] >= 20, session["stim"]
    assert all(c["missed_pulses"] >= 20 for c in session["stim"]["channels"])
    assert alarm(d.status("1"), "timing") is None, "finish clears the timing alarm"


def test_timing_share_holds_the_alarm(make_daemon):
    """timing_share = 100%: missed pulses are counted, the alarm never comes."""
    d = make_daemon(conf_text=stim_config().replace("[alarm]", "[alarm]\ntiming_share = 100%"))
    start_ok(d, "1", "p100", stim=True)
    wait_state(state_path(d), "17", 1)
    time.sleep(0.3)
    _stall(d, 0.2)
    d.wait_room("1", lambda x: x["stim"]["missed_pulses"] >= 10, timeout=5, what="missed")
    time.sleep(0.2)
    assert alarm(d.status("1"), "timing") is None


def test_rt_stop_leaves_no_pulse(make_daemon):
    """stim off, stop and a flag: no pulse after the gate went off, and the
    pulse line is low (the thread let go of the channel first)."""
    d = make_daemon(conf_text=stim_config())
    sp = state_path(d)
    for how in ("stim", "stop", "flag"):
        start_ok(d, "1", "p100", stim=True)
        wait_state(sp, "17", 1)
        time.sleep(0.2)
        if how == "stim":
            stim(d, "1", False)
        elif how == "stop":
            d.ok({"cmd": "stop", "room": "1"})
        else:
            d.ok({"cmd": "flag", "room": "1", "flags": ["pacemaker"]})
        tr = trace_of(d)
        off = edges(tr, "17", 0)[-1]
        time.sleep(0.1)
        assert not edges(trace_of(d), "22", 1, since=off), how
        assert not edges(trace_of(d), "23", 1, since=off), how
        state = d.status("1")["state"]
        if state == "running":
            d.ok({"cmd": "stop", "room": "1"})
        d.ok({"cmd": "finish", "room": "1", "removed": 2})
