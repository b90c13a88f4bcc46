"""Helpers for the stimulation black-box tests (test_stim*.py): a config writer with
GPIO wiring, readers for the simulated backend's state file and trace (SPEC §5), and
small analysis functions for pulse trains.

The sim backend keeps the PHYSICAL level of every line: an active-low line (`!N`)
is inactive at physical 1.
"""

import json
import os
import socket
import time

# Wiring used by most stimulation tests.
#   room 1: two channels with pulse lines, an audible alarm line, an active-low interlock
#   room 2: gate only (the stimulator sets the rate), a non-audible alarm line
#   room 3: everything active-low
STIM_ROOMS = """\
[room 1]
name = Lotus
gate = 17, 27
pulse = 22, 23
alarm = 5
audible = yes
interlock = !6

[room 2]
name = Bamboo
gate = 24
alarm = 16

[room 3]
name = Cedar
gate = !13
pulse = !12
alarm = !21
"""

# STIM_ROOMS's lines by room, as the tests name them.
R1_GATES = ("17", "27")
R1_PULSES = ("22", "23")
R1_ALARM = "5"
R1_INTERLOCK = "6"           # !6: tripped at physical 0, clear at 1

# Outputs of STIM_ROOMS (plus the heartbeat) with their inactive PHYSICAL level.
STIM_OUTPUTS = {"17": 0, "27": 0, "22": 0, "23": 0, "5": 0,
                "24": 0, "16": 0,
                "13": 1, "12": 1, "21": 1}
HEARTBEAT = "26"

STIM_PROFILES = """\
[profile p2]
description = 2 Hz continuous, 1 ms pulses
mode = continuous
frequency_hz = 2
pulse_width_us = 1000
duration_s = 600

[profile p100]
description = 100 Hz continuous
mode = continuous
frequency_hz = 100
pulse_width_us = 200
duration_s = 600

[profile dd]
description = dense-disperse 2/100 Hz, 1 s at each rate
mode = dense-disperse
frequency_hz = 2
alt_frequency_hz = 100
switch_s = 1
pulse_width_us = 200
duration_s = 600

[profile inter]
description = 10 Hz intermittent, 1 s on / 1 s off
mode = intermittent
frequency_hz = 10
on_s = 1
off_s = 1
pulse_width_us = 500
duration_s = 600

[profile delayed]
description = 2 Hz after a 1 s delay, for 2 s
mode = continuous
frequency_hz = 2
delay_s = 1
duration_s = 2

[profile safe]
description = pregnancy-safe 2 Hz
mode = continuous
frequency_hz = 2
duration_s = 600
pregnancy_safe = yes
"""


def stim_config(rooms=STIM_ROOMS, profiles=STIM_PROFILES, heartbeat=HEARTBEAT,
                heartbeat_hz=10, session_min="1s", session_max="60m", stim_max="30m",
                safety=None, checkin_interval=None, escalate_after=None,
                sim_state=None, sim_trace="trace", require_needle_count=None, extra=""):
    """A complete acud.conf on the sim backend. Relative paths resolve against the
    config file's directory: socket run/acud.sock, state_dir state, trace `trace`."""
    out = ["; acud stimulation black-box test config",
           "[daemon]",
           "socket = run/acud.sock",
           "state_dir = state",
           "profiles_dir = profiles.d",
           "log_level = debug",
           "",
           "[gpio]",
           "backend = sim"]
    if sim_trace:
        out.append(f"sim_trace = {sim_trace}")
    if sim_state:
        out.append(f"sim_state = {sim_state}")
    if heartbeat is not None:
        out.append(f"heartbeat = {heartbeat}")
        out.append(f"heartbeat_hz = {heartbeat_hz}")
    out += ["", "[limits]", f"session_min = {session_min}", f"session_max = {session_max}"]
    if stim_max is not None:
        out.append(f"stim_max = {stim_max}")
    out += ["", "[safety]"]
    if require_needle_count is not None:
        out.append(f"require_needle_count = {require_needle_count}")
    for k, v in (safety or {}).items():
        out.append(f"{k} = {v}")
    out += ["", "[alarm]"]
    if checkin_interval is not None:
        out.append(f"checkin_interval = {checkin_interval}")
    if escalate_after is not None:
        out.append(f"escalate_after = {escalate_after}")
    out += ["", rooms, profiles, extra]
    return "\n".join(out) + "\n"


# --- requests the stimulation tests share --------------------------------------

def start(d, room="1", profile="p2", stim=False, flags=None, duration_s=600, needles=2,
          patient="T1"):
    req = {"cmd": "start", "room": room, "duration_s": duration_s, "needles": needles,
           "patient": patient, "profile": profile, "stim": stim}
    if flags:
        req["flags"] = flags
    return d.request(req)


def start_ok(d, *a, **kw):
    rep = start(d, *a, **kw)
    assert rep.get("ok") is True, f"start refused: {rep!r}"
    return rep["room"]


