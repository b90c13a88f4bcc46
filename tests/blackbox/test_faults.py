"""Fault paths of stimulation (issue 13; SPEC S5, S7, §4 timing, §5 lines), black-box on
the simulated GPIO backend with its trace. One test (or a few) per finding:

  1  a failed GPIO write drives the room's outputs off, lights the gpio-fault alarm
     line at once, stops the heartbeat until reload, and the command is not `ok`;
  2  an interlock trip that clears before the daemon reads the line still trips;
  3  arming reads the interlock fresh;
  5  an unreadable interlock counts as tripped and raises gpio-fault;
  6  reloads re-check armed rooms and keep the pulse phase and held inputs; signals
     that would end the process leave the outputs inactive; a line named by offset
     and by name is used twice; a pulse caught high by a stall is ended and counted.

(Finding 4, a save failing inside a commit, belongs to the save path.)

The trace (`MONOTONIC_NS LINE LEVEL`, simgpio.read_trace) records every level the
daemon drove, also when writing the state file then failed: it is what the daemon
tried. A transient write failure is made by putting sim_state on a small tmpfs and
filling it for one command (needs root for mount; skipped otherwise).
"""

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import ACUD, alarm, err_code, run
from simgpio import (HEARTBEAT, R1_ALARM, R1_GATES, R1_INTERLOCK, R1_PULSES, intervals,
                     line_events, mono_ns, read_state, read_trace, start, start_armed, start_ok,
                     state_path, stim, stim_config, wait_for, wait_state)

# make check runs the suite in parallel: the files that measure pulse timing
# share one worker, so they never measure each other.
pytestmark = pytest.mark.xdist_group("timing")

# The high alarm's lamp flashes at 2 Hz: 250 ms on, 250 ms off (SPEC §4).
NS_HALF_HIGH = 250_000_000

TRIP, CLEAR = 0, 1


def trace_of(d):
    return read_trace(os.path.join(d.dir, "trace"))


def history(d, room=None):
    req = {"cmd": "history", "limit": 1000}
    if room:
        req["room"] = room
    return d.ok(req)["entries"]


def one_write(d, *reqs, timeout=10.0):
    """Sends every request in ONE write on one connection; returns the replies."""
    with d.connect() as c:
        c.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
        return [c.recv(timeout) for _ in reqs]


def actives_after(trace, line, t_ns, active_level=1):
    return [(ns, lv) for ns, lv in line_events(trace, line, since=t_ns + 1) if lv == active_level]


# --- a transient write failure ----------------------------------------------------

class FullDisk:
    """A small tmpfs for sim_state that can be filled and emptied again."""

    def __init__(self, path):
        self.path = path
        self.filler = os.path.join(path, "filler")

    def mount(self):
        os.makedirs(self.path, exist_ok=True)
        rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs",
                             self.path], capture_output=True)
        if rc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {rc.stderr.decode().strip()}")

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)
        # Writing the state file's temporary copy must now fail.
        probe = os.path.join(self.path, "probe")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with pytest.raises(OSError):
                os.write(fd, b"x" * 64)
        finally:
            os.close(fd)
            os.remove(probe)

    def empty(self):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.filler)

    def umount(self):
        subprocess.run(["umount", "-l", self.path], capture_output=True)


GATE_ONLY_ROOMS = """\
[room 1]
name = Lotus
gate = 17
alarm = 5

[room 2]
name = Bamboo
gate = 24
alarm = 16
"""


@pytest.fixture
def fulldisk_daemon(make_daemon):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs for sim_state")
    d = make_daemon(conf_text=stim_config(rooms=GATE_ONLY_ROOMS, sim_state="simfs/gpio.state"),
                    start=False)
    disk = FullDisk(os.path.join(d.dir, "simfs"))
    disk.mount()
    try:
        d.start()
        yield d, disk
    finally:
        if d.alive():
            d.stop()
        disk.empty()
        disk.umount()



