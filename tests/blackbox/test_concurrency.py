"""Many clients at once, idle and stalled clients, clients that vanish (SPEC §6)."""

import json
import socket
import threading
import time

from conftest import Conn


def test_500_concurrent_clients(daemon):
    n = 500
    barrier = threading.Barrier(n, timeout=60)
    results = [None] * n

    def client(i):
        try:
            c = Conn(daemon.socket, timeout=30)
        except OSError as e:
            results[i] = f"connect: {e}"
            try:
                barrier.abort()
            except Exception:
                pass
            return
        try:
            barrier.wait()  # all 500 connected at once before anyone asks
            rep = c.request({"id": i, "cmd": "status"}, timeout=30)
            if rep.get("ok") is True and rep.get("id") == i and len(rep["rooms"]) == 4:
                results[i] = "ok"
            else:
                results[i] = f"bad reply {rep!r}"[:200]
        except Exception as e:
            results[i] = f"{type(e).__name__}: {e}"[:200]
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    bad = [(i, r) for i, r in enumerate(results) if r != "ok"]
    assert not bad, f"{len(bad)} of {n} clients not served, e.g. {bad[:5]}"
    assert daemon.alive()
    assert daemon.request({"cmd": "status"})["ok"] is True


def test_idle_client_does_not_block_others(daemon):
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(daemon.socket)
    try:
        t0 = time.monotonic()
        rep = daemon.request({"cmd": "status"}, timeout=5)
        assert rep["ok"] is True
        assert time.monotonic() - t0 < 5
    finally:
        idle.close()


def test_half_line_does_not_block_others(daemon):
    with daemon.connect() as slow:
        slow.send_raw(b'{"id":"slow","cmd":"sta')
        time.sleep(0.2)
        for i in range(5):
            rep = daemon.request({"id": i, "cmd": "status"}, timeout=5)
            assert rep["ok"] is True and rep["id"] == i
        # Sessions can be run meanwhile.
        daemon.start_session("1", 300)
        # The stalled client completes its line and gets its answer.
        slow.send_raw(b'tus","room":"1"}\n')
        rep = slow.recv(timeout=5)
        assert rep["ok"] is True and rep["id"] == "slow"
        assert rep["room"]["state"] == "running"


def test_byte_at_a_time(daemon):
    line = json.dumps({"id": 3, "cmd": "status", "room": "2"}).encode() + b"\n"
    with daemon.connect() as c:
        for b in line:
            c.send_raw(bytes([b]))
        rep = c.recv(timeout=5)
    assert rep["ok"] is True and rep["id"] == 3 and rep["room"]["id"] == "2"


def test_clients_that_vanish(daemon):
    """Clients that close before reading their reply, or in the middle of a line,
    or with unread replies piling up, must not harm the daemon (no SIGPIPE death)."""
    big = b"".join(json.dumps({"id": i, "cmd": "status"}).encode() + b"\n" for i in range(200))
    for _ in range(50):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(b'{"cmd":"status"}\n')
        s.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(b'{"cmd":"sta')
        s.close()
    for _ in range(5):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(big)
        s.shutdown(socket.SHUT_WR)
        s.close()
    time.sleep(0.3)
    assert daemon.alive()
    assert daemon.request({"cmd": "status"})["ok"] is True


def test_reader_that_never_reads_replies(daemon):
    """A client pipelining requests without reading its replies must not stall others."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(daemon.socket)
    s.settimeout(0.05)
    payload = json.dumps({"cmd": "status"}).encode() + b"\n"
    sent = 0
    deadline = time.monotonic() + 3
    try:
        while time.monotonic() < deadline and sent < 20000:
            try:
                s.sendall(payload)
                sent += 1
            except (socket.timeout, BlockingIOError):
                break
            except OSError:
                break  # dropped by the daemon: fine
        rep = daemon.request({"cmd": "version"}, timeout=5)
        assert rep["ok"] is True
    finally:
        s.close()
    assert daemon.alive()


def test_many_sequential_connections(daemon):
    for i in range(300):
        with daemon.connect() as c:
            assert c.request({"id": i, "cmd": "version"})["id"] == i
    assert daemon.alive()


def test_concurrent_starts_one_wins(daemon):
    """Ten clients race to start the same room: exactly one succeeds."""
    results = []
    lock = threading.Lock()

    def go(i):
        rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": 2,
                              "patient": f"RACE{i}"})
        with lock:
            results.append(rep)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    oks = [r for r in results if r.get("ok")]
    assert len(results) == 10
    assert len(oks) == 1, results
    assert all(r["error"]["code"] == "invalid-state" for r in results if not r.get("ok"))
    assert daemon.status("1")["patient"] == oks[0]["room"]["patient"]