def start_armed(d, room="1", profile="p2", gates=R1_GATES):
    """start --stim, then wait until each of the room's gates reads active."""
    r = start_ok(d, room, profile, stim=True)
    for ln in gates:
        wait_state(state_path(d), ln, 1)
    return r


def stim(d, room, on):
    return d.request({"cmd": "stim", "room": room, "on": on})


# --- sim state file ----------------------------------------------------------

def state_path(d, name="gpio-sim.state"):
    return os.path.join(d.state_dir, name)


def read_state(path):
    """The sim state file as {line: physical level}; asserts its format."""
    with open(path) as f:
        text = f.read()
    levels = {}
    for ln in text.splitlines():
        assert "=" in ln, f"{path}: bad line {ln!r}"
        k, v = ln.split("=", 1)
        assert v in ("0", "1"), f"{path}: bad level in {ln!r}"
        assert k not in levels, f"{path}: line {k} twice"
        levels[k] = int(v)
    return levels


# --- trace -------------------------------------------------------------------

def read_trace(path):
    """The trace as a list of (monotonic_ns, line, level)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if not ln:
                continue
            parts = ln.split()
            assert len(parts) == 3, f"{path}: bad trace line {ln!r}"
            ns, line, level = parts
            assert level in ("0", "1"), f"{path}: bad level in {ln!r}"
            out.append((int(ns), line, int(level)))
    return out


def line_events(trace, line, since=None, until=None):
    """[(ns, level)] of one line, optionally restricted to since <= ns <= until."""
    return [(ns, lv) for ns, ln, lv in trace if ln == line
            and (since is None or ns >= since) and (until is None or ns <= until)]


def edges(trace, line, to_level, since=None, until=None):
    """Times (ns) at which the line was written to_level coming from the other level."""
    out = []
    prev = None
    for ns, lv in line_events(trace, line):
        if prev is not None and prev != lv and lv == to_level:
            if (since is None or ns >= since) and (until is None or ns <= until):
                out.append(ns)
        prev = lv
    return out


def intervals(trace, line, active_level, since=None):
    """[(start_ns, end_ns or None)] during which the line was at active_level."""
    out = []
    start = None
    for ns, lv in line_events(trace, line):
        if since is not None and ns < since:
            start = ns if lv == active_level else None
            continue
        if lv == active_level and start is None:
            start = ns
        elif lv != active_level and start is not None:
            out.append((start, ns))
            start = None
    if start is not None:
        out.append((start, None))
    return out


def pulse_stats(rises, freq):
    """Rate and jitter of rising edges (ns) against the ideal train t0 + n/f, n the
    nearest grid index from the first edge (so pulses skipped during a stall do not
    count as rate error), t0 the median of t - n/f (so a late first edge does not
    offset every deviation). The rate is the least-squares slope of edge time
    against n. Returns a dict (ms / Hz / %)."""
    period = 1e9 / freq
    ns_idx = [round((t - rises[0]) / period) for t in rises]
    offs = sorted(t - n * period for t, n in zip(rises, ns_idx))
    t0 = offs[len(offs) // 2]
    devs = [(t - (t0 + n * period)) / 1e9 for t, n in zip(rises, ns_idx)]
    mean = sum(devs) / len(devs)
    sd = (sum((x - mean) ** 2 for x in devs) / len(devs)) ** 0.5
    rate = float("nan")
    if len(rises) > 1 and ns_idx[-1] > 0:
        mn = sum(ns_idx) / len(ns_idx)
        mt = sum(rises) / len(rises)
        num = sum((n - mn) * (t - mt) for n, t in zip(ns_idx, rises))
        den = sum((n - mn) ** 2 for n in ns_idx)
        rate = 1e9 / (num / den)
    skipped = ns_idx[-1] + 1 - len(set(ns_idx))
    return {"n": len(rises), "skipped": skipped, "rate_hz": rate,
            "rate_err_pct": 100.0 * (rate - freq) / freq,
            "jitter_sd_ms": sd * 1e3, "jitter_max_ms": max(abs(x) for x in devs) * 1e3,
            "jitter_p90_ms": sorted(abs(x) for x in devs)[int(0.9 * (len(devs) - 1))] * 1e3}


def mono_ns():
    """CLOCK_MONOTONIC, the clock of the trace's timestamps."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_for(pred, timeout=6.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last {last!r})")


def wait_state(path, line, level, timeout=6.0):
    """Polls the sim state file until line reads level."""
    return wait_for(lambda: os.path.exists(path) and read_state(path).get(line) == level,
                    timeout, f"line {line} at {level} in {path}")


def pipelined(d, reqs):
    """Every request in one write on one connection: acud reads them in one
    go, faster than any debounce period, and answers them in one loop turn."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(d.socket)
        s.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
        buf = b""
        while buf.count(b"\n") < len(reqs):
            chunk = s.recv(65536)
            assert chunk, "acud closed the connection"
            buf += chunk
    reps = [json.loads(x) for x in buf.splitlines()]
    assert all(r.get("ok") for r in reps), reps
    return reps
