"""`acuctl watch` on a terminal: the live board, run in a real tmux pane and read
back with capture-pane, as a person at the front desk would see it."""

import re
import subprocess
import time

import pytest

from conftest import ACUCTL
from debtool import need



def _tmux(sock, *args, check=True):
    return subprocess.run([need("tmux", "tmux"), "-S", sock, *args], capture_output=True, text=True,
                          timeout=10, check=check)


def _screen(sock):
    return _tmux(sock, "capture-pane", "-p", "-t", "board").stdout


def _wait_screen(sock, pred, what, timeout=8.0):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _screen(sock)
        if pred(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"board never showed {what}; last screen:\n{text}")


@pytest.fixture
def board(daemon, tmp_path):
    need("tmux", "tmux")
    sock = str(tmp_path / "tmux.sock")
    # The shell ignores Ctrl-C (acuctl sets its own handler): the pane stays to
    # show acuctl's exit status, as an interactive shell would.
    cmd = f"trap '' INT; {ACUCTL} -s {daemon.socket} watch; echo BOARD-EXIT=$?; sleep 30"
    _tmux(sock, "-f", "/dev/null", "new-session", "-d", "-s", "board", "-x", "100", "-y", "20",
          "env", "TERM=xterm-256color", "sh", "-c", cmd)
    yield sock
    _tmux(sock, "kill-server", check=False)


def test_board_live(daemon, board):
    sock = board
    # Every room on the board, idle.
    text = _wait_screen(sock, lambda t: "Lotus" in t and "Willow" in t, "the rooms")
    assert "idle" in text
    # A session started elsewhere appears without any key press: redrawn on the event.
    daemon.start_session("1", 300, needles=6, patient="A1043")
    text = _wait_screen(sock, lambda t: "A1043" in t and "running" in t, "room 1 running")
    row = next(l for l in text.splitlines() if "Lotus" in l)
    assert "left" in row and "[" in row, row
    # The countdown moves between events.
    first = row
    time.sleep(2.2)
    row = next(l for l in _screen(sock).splitlines() if "Lotus" in l)
    assert row != first, f"countdown did not move: {row!r}"
    # A stopped room is due and shows OVERDUE plainly, with its alarm.
    daemon.ok({"cmd": "stop", "room": "1"})
    text = _wait_screen(sock, lambda t: "OVERDUE" in t, "OVERDUE for room 1")
    assert "due" in text.lower()
    # Resized with the terminal.
    _tmux(sock, "resize-window", "-t", "board", "-x", "60", "-y", "15", check=False)
    text = _wait_screen(sock, lambda t: all(len(l) <= 60 for l in t.splitlines()) and "Lotus" in t,
                        "a redraw at 60 columns")
    # Restored on exit: q leaves the alternate screen; acuctl exits 0.
    _tmux(sock, "send-keys", "-t", "board", "q")
    text = _wait_screen(sock, lambda t: "BOARD-EXIT=" in t, "acuctl exiting")
    assert "BOARD-EXIT=0" in text, text
    assert "Lotus" not in text, "the board was left on the screen after exit"


def test_board_survives_a_daemon_restart(daemon, board):
    """acud goes away (a restart): the board stays, says NOT LIVE since when,
    with its clocks stopped, and comes back live by itself once acud is back."""
    sock = board
    daemon.start_session("1", 600, needles=6, patient="R1")
    _wait_screen(sock, lambda t: "R1" in t and "running" in t, "room 1 running")
    assert daemon.stop() == 0
    text = _wait_screen(sock, lambda t: "*** NOT LIVE since" in t, "NOT LIVE")
    m = re.search(r"\*\*\* NOT LIVE since \d\d:\d\d:\d\d \*\*\*", text)
    assert m, text
    # Still the board, as it was: every room, room 1 running with its patient.
    assert "Lotus" in text and "Willow" in text and "R1" in text, text
    # Its countdown stopped with the stream.
    row = next(l for l in text.splitlines() if "Lotus" in l)
    time.sleep(2.2)
    text = _screen(sock)
    assert "*** NOT LIVE since" in text
    assert next(l for l in text.splitlines() if "Lotus" in l) == row, "the clock ran on"
    # Back: live again without a key press, showing what changed meanwhile.
    daemon.start()
    daemon.start_session("2", 300, needles=2, patient="R2")
    text = _wait_screen(sock, lambda t: "*** NOT LIVE since" not in t and "R2" in t,
                        "the board live again with room 2", timeout=10)
    assert "live again" in text, text
    # ...and events reach it again.
    daemon.ok({"cmd": "pause", "room": "2"})
    _wait_screen(sock, lambda t: any("Bamboo" in l and "paused" in l for l in t.splitlines()),
                 "room 2 paused")
    _tmux(sock, "send-keys", "-t", "board", "q")
    text = _wait_screen(sock, lambda t: "BOARD-EXIT=" in t, "acuctl exiting")
    assert "BOARD-EXIT=0" in text, text


def test_board_ctrl_c_while_not_live(daemon, board):
    sock = board
    _wait_screen(sock, lambda t: "Lotus" in t, "the rooms")
    assert daemon.stop() == 0
    _wait_screen(sock, lambda t: "*** NOT LIVE since" in t, "NOT LIVE")
    time.sleep(1.5)   # a retry or two meanwhile
    _tmux(sock, "send-keys", "-t", "board", "C-c")
    text = _wait_screen(sock, lambda t: "BOARD-EXIT=" in t, "acuctl exiting on Ctrl-C")
    assert "BOARD-EXIT=0" in text, text
    assert "Lotus" not in text, "the board was left on the screen after Ctrl-C"
    daemon.start()   # the fixture stops it
