"""acuctl (SPEC §7): commands, exit status 0/1/2/3, --json, ACUD_SOCKET, the status
table."""

import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import ACUCTL, ROOM_NAMES, run


def test_version(daemon):
    rc, out, err = daemon.acuctl("version")
    assert rc == 0, err
    assert out.strip()


def test_json_prints_reply(daemon):
    rc, out, err = daemon.acuctl("version", json=True)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["ok"] is True and rep["protocol"] == 1
    rc, out, err = daemon.acuctl("status", "2", json=True)
    assert rc == 0
    rep = json.loads(out)
    assert rep["ok"] is True and rep["room"]["id"] == "2"
    rc, out, err = daemon.acuctl("status", json=True)
    assert rc == 0
    assert [r["id"] for r in json.loads(out)["rooms"]] == ["1", "2", "3", "4"]


def test_refused_exit_1(daemon):
    rc, out, err = daemon.acuctl("pause", "1")
    assert rc == 1
    assert "invalid-state" in err
    rc, out, err = daemon.acuctl("pause", "1", json=True)
    assert rc == 1
    rep = json.loads(out)
    assert rep["ok"] is False and rep["error"]["code"] == "invalid-state"
    rc, out, err = daemon.acuctl("status", "99")
    assert rc == 1 and "unknown-room" in err
    rc, out, err = daemon.acuctl("profile", "nope")
    assert rc == 1 and "unknown-profile" in err


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["start"],
    ["start", "1"],
    ["start", "1", "twenty"],
    ["start", "1", "20m", "--needles"],
    ["start", "1", "20m", "--needles", "six"],
    ["start", "1", "20m", "--bogus-option"],
    ["finish", "1"],
    ["finish", "1", "--removed", "x"],
    ["stim", "1", "maybe"],
    ["needles", "1"],
    ["needles", "1", "lots"],
    ["extend", "1"],
    ["flag", "1"],
    ["pause"],
    ["profile"],
    ["history", "--limit", "many"],
    ["--no-such-global-flag", "status"],
])
def test_usage_exit_2(daemon, args):
    rc, out, err = daemon.acuctl(*args)
    assert rc == 2, f"acuctl {args}: exit {rc}, stderr {err!r}"
    assert err.strip(), "usage error without a message"
    assert daemon.status("1")["state"] == "idle"


def test_acud_knows_every_acuctl_command(daemon):
    """acuctl and acud take their command names from one table (util.c):
    every command acuctl offers is one acud dispatches."""
    rc, out, err = run([ACUCTL, "--complete", ""])
    assert rc == 0, err
    names = [w for w in out.split()[1:] if w != "help"]
    assert {"status", "watch", "start", "finish", "sim-input"} <= set(names), names
    for name in names:
        rep = daemon.request({"cmd": name})
        assert rep.get("error", {}).get("code") != "unknown-command", (name, rep)
    assert daemon.request({"cmd": "frobnicate"})["error"]["code"] == "unknown-command"


def test_cannot_reach_exit_3(tmpdir_short):
    missing = os.path.join(tmpdir_short, "nothing-here.sock")
    rc, out, err = run([ACUCTL, "-s", missing, "status"])
    assert rc == 3, (rc, err)
    assert err.strip()
    rc, out, err = run([ACUCTL, "-s", missing, "--json", "version"])
    assert rc == 3


def test_cannot_reach_stale_socket_exit_3(make_daemon):
    d = make_daemon()
    d.kill9()
    rc, out, err = d.acuctl("status")
    assert rc == 3, (rc, err)
    d.restart()


def test_acud_socket_env(daemon):
    env = dict(os.environ, ACUD_SOCKET=daemon.socket)
    rc, out, err = daemon.acuctl("status", "1", json=True, env=env, socket_path="")
    assert rc == 0, err
    assert json.loads(out)["room"]["id"] == "1"
    # -s wins over the environment
    env = dict(os.environ, ACUD_SOCKET="/nonexistent/acud.sock")
    rc, out, err = daemon.acuctl("version", env=env)
    assert rc == 0, err
    rc, out, err = daemon.acuctl("version", env=env, socket_path="")
    assert rc == 3


