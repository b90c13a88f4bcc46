"""A stuck save never stops `status` (issue 12 item 10, SPEC §6, §8).

Every change is acknowledged only once it is saved, so a state_dir whose writes
hang (a frozen file system, a dying SD card) holds up the replies to changes. The
read-only commands (status, version, profiles, profile, watch) are answered at
once all the same, unless a reply of the same connection is still waiting: one
connection's replies keep their order.

The stuck save is real: state_dir on a small ext4 image mounted through a loop
device and frozen with fsfreeze(8). That needs root, losetup, mkfs.ext4 and
fsfreeze; without them the tests are skipped, saying why. The file system is
always thawed before the daemon is stopped and unmounted after it."""

import contextlib
import os
import shutil
import subprocess
import time

import pytest

from conftest import Conn, Daemon, make_tmpdir
from simgpio import stim_config

TOOLS = ("mkfs.ext4", "fsfreeze", "mount", "umount", "losetup")


def _sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=check)


class LoopFs:
    def __init__(self, base):
        self.img = os.path.join(base, "state.img")
        self.mnt = os.path.join(base, "mnt")
        self.frozen_now = False

    def thaw(self):
        if self.frozen_now:
            _sh("fsfreeze", "-u", self.mnt, check=False)
            self.frozen_now = False

    @contextlib.contextmanager
    def frozen(self):
        """Writes to the file system hang inside: a save that never ends."""
        _sh("fsfreeze", "-f", self.mnt)
        self.frozen_now = True
        try:
            yield
        finally:
            self.thaw()


@pytest.fixture
def loopfs():
    if os.geteuid() != 0:
        pytest.skip("needs root: a loop-mounted ext4 image frozen with fsfreeze")
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (util-linux, e2fsprogs)")
    base = make_tmpdir()
    fs = LoopFs(base)
    os.makedirs(fs.mnt)
    with open(fs.img, "wb") as f:
        f.truncate(32 << 20)
    _sh("mkfs.ext4", "-q", "-F", fs.img)
    p = _sh("mount", "-o", "loop", fs.img, fs.mnt, check=False)
    if p.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot loop-mount an ext4 image here: {p.stderr.strip()}")
    yield fs
    fs.thaw()
    if _sh("umount", fs.mnt, check=False).returncode != 0:
        _sh("umount", "-l", fs.mnt, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def stuckd(loopfs, make_daemon):
    """A daemon whose state_dir is on the loop file system; its simulated lines
    live elsewhere (they are the outputs, not the saves)."""
    d = make_daemon(start=False)
    text = stim_config(sim_state=os.path.join(d.dir, "gpio-sim.state"), sim_trace=None)
    d.write_config(text.replace("state_dir = state",
                                f"state_dir = {os.path.join(loopfs.mnt, 'state')}"))
    d.state_dir = os.path.join(loopfs.mnt, "state")
    d.start()
    yield d
    # The daemon is stopped (by make_daemon) only after the thaw: its last save
    # would hang otherwise.
    loopfs.thaw()


def nothing_within(conn, seconds):
    with pytest.raises(TimeoutError):
        conn.recv(timeout=seconds)


def answered_within(d, req, bound=1.0):
    t = time.monotonic()
    rep = d.request(req, timeout=10)
    took = time.monotonic() - t
    assert rep.get("ok") is True, rep
    assert took < bound, f"{req['cmd']} took {took:.2f}s while a save was stuck"
    return rep


def test_read_only_commands_answered_while_a_save_is_stuck(stuckd, loopfs):
    d = stuckd
    changer = d.connect()
    with loopfs.frozen():
        changer.send({"id": 1, "cmd": "start", "room": "2", "duration_s": 300, "needles": 3,
                      "patient": "F1"})
        # The change waits for its save...
        nothing_within(changer, 1.0)
        # ...while everyone else is answered at once, the change already in effect.
        rep = answered_within(d, {"cmd": "status"})
        assert {r["id"]: r["state"] for r in rep["rooms"]}["2"] == "running"
        assert answered_within(d, {"cmd": "status", "room": "2"})["room"]["patient"] == "F1"
        answered_within(d, {"cmd": "version"})
        answered_within(d, {"cmd": "profiles"})
        answered_within(d, {"cmd": "profile", "name": "p2"})
        # A refusal that changes nothing is not held up either.
        rep = d.request({"cmd": "status", "room": "nope"}, timeout=2)
        assert rep["error"]["code"] == "unknown-room", rep
        # watch is answered at once too; its events wait for their saves.
        w = d.connect()
        rep = w.request({"id": "w", "cmd": "watch"}, timeout=2)
        assert rep.get("ok") is True and rep.get("id") == "w", rep
        # A second change waits as well, and never overtakes the first.
        other = d.connect()
        other.send({"id": 2, "cmd": "pause", "room": "2"})
        nothing_within(other, 0.5)
        nothing_within(w, 0.2)
    # Thawed: the replies and events come, in order.
    rep = changer.recv(timeout=10)
    assert rep.get("id") == 1 and rep.get("ok") is True, rep
    rep = other.recv(timeout=10)
    assert rep.get("id") == 2 and rep.get("ok") is True, rep
    assert rep["room"]["state"] == "paused"
    ev = w.recv_until(lambda m: m.get("event") == "room" and m["room"]["id"] == "2", timeout=10)
    # The watcher, answered after the start was made, sees only later changes.
    assert ev["room"]["state"] == "paused", ev
    for c in (changer, other, w):
        c.close()
    assert d.status("2")["state"] == "paused"


def test_one_connection_keeps_its_order_while_a_save_is_stuck(stuckd, loopfs):
    d = stuckd
    c = d.connect()
    with loopfs.frozen():
        # start, then status on the same connection: the status may not overtake
        # the start's reply, though a status elsewhere is answered at once.
        c.send({"id": "a", "cmd": "start", "room": "1", "duration_s": 300, "needles": 2,
                "patient": "F2"})
        c.send({"id": "b", "cmd": "status", "room": "1"})
        c.send({"id": "c", "cmd": "version"})
        nothing_within(c, 1.0)
        answered_within(d, {"cmd": "status", "room": "1"})
    got = [c.recv(timeout=10) for _ in range(3)]
    assert [g.get("id") for g in got] == ["a", "b", "c"], got
    assert all(g.get("ok") for g in got), got
    assert got[1]["room"]["state"] == "running"
    # Once nothing waits, the connection is answered at once again.
    t = time.monotonic()
    assert c.request({"id": "d", "cmd": "status"})["ok"]
    assert time.monotonic() - t < 1.0
    c.close()


def test_a_failed_save_does_not_turn_a_waiting_status_into_an_error(stuckd, loopfs):
    """A status queued behind a change whose save fails is still a status."""
    d = stuckd
    filler = os.path.join(loopfs.mnt, "filler")
    c = d.connect()
    try:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (1 << 20, 4096, 1):   # to the last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        os.close(fd)
        c.send({"id": "a", "cmd": "start", "room": "3", "duration_s": 300, "needles": 2,
                "patient": "F3"})
        c.send({"id": "b", "cmd": "status", "room": "3"})
        a, b = c.recv(timeout=10), c.recv(timeout=10)
        assert a.get("id") == "a" and a.get("ok") is False, f"the save did not fail: {a}"
        assert b.get("id") == "b" and b.get("ok") is True and "room" in b, b
    finally:
        c.close()
        os.unlink(filler)