def timed_while_full(d, disk, req):
    """One request sent while the sim's disk is full (its line writes fail):
    (reply, send time, reply time); the disk is emptied again whatever happens."""
    disk.fill()
    try:
        with d.connect() as c:
            return c.timed(req)
    finally:
        disk.empty()

def test_f1_failed_gate_off_stops_heartbeat_and_shows_fault(fulldisk_daemon):
    """Finding 1: a `stim off` whose gate write fails. Both rooms are gate-only (no
    pulse edges that could fail first); room 2 keeps its gate on throughout."""
    d, disk = fulldisk_daemon
    sp = os.path.join(disk.path, "gpio.state")
    start_ok(d, "1", "p2", stim=True)
    start_ok(d, "2", "p2", stim=True)
    wait_state(sp, "17", 1)
    wait_state(sp, "24", 1)
    t_on = mono_ns()
    wait_for(lambda: len(line_events(trace_of(d), HEARTBEAT, since=t_on)) >= 3, 3,
             "heartbeat toggling with gates on")

    rep, t_send, t_reply = timed_while_full(d, disk, {"cmd": "stim", "room": "1", "on": False})
    # S7: the command whose write failed is not acknowledged as done.
    assert err_code(rep) == "gpio-fault", rep
    tr = trace_of(d)
    # every output of room 1 was driven off (attempted), and never on again
    assert line_events(tr, "17")[-1][1] == 0
    assert not actives_after(tr, "17", t_send)
    # the alarm line was driven at once, before the reply
    assert [lv for ns, lv in line_events(tr, R1_ALARM, since=t_send, until=t_reply)] == [1], \
        f"gpio-fault alarm line not driven at once: {line_events(tr, R1_ALARM, since=t_send)}"
    r = d.status("1")
    a = alarm(r, "gpio-fault")
    assert a and a["priority"] == "high", r["alarms"]
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    assert r["stim"]["blocked"] == "gpio-fault", r["stim"]
    # Once the disk has room again the alarm line flashes (high, 2 Hz) and the
    # state file catches up: gate off, alarm line on at some moment.
    wait_state(sp, "17", 0, timeout=3)
    wait_state(sp, R1_ALARM, 1, timeout=3)
    # The heartbeat stopped at the fault although room 2's gate is still on: the
    # external watchdog cuts the stimulators' power.
    time.sleep(1.0)
    tr = trace_of(d)
    hb = line_events(tr, HEARTBEAT, since=t_reply)
    assert all(lv == 0 for ns, lv in hb), f"heartbeat toggles after the fault: {hb[:6]}"
    assert read_state(sp)[HEARTBEAT] == 0
    assert read_state(sp)["24"] == 1, "room 2 was not part of the fault"
    rises = [ns for ns, lv in line_events(tr, R1_ALARM, since=t_reply) if lv == 1]
    assert len(rises) >= 2, f"gpio-fault alarm line does not flash: {line_events(tr, R1_ALARM)}"
    # S8: in the history
    ents = history(d)
    assert any(e.get("type") == "alarm" and e.get("kind") == "gpio-fault"
               and e.get("change") == "raised" and e.get("room") == "1" for e in ents), ents[-10:]
    assert any(e.get("type") == "gate" and e.get("room") == "1" and e.get("on") is False
               and e.get("cause") == "gpio-fault" for e in ents), ents[-10:]
    # arming blocked until reload
    assert err_code(stim(d, "1", True)) == "gpio-fault"
    d.ok({"cmd": "reload"})
    assert alarm(d.status("1"), "gpio-fault") is None
    t_reload = mono_ns()
    wait_for(lambda: len(line_events(trace_of(d), HEARTBEAT, since=t_reload)) >= 3, 3,
             "heartbeat toggling again after reload (room 2's gate is on)")