def test_status_table_lists_rooms(daemon):
    rc, out, err = daemon.acuctl("status")
    assert rc == 0, err
    for name in ROOM_NAMES.values():
        assert name in out, f"{name} not in status output:\n{out}"


def test_start_then_status_shows_running(longdaemon):
    d = longdaemon
    rc, out, err = d.acuctl("start", "1", "20m", "--needles", "6", "--patient", "A1043")
    assert rc == 0, err
    r = d.status("1")
    assert r["state"] == "running"
    assert r["needles"] == 6 and r["patient"] == "A1043"
    rc, out, err = d.acuctl("status")
    assert rc == 0
    assert "A1043" in out
    assert "running" in out.lower()
    rc, out, err = d.acuctl("status", "1")
    assert rc == 0 and "A1043" in out and "running" in out.lower()


@pytest.fixture
def longdaemon(make_daemon):
    return make_daemon(session_max="60m")


def test_start_20m_exact(longdaemon):
    d = longdaemon
    rc, out, err = d.acuctl("start", "1", "20m", "--needles", "6", "--patient", "A1043")
    assert rc == 0, err
    r = d.status("1")
    assert r["state"] == "running" and r["duration_s"] == 1200
    assert r["needles"] == 6 and r["patient"] == "A1043"
    rc, out, err = d.acuctl("start", "2", "61m", "--needles", "1")
    assert rc == 1 and "out-of-range" in err
    rc, out, err = d.acuctl("start", "2", "1h30m", "--needles", "1")
    assert rc == 1 and "out-of-range" in err
    rc, out, err = d.acuctl("start", "2", "90s", "--needles", "1")
    assert rc == 0 and d.status("2")["duration_s"] == 90
    rc, out, err = d.acuctl("start", "3", "45", "--needles", "1")
    assert rc == 0 and d.status("3")["duration_s"] == 45


def test_status_shows_overdue(daemon):
    daemon.start_session("2", 300)
    daemon.ok({"cmd": "stop", "room": "2"})
    rc, out, err = daemon.acuctl("status")
    assert rc == 0
    assert "OVERDUE" in out, out
    rc, out, err = daemon.acuctl("status", "2")
    assert rc == 0 and "OVERDUE" in out, out


def test_full_session_via_cli(daemon):
    d = daemon
    assert d.acuctl("start", "1", "5m", "--needles", "4", "--patient", "C1", "--profile",
                    "lbp-2hz", "--flag", "metal-implant", "--flag", "bleeding-disorder")[0] == 0
    r = d.status("1")
    assert r["profile"] == "lbp-2hz"
    assert sorted(r["flags"]) == ["bleeding-disorder", "metal-implant"]
    assert d.acuctl("pause", "1")[0] == 0
    assert d.status("1")["state"] == "paused"
    assert d.acuctl("resume", "1")[0] == 0
    assert d.acuctl("extend", "1", "1m")[0] == 0
    assert 355 <= d.status("1")["remaining_s"] <= 360
    assert d.acuctl("checkin", "1")[0] == 0
    assert d.acuctl("needles", "1", "+2")[0] == 0
    assert d.acuctl("needles", "1", "-1")[0] == 0
    assert d.status("1")["needles"] == 5
    assert d.acuctl("flag", "1", "pregnancy", "epilepsy")[0] == 0
    assert {"pregnancy", "epilepsy"} <= set(d.status("1")["flags"])
    assert d.acuctl("stop", "1")[0] == 0
    assert d.status("1")["state"] == "due"
    assert d.acuctl("silence", "1", "3m")[0] == 0
    assert d.acuctl("silence", "1")[0] == 0
    rc, out, err = d.acuctl("finish", "1", "--removed", "4")
    assert rc == 1 and "needle-mismatch" in err
    rc, out, err = d.acuctl("finish", "1", "--removed", "5")
    assert rc == 0, err
    assert d.status("1")["state"] == "idle"
    rc, out, err = d.acuctl("history", "--room", "1", "--limit", "50", json=True)
    assert rc == 0
    entries = json.loads(out)["entries"]
    assert any("outcome" in e for e in entries)
    rc, out, err = d.acuctl("history", "--limit", "1", json=True)
    assert rc == 0 and len(json.loads(out)["entries"]) == 1
    rc, out, err = d.acuctl("history", "--since", "2000-01-01T00:00:00Z")
    assert rc == 0


