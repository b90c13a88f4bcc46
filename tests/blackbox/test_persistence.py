"""Persistence and restart (SPEC §8): sessions survive kill -9, timers keep their
original end, a corrupt state file is set aside and reported."""

import os
import time

from conftest import alarm, parse_ts

KEEP = ("state", "patient", "needles", "practitioner", "started_at", "duration_s",
        "profile", "flags")


def test_sessions_survive_kill9(make_daemon):
    d = make_daemon()
    d.start_session("1", 600, needles=6, patient="RUN1", flags=["metal-implant"],
                    profile="lbp-2hz")
    d.ok({"cmd": "needles", "room": "1", "delta": 2})
    d.start_session("2", 500, needles=3, patient="PAU2")
    time.sleep(1.1)
    d.ok({"cmd": "pause", "room": "2"})
    d.start_session("3", 400, needles=4, patient="DUE3")
    d.ok({"cmd": "stop", "room": "3"})
    t_before = time.monotonic()
    before = {r["id"]: r for r in d.status()}
    d.kill9()
    d.restart()
    after = {r["id"]: r for r in d.status()}
    down = time.monotonic() - t_before
    assert after["4"]["state"] == "idle"
    for rid in ("1", "2", "3"):
        b, a = before[rid], after[rid]
        for k in KEEP:
            assert a[k] == b[k], f"room {rid} {k}: before {b[k]!r}, after restart {a[k]!r}"
    assert after["1"]["state"] == "running"
    assert after["1"]["needles"] == 8
    assert after["1"]["ends_at"] == before["1"]["ends_at"]
    # The timer ran on while the daemon was down, and no more than that (a
    # restart under valgrind takes seconds).
    gone = before["1"]["remaining_s"] - after["1"]["remaining_s"]
    assert -1 <= gone <= down + 1, f"{gone} s gone from the timer over {down:.1f} s"
    assert after["2"]["state"] == "paused"
    assert after["2"]["remaining_s"] == before["2"]["remaining_s"]
    assert after["3"]["state"] == "due"
    assert after["3"]["ends_at"] == before["3"]["ends_at"]
    assert alarm(after["3"], "due") is not None
    # Sessions are fully usable after the restart.
    d.ok({"cmd": "resume", "room": "2"})
    d.ok({"cmd": "finish", "room": "3", "removed": 4})
    d.ok({"cmd": "stop", "room": "1"})
    assert d.ok({"cmd": "finish", "room": "1", "removed": 8})["room"]["state"] == "idle"


def test_sessions_survive_sigterm(make_daemon):
    d = make_daemon()
    r = d.start_session("4", 300, needles=5, patient="TERM4")
    assert d.stop() == 0
    d.restart()
    a = d.status("4")
    assert a["state"] == "running" and a["patient"] == "TERM4" and a["needles"] == 5
    assert a["ends_at"] == r["ends_at"]


def test_end_passed_while_down_is_due(make_daemon):
    d = make_daemon()
    r = d.start_session("1", 2, needles=6, patient="LATE1")
    d.kill9()
    time.sleep(3.5)
    d.restart()
    a = d.status("1")
    assert a["state"] == "due", a
    assert a["overdue_s"] >= 1, a
    assert a["overdue_s"] <= 10, a
    assert a["patient"] == "LATE1" and a["needles"] == 6
    assert abs(parse_ts(a["ends_at"]) - parse_ts(r["ends_at"])) <= 1
    assert alarm(a, "due") is not None


def test_stim_not_rearmed_by_restart(make_daemon):
    d = make_daemon()
    r = d.start_session("1", 300, profile="lbp-2hz", stim=True)
    assert r["stim"]["armed"] is True, r["stim"]
    d.kill9()
    d.restart()
    a = d.status("1")
    assert a["state"] == "running"
    assert a["stim"]["armed"] is False and a["stim"]["on"] is False
    assert all(ch["on"] is False for ch in a["stim"]["channels"])