def test_f1_failed_gate_on_is_not_ok(fulldisk_daemon):
    """Finding 1: the failing write is the gate-on one."""
    d, disk = fulldisk_daemon
    sp = os.path.join(disk.path, "gpio.state")
    start_ok(d, "2", "p2", stim=True)
    wait_state(sp, "24", 1)
    start_ok(d, "1", "p2")
    rep, t_send, t_reply = timed_while_full(d, disk, {"cmd": "stim", "room": "1", "on": True})
    assert err_code(rep) == "gpio-fault", rep
    tr = trace_of(d)
    # the gate-on was attempted, then the fault drove it off
    ev = line_events(tr, "17", since=t_send, until=t_reply)
    assert ev and ev[-1][1] == 0, f"gate 17 not driven off after its failed write: {ev}"
    assert [lv for ns, lv in line_events(tr, R1_ALARM, since=t_send, until=t_reply)] == [1]
    r = d.status("1")
    assert alarm(r, "gpio-fault")["priority"] == "high"
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    wait_state(sp, "17", 0, timeout=3)
    time.sleep(0.6)
    hb = line_events(trace_of(d), HEARTBEAT, since=t_reply)
    assert all(lv == 0 for ns, lv in hb), f"heartbeat toggles after the fault: {hb[:6]}"


# --- S5: latched interlocks -------------------------------------------------------

@pytest.fixture
def stimd(make_daemon):
    return make_daemon(conf_text=stim_config())


def test_f2_interlock_blip_in_one_write_trips(stimd):
    """Finding 2: trip and clear in one write, before the loop reads the line."""
    d = stimd
    sp = state_path(d)
    start_armed(d)
    t = mono_ns()
    reps = one_write(d, {"cmd": "sim-input", "line": R1_INTERLOCK, "level": TRIP},
                     {"cmd": "sim-input", "line": R1_INTERLOCK, "level": CLEAR},
                     {"cmd": "status", "room": "1"})
    assert all(r.get("ok") is True for r in reps), reps
    r = reps[2]["room"]
    # handled before the request after it: disarmed, off, high alarm
    assert r["stim"]["armed"] is False, r["stim"]
    assert r["stim"]["on"] is False
    assert r["stim"]["blocked"] == "interlock", r["stim"]
    assert alarm(r, "interlock")["priority"] == "high"
    tr = trace_of(d)
    for ln in R1_GATES:
        assert line_events(tr, ln)[-1][1] == 0
        assert not actives_after(tr, ln, t)
    ents = history(d, "1")
    assert any(e.get("type") == "interlock" and e.get("tripped") is True for e in ents), ents[-8:]
    assert any(e.get("type") == "gate" and e.get("on") is False and e.get("cause") == "interlock"
               for e in ents)
    # the line is clear again: a new stim on arms (and clears the alarm)
    r = d.ok({"cmd": "stim", "room": "1", "on": True})["room"]
    assert r["stim"]["armed"] is True and alarm(r, "interlock") is None
    wait_state(sp, "17", 1)
    # A blip shorter than any read (both levels gone through before the daemon
    # looks: only the latched edges tell): it trips all the same.
    t = mono_ns()
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": [TRIP, CLEAR]})
    r = d.status("1")
    assert r["stim"]["armed"] is False and r["stim"]["blocked"] == "interlock", r["stim"]
    assert alarm(r, "interlock")["priority"] == "high"
    assert read_state(sp)[R1_INTERLOCK] == CLEAR
    for ln in R1_GATES:
        assert not actives_after(trace_of(d), ln, t)
        assert line_events(trace_of(d), ln)[-1][1] == 0
    ents = history(d, "1")
    assert any(e.get("type") == "interlock" and e.get("tripped") is True
               and e.get("held") is False for e in ents), ents[-8:]


