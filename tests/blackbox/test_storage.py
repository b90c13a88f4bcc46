"""Storage failures and restarts (SPEC S9 and §8): a full file system, a crash
while it is full, a reboot with the wall clock behind the last save.

The state_dir is a small tmpfs filled to the last byte (root only: the tests
skip, saying why, when they cannot mount one). The simulated GPIO state and
trace live outside it, so the lines can be read whatever the disk does.
"""

import errno
import os
import signal
import subprocess
import time

import pytest

from conftest import alarm, err_code
from simgpio import STIM_ROOMS, read_state, read_trace, stim_config, wait_for

SIM_STATE = "sim/gpio-sim.state"
SIM_TRACE = "sim/trace"
GATE1, GATE2, ALARM1 = "17", "27", "5"   # room 1 (simgpio.STIM_ROOMS)
GATE_R2, ALARM_R2 = "24", "16"           # room 2


class SmallFs:
    """A tmpfs mounted on a daemon's state_dir, and a file that fills it."""

    def __init__(self, path, size="1m"):
        self.path = path
        self.fill_path = os.path.join(path, "fill")
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs",
                            path], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for state_dir: {p.stderr.strip()}")

    def fill(self):
        """Writes until not one more byte fits."""
        with open(self.fill_path, "ab", buffering=0) as f:
            for chunk in (1 << 16, 4096, 1):
                while True:
                    try:
                        f.write(b"\0" * chunk)
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
                        break
        st = os.statvfs(self.path)
        assert st.f_bavail == 0, f"tmpfs not full: {st.f_bavail} blocks free"

    def free(self):
        os.unlink(self.fill_path)

    def umount(self):
        subprocess.run(["umount", "-l", self.path], capture_output=True)


