"""sd_notify (SPEC §9, issue 2): acud started the way systemd's Type=notify starts it,
with $NOTIFY_SOCKET naming a datagram socket the test holds. READY=1 comes only once
every output is inactive and the control socket answers; WATCHDOG=1 comes from the
event loop at half of $WATCHDOG_USEC; a reload is bracketed by RELOADING=1 and
READY=1 (also when the new config is refused); SIGTERM sends STOPPING=1."""

import os
import signal
import socket
import time

import pytest

from conftest import Conn, err_code
from simgpio import HEARTBEAT, STIM_OUTPUTS, read_state, state_path, stim_config


class Notify:
    """The receiving end of $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def recv(self, timeout=10.0):
        """The next datagram's text and the monotonic time it was read."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096)
        return data.decode(), time.monotonic()

    def expect(self, text, timeout=10.0):
        """Reads datagrams until one is `text`; returns the ones before it."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            msg, _ = self.recv(max(0.01, deadline - time.monotonic()))
            if msg == text:
                return before
            before.append(msg)

    def silent_for(self, secs):
        """None when nothing arrives for secs; otherwise what did."""
        self.sock.settimeout(secs)
        try:
            return self.sock.recv(4096)
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


@pytest.fixture
def notified(make_daemon):
    """start(env=None, conf_text=None): an acud started with $NOTIFY_SOCKET (plus env)
    naming a socket the test reads; returns (daemon, Notify, what came before READY=1)."""
    socks = []

    def start(env=None, conf_text=None):
        d = make_daemon(conf_text=conf_text, start=False)
        n = Notify(os.path.join(d.dir, "notify.sock"))
        socks.append(n)
        d.start(env=dict(env or {}, NOTIFY_SOCKET=n.path))
        return d, n, n.expect("READY=1")

    yield start
    for n in socks:
        n.close()


def test_ready_after_safe_state_and_socket(notified):
    d, n, before = notified(conf_text=stim_config())
    assert "WATCHDOG=1" not in before
    # By the time READY=1 is sent the socket answers and every output is safe.
    with Conn(d.socket) as c:
        assert c.request({"cmd": "version"})["ok"]
    levels = read_state(state_path(d))
    for line, inactive in dict(STIM_OUTPUTS, **{HEARTBEAT: 0}).items():
        assert levels.get(line) == inactive, (line, levels)
    # No WATCHDOG_USEC: nothing more while idle.
    extra = n.silent_for(0.5)
    assert extra is None, f"unexpected notification while idle: {extra!r}"
    assert d.stop() == 0
    assert n.expect("STOPPING=1", timeout=5) == []


def test_watchdog_pings_at_half_the_interval(notified):
    # 400 ms: a ping every 200 ms.
    _, n, _ = notified(env={"WATCHDOG_USEC": "400000"})
    times = []
    while len(times) < 6:
        msg, t = n.recv(timeout=5)
        assert msg == "WATCHDOG=1", msg
        times.append(t)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Each gap well inside the 400 ms the watchdog allows (loose: shared CI).
    assert all(0.05 < g < 0.4 for g in gaps), gaps


def test_watchdog_for_another_pid_is_ignored(notified):
    # WATCHDOG_PID names another process (systemd sets it to the main PID).
    _, n, _ = notified(env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    extra = n.silent_for(0.6)
    assert extra is None, f"watchdog ping for another PID's watchdog: {extra!r}"


def test_reload_is_bracketed_by_reloading_and_ready(notified):
    d, n, _ = notified()
    # SIGHUP with a good config.
    os.kill(d.pid, signal.SIGHUP)
    assert n.expect("RELOADING=1", timeout=5) == []
    assert n.expect("READY=1", timeout=5) == []
    # The reload command with a bad one: refused, and still READY=1 after.
    good = open(d.conf).read()
    d.write_config(good + "\n[room 9]\nbogus_key = 1\n")
    rep = d.request({"cmd": "reload"})
    assert err_code(rep) == "config", rep
    assert n.expect("RELOADING=1", timeout=5) == []
    assert n.expect("READY=1", timeout=5) == []
    d.write_config(good)