def test_f3_arming_reads_the_interlock(stimd):
    """Finding 3: a trip followed at once by `stim on` (and by `start --stim`)."""
    d = stimd
    start_ok(d, "1", "p2")
    t = mono_ns()
    reps = one_write(d, {"cmd": "sim-input", "line": R1_INTERLOCK, "level": TRIP},
                     {"cmd": "stim", "room": "1", "on": True})
    assert reps[0].get("ok") is True
    assert err_code(reps[1]) == "interlock", reps[1]
    time.sleep(0.2)
    tr = trace_of(d)
    for ln in R1_GATES + R1_PULSES:
        assert not actives_after(tr, ln, t), f"line {ln} went active with the interlock tripped"
    # start --stim in the same write as the trip: refused whole
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": CLEAR})
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 2})
    t = mono_ns()
    reps = one_write(d, {"cmd": "sim-input", "line": R1_INTERLOCK, "level": TRIP},
                     {"cmd": "start", "room": "1", "duration_s": 600, "needles": 2,
                      "profile": "p2", "stim": True})
    assert err_code(reps[1]) == "interlock", reps[1]
    assert d.status("1")["state"] == "idle"
    assert not actives_after(trace_of(d), "17", t)


def test_f5_unreadable_interlock_fails_closed(stimd):
    """Finding 5: a read error on an edge, and when the lines are (re)attached."""
    d = stimd
    sp = state_path(d)
    start_ok(d, "1", "p2", stim=True)
    wait_state(sp, "17", 1)
    t = mono_ns()
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": -1})
    r = d.status("1")
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    assert alarm(r, "interlock")["priority"] == "high", r["alarms"]
    assert alarm(r, "gpio-fault")["priority"] == "high", r["alarms"]
    assert r["stim"]["blocked"] == "gpio-fault"
    tr = trace_of(d)
    for ln in R1_GATES:
        assert not actives_after(tr, ln, t)
        assert line_events(tr, ln)[-1][1] == 0
    assert err_code(stim(d, "1", True)) == "gpio-fault"
    ents = history(d, "1")
    assert any(e.get("type") == "interlock" and e.get("unreadable") is True for e in ents)
    # A reload clears the fault, but the line is read again and still cannot be:
    # the fault is back at once.
    d.ok({"cmd": "reload"})
    r = d.status("1")
    assert alarm(r, "gpio-fault"), f"unreadable interlock forgotten by a reload: {r['alarms']}"
    assert err_code(stim(d, "1", True)) == "gpio-fault"
    # A rewiring reload (room 2 moves to line 25) requests every line again, as at
    # start: the unreadable input is found there too.
    text = open(d.conf).read().replace("gate = 24", "gate = 25")
    d.write_config(text)
    with d.connect() as c:
        rep, t_send, t_reply = c.timed({"cmd": "reload"})
    assert rep.get("ok") is True, rep
    assert alarm(d.status("1"), "gpio-fault"), "unreadable interlock not found at attach"
    # ... and its alarm line is lit at once (every line rewritten at attach).
    # Lit, not still lit at the reply: the high alarm's pattern may turn it
    # off again before a slow reload (valgrind) answers. A reload slower than
    # the pattern's half period (250 ms: emulation) may reach the attach in an
    # off half, which it writes as such: then lit within the next period.
    ev = line_events(trace_of(d), R1_ALARM, since=t_send, until=t_reply)
    if t_reply - t_send < NS_HALF_HIGH:
        assert any(lv == 1 for _, lv in ev), f"alarm line not driven at attach: {ev}"
    else:
        wait_for(lambda: any(lv == 1 for _, lv in
                             line_events(trace_of(d), R1_ALARM, since=t_send)),
                 timeout=(t_reply - t_send) / 1e9 + 2.0, what="alarm line lit after attach")
    # readable and clear again, and a reload: arming works
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": CLEAR})
    r = d.status("1")
    assert alarm(r, "gpio-fault"), "gpio-fault cleared before a reload"
    d.ok({"cmd": "reload"})
    r = d.ok({"cmd": "stim", "room": "1", "on": True})["room"]
    assert r["stim"]["armed"] is True


# --- finding 6 -----------------------------------------------------------------------