def test_finish_override_via_cli(daemon):
    daemon.start_session("1", 300, needles=3)
    daemon.ok({"cmd": "stop", "room": "1"})
    rc, out, err = daemon.acuctl("finish", "1", "--removed", "2", "--override", "lost under couch")
    assert rc == 0, err
    assert daemon.status("1")["state"] == "idle"
    entries = daemon.ok({"cmd": "history", "room": "1"})["entries"]
    assert any("lost under couch" in json.dumps(e) for e in entries)


def test_profiles_and_profile(daemon):
    rc, out, err = daemon.acuctl("profiles")
    assert rc == 0
    for n in ("lbp-2hz", "gentle", "extra-10hz"):
        assert n in out
    rc, out, err = daemon.acuctl("profile", "lbp-2hz")
    assert rc == 0 and "continuous" in out


def test_reload_cli(daemon):
    assert daemon.acuctl("reload")[0] == 0
    daemon.write_config("[daemon]\nnonsense = 1\n")
    rc, out, err = daemon.acuctl("reload")
    assert rc == 1 and "config" in err


def test_out_of_range_via_cli(daemon):
    rc, out, err = daemon.acuctl("start", "1", "11m", "--needles", "6")
    assert rc == 1 and "out-of-range" in err
    rc, out, err = daemon.acuctl("start", "1", "5m", "--needles", "6", "--patient", "bad ref")
    assert rc in (1, 2), (rc, err)
    assert daemon.status("1")["state"] == "idle"