def test_history_survives_restart(make_daemon):
    d = make_daemon()
    d.start_session("1", 300, needles=2, patient="HIST1")
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 2})
    d.kill9()
    d.restart()
    entries = d.ok({"cmd": "history", "room": "1"})["entries"]
    assert any("outcome" in e and "HIST1" in str(e) for e in entries), entries


def test_damaged_history_line_skipped(make_daemon):
    d = make_daemon()
    d.start_session("1", 300, needles=2, patient="DMG1")
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 2})
    d.kill9()
    # The history is one file per day (SPEC §8): the newest is today's.
    hdir = os.path.join(d.state_dir, "history")
    hist = sorted(n for n in os.listdir(hdir) if n.endswith(".jsonl"))
    assert hist, os.listdir(hdir)
    with open(os.path.join(hdir, hist[-1]), "ab") as f:
        f.write(b'{"type": "session", "trunc')  # a torn last line, as after power loss
    d.restart()
    d.start_session("2", 300, needles=1, patient="DMG2")
    d.ok({"cmd": "stop", "room": "2"})
    d.ok({"cmd": "finish", "room": "2", "removed": 1})
    entries = d.ok({"cmd": "history"})["entries"]
    text = str(entries)
    assert "DMG1" in text and "DMG2" in text, entries


def test_sigint_shuts_down_and_keeps_sessions(make_daemon):
    import signal
    d = make_daemon()
    r = d.start_session("3", 300, patient="INT3")
    d.proc.send_signal(signal.SIGINT)
    d.proc.wait(5)
    d._errf.close()
    d.restart()
    a = d.status("3")
    assert a["state"] == "running" and a["patient"] == "INT3" and a["ends_at"] == r["ends_at"]


def _corrupt_state(d):
    names = [n for n in os.listdir(d.state_dir)
             if n.endswith(".json") and "history" not in n]
    assert names, f"no .json state file in {d.state_dir}: {os.listdir(d.state_dir)}"
    for n in names:
        with open(os.path.join(d.state_dir, n), "wb") as f:
            f.write(b'{"rooms": [ \x00\xff garbage ]]]')
    return names


def test_corrupt_state_file_kept_aside(make_daemon):
    d = make_daemon()
    d.start_session("1", 300, patient="CORR1")
    d.kill9()
    _corrupt_state(d)
    d.restart()
    files = os.listdir(d.state_dir)
    assert any("corrupt" in n for n in files), f"no file set aside in state_dir: {files}"
    assert "corrupt" in d.stderr().lower(), "stderr does not report the corrupt state file"
    rooms = d.status()
    assert len(rooms) == 4
    # Still fully working.
    d.start_session("2", 300)
    assert d.status("2")["state"] == "running"


def test_corrupt_state_marks_rooms_for_attention(make_daemon):
    d = make_daemon()
    d.start_session("1", 300, patient="CORR1")
    d.kill9()
    _corrupt_state(d)
    d.restart()
    for r in d.status():
        assert isinstance(r.get("attention"), str) and r["attention"], \
            f"room {r['id']} not marked for attention: {r.get('attention')!r}"


def test_state_file_replaced_atomically(make_daemon):
    """No temporary leftovers accumulate, and the saved state is always valid JSON."""
    import json
    d = make_daemon()
    d.start_session("1", 300)
    for _ in range(20):
        d.ok({"cmd": "pause", "room": "1"})
        d.ok({"cmd": "resume", "room": "1"})
    for n in os.listdir(d.state_dir):
        if n.endswith(".json"):
            with open(os.path.join(d.state_dir, n)) as f:
                json.load(f)
    assert len(os.listdir(d.state_dir)) <= 6, os.listdir(d.state_dir)


def test_second_instance_does_not_steal_socket(make_daemon):
    """A second acud on the same config must not take over a live daemon's socket."""
    import subprocess
    from conftest import ACUD
    d = make_daemon()
    d.start_session("1", 300, patient="FIRST1")
    p = subprocess.run([ACUD, "-f", "-c", d.conf], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, "a second acud started on a socket already in use"
    assert d.alive()
    assert d.status("1")["patient"] == "FIRST1"