def test_f6_rewiring_reload_keeps_held_interlock(stimd):
    d = stimd
    start_ok(d, "1", "p2")
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": TRIP})
    assert err_code(stim(d, "1", True)) == "interlock"
    # rewire room 2 (idle): every line is requested again
    d.write_config(open(d.conf).read().replace("gate = 24", "gate = 25"))
    d.ok({"cmd": "reload"})
    assert d.status("2")["stim"]["on"] is False
    assert read_state(state_path(d)).get(R1_INTERLOCK) == TRIP, \
        "the simulated interlock line lost its level across the reload"
    assert err_code(stim(d, "1", True)) == "interlock", "held interlock forgotten by a reload"
    d.ok({"cmd": "sim-input", "line": R1_INTERLOCK, "level": CLEAR})
    assert d.ok({"cmd": "stim", "room": "1", "on": True})["room"]["stim"]["armed"] is True


X_PROFILE = """
[profile x]
mode = continuous
frequency_hz = 2
duration_s = 600
"""


def test_f6_reload_rechecks_armed_rooms(make_daemon):
    d = make_daemon(conf_text=stim_config() + X_PROFILE)
    sp = state_path(d)
    start_ok(d, "2", "x", stim=True)          # room 2: gate only
    wait_state(sp, "24", 1)
    t = mono_ns()
    # the profile becomes dense-disperse, which room 2 (no pulse lines) cannot run
    d.write_config(d_conf := open(d.conf).read().replace(
        "[profile x]\nmode = continuous", "[profile x]\nmode = dense-disperse"))
    assert "dense-disperse" in d_conf
    d.ok({"cmd": "reload"})
    r = d.status("2")
    assert r["stim"]["armed"] is False, r["stim"]
    assert r["stim"]["blocked"] == "unsupported", r["stim"]
    assert read_state(sp)["24"] == 0
    assert not actives_after(trace_of(d), "24", t + 1)
    assert err_code(stim(d, "2", True)) == "unsupported"
    # the profile removed altogether while armed: disarmed the same way
    d.write_config(open(d.conf).read().replace("mode = dense-disperse\nfrequency_hz = 2\n"
                                               "duration_s = 600", "mode = continuous\n"
                                               "frequency_hz = 2\nduration_s = 600"))
    d.ok({"cmd": "reload"})
    assert d.ok({"cmd": "stim", "room": "2", "on": True})["room"]["stim"]["armed"] is True
    wait_state(sp, "24", 1)
    d.write_config(open(d.conf).read().replace(X_PROFILE, "\n"))
    d.ok({"cmd": "reload"})
    r = d.status("2")
    assert r["stim"]["armed"] is False and r["stim"]["blocked"] == "unsupported", r["stim"]
    assert read_state(sp)["24"] == 0


def test_f6_reload_keeps_pulse_phase(stimd):
    """50 reloads of a 100 Hz train (SIGHUP and the command): no pulses counted
    missed for the time since arming, no double or missing pulse at a reload."""
    d = stimd
    sp = state_path(d)
    start_ok(d, "1", "p100", stim=True)
    wait_state(sp, "17", 1)
    time.sleep(1.0)
    t0 = mono_ns()
    for i in range(50):
        if i % 2:
            os.kill(d.pid, signal.SIGHUP)
        else:
            d.ok({"cmd": "reload"})
        time.sleep(0.02)
    time.sleep(0.3)
    t1 = mono_ns()
    r = d.status("1")
    assert r["stim"]["armed"] is True
    # Before: every reload re-based the train at the arming and counted every
    # pulse since as missed (over 100 a reload here, 17,285 after 50 SIGHUPs in
    # the issue). A reload holds the loop up for a few ms, so on a loaded
    # machine (or a sanitizer build) a few pulses a reload may be missed for
    # real: far fewer than the thousands a re-based train counts.
    assert r["stim"]["missed_pulses"] < 500, r["stim"]
    rises = [ns for ns, lv in line_events(trace_of(d), "22", since=t0, until=t1) if lv == 1]
    gaps = [(b - a) / 1e6 for a, b in zip(rises, rises[1:])]
    assert len(rises) > 50, len(rises)
    assert min(gaps) > 5.0, f"two pulses within half a period across a reload: {min(gaps)} ms"