def test_watch_json_lines_when_not_a_tty(daemon):
    p = subprocess.Popen([ACUCTL, "-s", daemon.socket, "watch"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        assert p.poll() is None, p.stderr.read()
        daemon.start_session("4", 300, patient="WATCH4")
        buf = b""
        deadline = time.monotonic() + 5
        found = None
        while time.monotonic() < deadline and found is None:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if not r:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            for line in buf.split(b"\n")[:-1]:
                if not line.strip():
                    continue
                ev = json.loads(line)  # every line is one JSON object
                if ev.get("event") == "room" and ev["room"]["id"] == "4":
                    found = ev
        assert found is not None, f"no room event on acuctl watch: {buf[:500]!r}"
        assert found["room"]["patient"] == "WATCH4"
    finally:
        p.kill()
        p.wait()


def test_watch_ends_when_daemon_stops(make_daemon):
    d = make_daemon()
    p = subprocess.Popen([ACUCTL, "-s", d.socket, "watch"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        assert d.stop() == 0
        p.wait(timeout=5)  # the stream ends with the daemon
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# --- the renderers, against a stand-in for acud with replies made to measure ---

class FakeAcud:
    """Answers every request line with {"id", "ok": true} plus replies[cmd]."""

    def __init__(self, path, replies):
        self.path, self.replies = path, replies
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c, c.makefile("rb") as f:
                for line in f:
                    req = json.loads(line)
                    rep = {"id": req.get("id"), "ok": True}
                    rep.update(self.replies.get(req["cmd"], {}))
                    c.sendall((json.dumps(rep) + "\n").encode())

    def close(self):
        self.sock.close()


def fake_room(rid, name, state="running", alarms=(), pulse_lines=True, pulses=0, patient=None):
    return {"id": rid, "name": name, "state": state, "patient": patient, "duration_s": 1200,
            "remaining_s": 600, "overdue_s": 0, "needles": 1, "profile": "lbp-2hz",
            "flags": [], "attention": None,
            "stim": {"armed": True, "on": True, "blocked": None, "pulse_lines": pulse_lines,
                     "missed_pulses": 0,
                     "channels": [{"channel": 1, "on": True, "delivered_s": 3,
                                   "pulses": pulses}]},
            "alarms": [{"kind": k, "priority": p, "since": "2026-01-01T00:00:00Z",
                        "silenced_until": None} for k, p in alarms]}


LONG_ROOMS = [
    fake_room("1", "Room 1 (window by the garden)", alarms=[("checkin", "low")],
              patient="A1043"),
    fake_room("2", "Room 2 (EA)", state="due",
              alarms=[("due", "high"), ("needle-mismatch", "high"), ("checkin", "low")]),
    fake_room("3", "Room 3", state="idle"),
]


@pytest.fixture
def fake_acud(tmpdir_short):
    fakes = []

    def make(replies):
        f = FakeAcud(os.path.join(tmpdir_short, f"fake{len(fakes)}.sock"), replies)
        fakes.append(f)
        return f
    yield make
    for f in fakes:
        f.close()


def on_terminal(args, cols, rows=24):
    """Runs acuctl with its stdout on a terminal of that size; its screen text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, NO_COLOR="1", TERM="xterm")
    p = subprocess.Popen([ACUCTL] + args, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=10) == 0, p.stderr.read()
    return out.decode().replace("\r\n", "\n")


def test_status_into_a_pipe_cuts_nothing(fake_acud):
    f = fake_acud({"status": {"rooms": LONG_ROOMS}})
    rc, out, err = run([ACUCTL, "-s", f.path, "status"])
    assert rc == 0, err
    assert "Room 1 (window by the garden)" in out, out
    assert "DUE,NEEDLE-MISMATCH,checkin" in out, out
    assert "~" not in out, out


@pytest.mark.parametrize("cols", [80, 60])
def test_status_on_a_terminal_wraps_names_and_alarms(fake_acud, cols):
    """Names and alarms take the room they need: the lines fit the terminal,
    and every word of a name and every alarm is there, whole."""
    f = fake_acud({"status": {"rooms": LONG_ROOMS}})
    text = on_terminal(["-s", f.path, "status"], cols)
    lines = text.rstrip("\n").split("\n")
    assert all(len(line) < cols for line in lines), text
    assert "~" not in text, text
    words = text.split()
    for w in ("Room", "1", "(window", "by", "the", "garden)", "(EA)", "checkin"):
        assert w in words, (w, text)
    if cols >= 80:  # narrower, the PATIENT and NEEDLES columns make way
        assert "A1043" in words and "NEEDLES" in words, text
    assert "NEEDLE-MISMATCH" in text and "DUE," in text, text
    # A wrapped name goes on under its own column, below its row.
    col = lines[0].index("NAME")
    row1 = next(i for i, line in enumerate(lines) if line.startswith("1 "))
    assert lines[row1 + 1][:col].strip() == "", text


def test_pulses_counted_and_gate_only(fake_acud):
    f = fake_acud({"status": {"room": fake_room("1", "Pulsed", pulses=1)}})
    rc, out, err = run([ACUCTL, "-s", f.path, "status", "1"])
    assert rc == 0, err
    assert re.search(r"stim\.channel 1: +on, 3 s delivered, 1 pulse$", out, re.M), out
    f = fake_acud({"status": {"room": fake_room("2", "Gated", pulse_lines=False)},
                   "stim": {"room": fake_room("2", "Gated", pulse_lines=False)}})
    rc, out, err = run([ACUCTL, "-s", f.path, "status", "2"])
    assert rc == 0, err
    assert re.search(r"stim\.channel 1: +on, 3 s delivered$", out, re.M), out
    assert "gate only (the stimulator sets its own rate)" in out, out
    assert "missed_pulses" not in out, out
    rc, out, err = run([ACUCTL, "-s", f.path, "stim", "2", "on"])
    assert rc == 0, err
    assert "stim on, gate only" in out, out