@pytest.fixture
def full_disk(make_daemon):
    """make(**stim_config overrides) -> (daemon, SmallFs), daemon started on a
    1 MiB tmpfs state_dir."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as state_dir")
    mounted = []

    def make(size="1m", **kw):
        d = make_daemon(conf_text=stim_config(sim_state=SIM_STATE, sim_trace=SIM_TRACE,
                                              **kw), start=False)
        os.makedirs(os.path.join(d.dir, "sim"), exist_ok=True)
        fs = SmallFs(d.state_dir, size)
        mounted.append((d, fs))
        d.start()
        return d, fs

    yield make
    for d, fs in mounted:
        if d.alive():
            d.stop()
        fs.umount()


def sim_levels(d):
    return read_state(os.path.join(d.dir, SIM_STATE))


def trace(d):
    return read_trace(os.path.join(d.dir, SIM_TRACE))


def start_stim(d, room="1", profile="p2"):
    d.start_session(room, duration_s=600, needles=4, profile=profile)
    d.ok({"cmd": "stim", "room": room, "on": True})
    wait_for(lambda: sim_levels(d).get(GATE1 if room == "1" else GATE_R2) == 1,
             what=f"room {room}'s gate on")


def storage_alarm(d, room):
    return alarm(d.status(room), "storage")


# --- case 1: a contraindication set while the disk is full ---------------------

def test_pacemaker_flag_while_full_survives_a_crash(full_disk):
    d, fs = full_disk()
    start_stim(d, "1")
    fs.fill()
    rep = d.request({"cmd": "flag", "room": "1", "flags": ["pacemaker"]})
    # The cut and the flag are saved with the reserve: acknowledged.
    assert rep.get("ok") is True, rep
    assert sim_levels(d)[GATE1] == 0 and sim_levels(d)[GATE2] == 0
    a = wait_for(lambda: storage_alarm(d, "1"), what="storage alarm")
    assert a["priority"] == "high"
    d.kill9()
    fs.free()
    d.start()
    room = d.status("1")
    assert "pacemaker" in room["flags"], room
    assert room["stim"]["blocked"] == "contraindicated", room["stim"]
    assert err_code(d.request({"cmd": "stim", "room": "1", "on": True})) == "contraindicated"
    assert sim_levels(d)[GATE1] == 0


# --- case 2 and S9: what is refused and what still cuts while full -------------

def test_start_with_stim_refused_while_full_changes_nothing(full_disk):
    d, fs = full_disk()
    fs.fill()
    before = d.status("2")
    rep = d.request({"cmd": "start", "room": "2", "duration_s": 600, "needles": 3,
                     "profile": "p2", "stim": True})
    assert err_code(rep) == "storage", rep
    assert "cannot be saved" in rep["error"]["message"]
    time.sleep(0.3)
    assert sim_levels(d)[GATE_R2] == 0
    assert not any(ln == GATE_R2 and lv == 1 for _, ln, lv in trace(d))
    after = d.status("2")
    assert after["state"] == "idle" and before["state"] == "idle"


def test_while_full_arming_refused_and_cuts_work(full_disk):
    d, fs = full_disk(rooms=STIM_ROOMS + "\n[room 4]\nname = Willow\ngate = 19\n")
    start_stim(d, "1")
    d.start_session("2", duration_s=600, needles=2, profile="p2")
    d.start_session("3", duration_s=600, needles=2)
    d.ok({"cmd": "pause", "room": "3"})
    fs.fill()
    # The first change after the disk filled finds it full.
    assert d.request({"cmd": "needles", "room": "2", "delta": 1})["ok"] is True
    wait_for(lambda: storage_alarm(d, "2"), what="storage alarm in room 2")
    for room in ("1", "2", "3"):
        a = storage_alarm(d, room)
        assert a and a["priority"] == "high", (room, d.status(room)["alarms"])
    assert storage_alarm(d, "4") is None  # no session, no storage alarm
    # Refused, changing nothing: arm, resume, extend, start.
    assert err_code(d.request({"cmd": "stim", "room": "2", "on": True})) == "storage"
    assert sim_levels(d)[GATE_R2] == 0
    assert err_code(d.request({"cmd": "resume", "room": "3"})) == "storage"
    assert d.status("3")["state"] == "paused"
    ends = d.status("2")["ends_at"]
    assert err_code(d.request({"cmd": "extend", "room": "2", "duration_s": 60})) == "storage"
    assert d.status("2")["ends_at"] == ends
    assert err_code(d.request({"cmd": "start", "room": "4", "duration_s": 60,
                               "needles": 1})) == "storage"
    # Cuts still cut at once.
    assert d.request({"cmd": "stim", "room": "1", "on": False})["ok"] is True
    assert sim_levels(d)[GATE1] == 0
    assert d.request({"cmd": "stop", "room": "2"})["ok"] is True
    assert d.status("2")["state"] == "due"
    # The board shows it: the alarm line of room 1 flashes for a high alarm.
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    time.sleep(1.2)
    flips = [e for e in trace(d) if e[1] == ALARM1 and e[0] >= t0]
    assert len(flips) >= 3, f"room 1's alarm line did not flash: {flips}"


def test_storage_alarm_clears_and_changes_made_while_full_are_saved(full_disk):
    d, fs = full_disk()
    d.start_session("1", duration_s=600, needles=4, profile="p2")
    fs.fill()
    assert d.request({"cmd": "needles", "room": "1", "delta": 2})["ok"] is True
    assert d.request({"cmd": "checkin", "room": "1"})["ok"] is True
    wait_for(lambda: storage_alarm(d, "1"), what="storage alarm")
    fs.free()
    # Saves are retried: the alarm clears by itself.
    wait_for(lambda: storage_alarm(d, "1") is None, timeout=8, what="storage alarm cleared")
    hist = d.ok({"cmd": "history", "room": "1", "limit": 1000})["entries"]
    assert any(e.get("type") == "alarm" and e.get("kind") == "storage"
               and e.get("change") == "cleared" for e in hist), hist[-5:]
    d.kill9()
    d.start()
    room = d.status("1")
    assert room["needles"] == 6 and room["checkins"] == 1, room
    # Arming works again.
    d.ok({"cmd": "stim", "room": "1", "on": True})


def test_full_at_start_up_starts_with_the_alarm(full_disk):
    d, fs = full_disk()
    d.start_session("1", duration_s=600, needles=4)
    d.stop()
    fs.fill()
    d.start()
    a = wait_for(lambda: storage_alarm(d, "1"), what="storage alarm at start-up")
    assert a["priority"] == "high"
    assert err_code(d.request({"cmd": "extend", "room": "1", "duration_s": 60})) == "storage"
    fs.free()
    wait_for(lambda: storage_alarm(d, "1") is None, timeout=8, what="storage alarm cleared")


# --- case 4: restored alarms drive their lines ---------------------------------

def test_restored_alarm_drives_its_line_after_a_crash(make_daemon):
    d = make_daemon(conf_text=stim_config())
    d.start_session("2", duration_s=600, needles=4)
    d.ok({"cmd": "stop", "room": "2"})
    assert err_code(d.request({"cmd": "finish", "room": "2", "removed": 3})) == \
        "needle-mismatch"
    assert alarm(d.status("2"), "needle-mismatch")["priority"] == "high"
    d.kill9()
    os.unlink(os.path.join(d.dir, "trace"))
    d.start()
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    time.sleep(1.3)
    flips = [e for e in read_trace(os.path.join(d.dir, "trace"))
             if e[1] == ALARM_R2 and e[2] == 1]
    # High flashes at 2 Hz, in phase with the alarm's age: at least two rises
    # in 1.3 s, without a reload, the first within one half period (250 ms,
    # with slack for a slow machine) of the daemon answering.
    assert len(flips) >= 2, f"alarm line {ALARM_R2} dark after restart: {flips}"
    slack = float(os.environ.get("ACU_TIMER_SLACK", "0.2"))
    assert flips[0][0] <= t0 + int((0.25 + slack) * 1e9), "the line was not lit at start-up"


# --- case 5: delivered stimulation across a crash ------------------------------

def test_delivered_stimulation_counts_until_the_restart(make_daemon):
    d = make_daemon(conf_text=stim_config())
    d.start_session("1", duration_s=600, needles=4, profile="p2")
    d.ok({"cmd": "stim", "room": "1", "on": True})
    time.sleep(1.5)
    d.kill9()
    time.sleep(1.0)
    d.start()
    room = d.status("1")
    for ch in room["stim"]["channels"]:
        assert ch["delivered_s"] >= 2, room["stim"]
    assert room["stim"]["armed"] is False
    assert room["stim"]["blocked"] == "restart"


# --- case 6: a reboot with the wall clock behind --------------------------------

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _reboot_env(tmp, offset):
    """A wrapper that starts acud under another boot id (a private mount
    namespace with a bind-mounted boot_id) and its wall clock shifted by
    `offset` (libfaketime; the monotonic clock is left alone)."""
    import glob
    import uuid
    libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not libs:
        from debtool import need
        need("faketime", "faketime")
        libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert libs, "libfaketime not found after installing faketime"
    boot = os.path.join(tmp, "boot_id")
    with open(boot, "w") as f:
        f.write(str(uuid.uuid4()) + "\n")
    wrapper = ("unshare -m --propagation private sh -c "
               f"'mount --bind {boot} /proc/sys/kernel/random/boot_id && exec \"$@\"' sh")
    env = {"LD_PRELOAD": libs[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "FAKETIME_NO_CACHE": "1",
           # A sanitizer build (make check SANITIZE=1) wants its runtime first.
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    return wrapper, env


@pytest.mark.parametrize("offset,behind", [("-1h", True), ("-365d", True), ("+20m", False)])
def test_reboot_with_the_clock_moved(make_daemon, monkeypatch, offset, behind):
    if os.geteuid() != 0:
        pytest.skip("needs root for a mount namespace with another boot id")
    d = make_daemon(conf_text=stim_config())
    d.start_session("1", duration_s=1800, needles=4)
    d.start_session("2", duration_s=1800, needles=4)
    d.ok({"cmd": "pause", "room": "2"})
    left = d.status("1")["remaining_s"]
    d.kill9()
    wrapper, env = _reboot_env(d.dir, offset)
    monkeypatch.setenv("ACUD_WRAPPER", wrapper)
    d.start(env=env)
    monkeypatch.delenv("ACUD_WRAPPER")
    r1, r2, r3 = d.status("1"), d.status("2"), d.status("3")
    assert r2["state"] == "paused" and r2["remaining_s"] <= 1800
    if behind:
        # Never longer than at the last save, and marked for attention.
        assert r1["state"] == "running" and r1["remaining_s"] <= left, (left, r1)
        for r in (r1, r2):
            a = alarm(r, "attention")
            assert a and a["priority"] == "medium", r["alarms"]
            assert "clock" in (r["attention"] or "")
        assert alarm(r3, "attention") is None  # no session there
        assert "behind the last save" in d.stderr()
    else:
        # Forward: the down time (20 min) is taken off.
        assert r1["remaining_s"] <= left - 1190, (left, r1)
        assert alarm(r1, "attention") is None
    # The attention alarm goes with the session.
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 4})
    assert alarm(d.status("1"), "attention") is None
    d.stop()


# --- a failing card (not full): every save fails ----------------------------------

def test_contraindication_stands_when_no_save_works(make_daemon):
    d = make_daemon(conf_text=stim_config(sim_state=SIM_STATE, sim_trace=SIM_TRACE),
                    start=False)
    os.makedirs(os.path.join(d.dir, "sim"), exist_ok=True)
    d.start()
    start_stim(d, "1")
    d.start_session("2", duration_s=600, needles=2, profile="p2")
    d.ok({"cmd": "stim", "room": "2", "on": True})
    # A directory where the new state file goes: every save fails (EISDIR),
    # as on a card that has gone bad, not one that is full.
    blocker = os.path.join(d.state_dir, "state.json.tmp")
    os.mkdir(blocker)
    rep = d.request({"cmd": "flag", "room": "1", "flags": ["pacemaker"]})
    # It cut the gate but is not on the card: not acknowledged as saved.
    assert err_code(rep) == "storage", rep
    assert sim_levels(d)[GATE1] == 0
    # Nothing can be saved: stimulation elsewhere is cut too (its dose could
    # not be accounted for after a crash), and the alarm is up.
    wait_for(lambda: sim_levels(d)[GATE_R2] == 0, what="room 2's gate cut")
    assert d.status("2")["stim"]["blocked"] == "storage"
    assert storage_alarm(d, "2")["priority"] == "high"
    assert err_code(d.request({"cmd": "stim", "room": "2", "on": True})) == "storage"
    d.kill9()
    os.rmdir(blocker)
    d.start()
    room = d.status("1")
    assert "pacemaker" in room["flags"], room
    assert room["stim"]["blocked"] == "contraindicated"
    assert err_code(d.request({"cmd": "stim", "room": "1", "on": True})) == "contraindicated"
    assert "restored from" in d.stderr()


# --- the state file's checksum covers the bytes as written ------------------------

def _fnv(data):
    h = 14695981039346656037
    for b in data:
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def test_checksum_is_over_the_bytes_as_written(make_daemon):
    """A file whose bytes differ from jansson's encoding of the same JSON (here a
    space after the first brace) is read when its sum matches those bytes, and
    kept aside when one byte changes: the sum is never a re-encoding."""
    d = make_daemon(conf_text=stim_config())
    d.start_session("1", duration_s=600, needles=4, patient="SUMTEST")
    d.stop()
    path = os.path.join(d.state_dir, "state.json")
    raw = open(path, "rb").read().rstrip(b"\n")
    i = raw.rindex(b',"sum":"')
    body = b"{ " + raw[1:i]
    good = body + b',"sum":"%016x"}\n' % _fnv(body + b"}")
    with open(path, "wb") as f:
        f.write(good)
    d.start()
    assert d.status("1")["patient"] == "SUMTEST"
    assert d.status("1")["attention"] is None
    d.stop()
    with open(path, "wb") as f:
        f.write(good.replace(b"SUMTEST", b"SUMTESU"))
    d.start()
    assert d.status("1")["state"] == "idle"
    assert alarm(d.status("1"), "attention")["priority"] == "medium"


# --- issue 13, finding 4: no failure inside a change undoes a cut -----------------

def test_failed_save_never_rolls_back_a_cut_or_leaves_lines_stale(make_daemon):
    d = make_daemon(conf_text=stim_config(sim_state=SIM_STATE, sim_trace=SIM_TRACE),
                    start=False)
    os.makedirs(os.path.join(d.dir, "sim"), exist_ok=True)
    d.start()
    d.start_session("1", duration_s=600, needles=4, profile="p2")
    blocker = os.path.join(d.state_dir, "state.json.tmp")
    os.mkdir(blocker)
    # Arming whose save fails: not acknowledged, and the lines follow the
    # state reported (off, unarmed), never the other way round.
    rep = d.request({"cmd": "stim", "room": "1", "on": True})
    assert err_code(rep) == "storage", rep
    room = d.status("1")
    assert room["stim"]["armed"] is False and room["stim"]["on"] is False, room["stim"]
    wait_for(lambda: sim_levels(d)[GATE1] == 0 and sim_levels(d)[GATE2] == 0,
             what="gates off as reported")
    # An interlock trip whose save fails stands: alarm, disarmed, gates off.
    d.ok({"cmd": "sim-input", "line": 6, "level": 0})  # room 1's interlock is !6
    room = d.status("1")
    assert alarm(room, "interlock")["priority"] == "high"
    assert room["stim"]["armed"] is False
    # Refused anyway for the interlock: that is the reason given, not storage.
    assert err_code(d.request({"cmd": "stim", "room": "1", "on": True})) == "interlock"
    assert sim_levels(d)[GATE1] == 0
    # Stop and finish while no save works: the lines stay off.
    d.request({"cmd": "stop", "room": "1"})
    assert d.status("1")["state"] == "due"
    assert sim_levels(d)[GATE1] == 0 and sim_levels(d)[GATE2] == 0
    os.rmdir(blocker)
    d.ok({"cmd": "finish", "room": "1", "removed": 4})
    assert sim_levels(d)[GATE1] == 0 and sim_levels(d)[GATE2] == 0