def _arm_room1(make_daemon):
    d = make_daemon(conf_text=stim_config())
    sp = state_path(d)
    start_ok(d, "1", "p2", stim=True)
    start_ok(d, "2", "p2", stim=True)
    wait_state(sp, "17", 1)
    wait_state(sp, "24", 1)
    return d, sp


def _all_inactive(sp):
    st = read_state(sp)
    bad = {k: v for k, v in st.items()
           if k in ("17", "27", "22", "23", "24", HEARTBEAT) and v != 0}
    return not bad, st


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGXCPU, signal.SIGPWR],
                         ids=lambda s: s.name)
def test_f6_ending_signals_drive_outputs_off(make_daemon, sig):
    d, sp = _arm_room1(make_daemon)
    os.kill(d.pid, sig)
    rc = d.proc.wait(10)
    ok, st = _all_inactive(sp)
    assert ok, f"{signal.Signals(sig).name}: outputs left active: {st}"
    assert rc == 0, f"{signal.Signals(sig).name}: exit status {rc}"


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGSYS],
                         ids=lambda s: s.name)
def test_f6_fault_signals_drive_outputs_off(make_daemon, sig):
    d, sp = _arm_room1(make_daemon)
    os.kill(d.pid, sig)
    rc = d.proc.wait(10)
    # the signal's own action ends it (a sanitizer's, in a SANITIZE=1 build)
    assert rc == -sig or (rc != 0 and "Sanitizer" in d.stderr()), \
        f"{signal.Signals(sig).name}: exit status {rc}"
    ok, st = _all_inactive(sp)
    assert ok, f"{signal.Signals(sig).name}: outputs left active: {st}"


def test_f6_meaningless_signals_are_ignored(make_daemon):
    d, sp = _arm_room1(make_daemon)
    sigs = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF,
            signal.SIGIO, signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX]
    sent = []
    for s in sigs:
        try:
            os.kill(d.pid, s)
            sent.append(s)
        except OSError as e:
            # qemu-user keeps the highest real-time signals for itself and
            # refuses to send them (EINVAL): no process there can get them.
            if e.errno != errno.EINVAL or s <= signal.SIGRTMIN + 5:
                raise
    assert sent[:8] == sigs[:8], sent
    time.sleep(0.3)
    assert d.alive(), "acud died of a signal it should ignore"
    assert read_state(sp)["17"] == 1
    assert d.status("1")["stim"]["on"] is True


def test_f6_line_named_by_offset_and_name(tmpdir_short):
    rooms = "[room 1]\nname = Lotus\ngate = 24\n\n[room 2]\nname = Bamboo\ngate = 25\n" \
            "alarm = GPIO24\n"
    path = os.path.join(tmpdir_short, "acud.conf")
    os.makedirs(os.path.join(tmpdir_short, "profiles.d"), exist_ok=True)
    with open(path, "w") as f:
        f.write(stim_config(rooms=rooms, profiles=""))
    rc, out, err = run([ACUD, "--check-config", "-c", path])
    assert rc == 1, (rc, out, err)
    assert "used twice" in err and "GPIO24" in err, err
    # the other spelling: the sim state file and sim-input know one line 24
    with open(path, "w") as f:
        f.write(stim_config(rooms="[room 1]\ngate = GPIO24\ninterlock = GPIO6\n", profiles=""))
    rc, out, err = run([ACUD, "--check-config", "-c", path])
    assert rc == 0, err


def test_f6_gpio_names_reach_the_same_line(make_daemon):
    rooms = "[room 1]\nname = Lotus\ngate = GPIO17\ninterlock = !GPIO6\n"
    d = make_daemon(conf_text=stim_config(rooms=rooms))
    st = read_state(state_path(d))
    assert st.get("17") == 0 and st.get("6") == 1, st
    start_ok(d, "1", "p2", stim=True)
    wait_state(state_path(d), "17", 1)
    d.ok({"cmd": "sim-input", "line": "GPIO6", "level": TRIP})
    assert d.status("1")["stim"]["armed"] is False
    d.ok({"cmd": "sim-input", "line": 6, "level": CLEAR})


SLOW_PROFILE = """
[profile slow]
mode = continuous
frequency_hz = 20
pulse_width_us = 1000
duration_s = 600
"""


def test_f6_pulse_caught_high_by_a_stall(make_daemon):
    """The daemon is stopped (SIGSTOP) while a 1 ms pulse of a 20 Hz train is high
    (the test watches the state file for it; retried until caught). The pulse ends
    at the loop's first chance after SIGCONT, is counted late and raises the low
    timing alarm; `stim off` clears it. At 20 Hz a loaded machine does not make
    pulses late by itself (that is half a period, 25 ms)."""
    import simgpio
    d = make_daemon(conf_text=stim_config(profiles=simgpio.STIM_PROFILES + SLOW_PROFILE))
    sp = state_path(d)
    start_ok(d, "1", "slow")
    caught = None
    for attempt in range(40):
        r = d.status("1")
        if not r["stim"]["armed"] or alarm(r, "timing"):
            if r["stim"]["armed"]:
                d.ok({"cmd": "stim", "room": "1", "on": False})
            assert alarm(d.ok({"cmd": "stim", "room": "1", "on": True})["room"],
                         "timing") is None
            wait_state(sp, "17", 1)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and read_state(sp).get("22") != 1:
            pass
        t_stop = mono_ns()
        os.kill(d.pid, signal.SIGSTOP)
        time.sleep(0.15)
        t_cont = mono_ns()
        os.kill(d.pid, signal.SIGCONT)
        time.sleep(0.15)
        highs = [(a, b) for a, b in intervals(trace_of(d), "22", 1, since=t_stop)
                 if a < t_stop and (b is None or b > t_cont)]
        if highs:
            caught = (highs[0], t_stop, t_cont)
            break
    if not caught:
        pytest.skip("no pulse was high when the daemon was stopped in 40 tries")
    (rise, fall), t_stop, t_cont = caught
    assert fall is not None, "the pulse caught high was never ended"
    assert (fall - t_cont) / 1e6 < 100, \
        f"pulse caught high ended {(fall - t_cont) / 1e6:.1f} ms after the stall"
    r = d.status("1")
    a = alarm(r, "timing")
    assert a and a["priority"] == "low", r["alarms"]
    assert r["stim"]["missed_pulses"] >= 1
    ents = history(d, "1")
    late = [e for e in ents if e.get("type") == "timing"]
    # the pulse held high is in the history as late (alone, or with the
    # ones the stall skipped when the loop got to them in the same pass)
    assert late and late[-1].get("late", 0) >= 1, \
        f"the pulse held high was not recorded late: {late[-3:]}"
    assert r["stim"]["armed"] is True, "late pulses are not a stop cause"
    r = d.ok({"cmd": "stim", "room": "1", "on": False})["room"]
    assert alarm(r, "timing") is None, "stim off did not clear the timing alarm"


def test_f5_lines_rewritten_at_start(make_daemon):
    """At start-up every line is written from the restored state's decision (the
    path that also finds an unreadable input): a restored low alarm (check-in,
    steady) lights its line before the socket accepts."""
    d = make_daemon(conf_text=stim_config(checkin_interval="1s"))
    sp = state_path(d)
    start_ok(d, "2", "p2")
    d.wait_room("2", lambda r: alarm(r, "checkin") is not None, timeout=5, what="checkin")
    wait_state(sp, "16", 1)
    assert d.stop() == 0
    assert read_state(sp)["16"] == 0, "alarm line left on by shutdown"
    d.start()
    assert alarm(d.status("2"), "checkin"), "check-in alarm not restored"
    assert read_state(sp)["16"] == 1, "restored alarm's line not lit at start"
