"""The web board over HTTP (SPEC §10), the quick part: routes, methods, Host
names, headers, what a patient-facing screen hides, the event stream, the
client cap, malformed and oversized requests, and sockets passed by systemd.
The browser test and the heavy abuse tests are `make check-web` (tests/web/)."""

import json
import os
import re
import socket
import subprocess
import time

import pytest

import acuproc
from conftest import ACUD, ROOM_NAMES, config_text
from webtool import (METHODS, OTHER_PATHS, PATHS, Stream, get, raw, socket_answers,
                     status_line, web_daemon, web_port, web_section)


@pytest.fixture
def web(make_daemon):
    return web_daemon(make_daemon)


def test_board_off_without_listen(daemon):
    assert "web board" not in daemon.stderr()


def test_routes(web):
    for path, ctype in PATHS.items():
        st, h, body = get(web.port, path)
        assert st == 200, path
        assert h["content-type"].startswith(ctype), (path, h)
    st, h, body = get(web.port, "/")
    assert b"<!DOCTYPE html>" in body
    st, h, body = get(web.port, "/api/status?cache=1")
    assert st == 200


def test_every_method_on_every_path(web):
    for path in list(PATHS) + OTHER_PATHS:
        for m in METHODS:
            st, h, body = get(web.port, path, method=m)
            if path not in PATHS:
                assert st == 404, (m, path, st)
            elif m in ("GET", "HEAD"):
                assert st == 200, (m, path, st)
            else:
                assert st == 405, (m, path, st)
                assert h.get("allow") == "GET, HEAD"
    # A method HTTP does not know: evhttp says it is not implemented.
    assert status_line(raw(web.port, b"BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 501


def test_nothing_over_http_changes_anything(web):
    web.start_session("1", duration_s=600)
    before = web.status("1")
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/api/status", "/events", "/api/stop", "/api/start"):
            st, _, _ = get(web.port, path, method=m,
                           headers={"Content-Type": "application/json"},
                           body=b'{"cmd":"stop","room":"1"}')
            assert st in (404, 405)
    after = web.status("1")
    assert after["state"] == "running" and after["ends_at"] == before["ends_at"]


def test_api_status_is_the_protocol_status(web):
    web.start_session("2", duration_s=300, needles=4, patient="B2201")
    st, h, body = get(web.port, "/api/status")
    assert h["cache-control"] == "no-store"
    got = json.loads(body)
    assert got["ok"] is True
    proto = web.status()
    assert [r["id"] for r in got["rooms"]] == [r["id"] for r in proto]
    assert [r["name"] for r in got["rooms"]] == [ROOM_NAMES[r["id"]] for r in proto]
    r2 = next(r for r in got["rooms"] if r["id"] == "2")
    assert r2["state"] == "running" and r2["patient"] == "B2201" and r2["needles"] == 4
    assert set(proto[1]) == set(r2)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "", "board.lan.evil",
                                  "127.0.0.1:80:80"])
def test_wrong_host_refused(web, host):
    for path in PATHS:
        st, _, body = get(web.port, path, host=host)
        assert st == 421, (path, host, st)
        assert b"rooms" not in body
    # A request without any Host header gets nothing either.
    assert status_line(raw(web.port, b"GET /api/status HTTP/1.0\r\n\r\n")) == 421


def test_configured_hosts(make_daemon):
    d = web_daemon(make_daemon, hosts="board.clinic.lan, reception")
    for host in ("board.clinic.lan", "BOARD.clinic.lan:8080", "reception", "localhost:1",
                 "127.0.0.1", "[::1]:8080"):
        assert get(d.port, "/api/status", host=host)[0] == 200, host
    for host in ("clinic.lan", "evil.board.clinic.lan", "receptionist"):
        assert get(d.port, "/api/status", host=host)[0] == 421, host


def test_security_headers(web):
    for path in list(PATHS) + ["/nope"]:
        st, h, body = get(web.port, path, headers={"Origin": "http://evil.example"})
        assert h.get("x-content-type-options") == "nosniff", path
        assert "content-security-policy" in h, path
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "default-src 'none'" in h["content-security-policy"]
        assert not any(k.startswith("access-control-") for k in h), (path, h)
    for path in ("/api/status", "/events"):
        assert get(web.port, path)[1]["cache-control"] == "no-store"
    # OPTIONS (a CORS preflight) is refused like any other method.
    st, h, _ = get(web.port, "/api/status", method="OPTIONS",
                   headers={"Origin": "http://evil.example",
                            "Access-Control-Request-Method": "GET"})
    assert st == 405 and not any(k.startswith("access-control-") for k in h)


def test_page_runs_only_its_own_script(web):
    st, h, body = get(web.port, "/")
    csp = h["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([0-9a-f]{32})'", csp).group(1)
    page = body.decode()
    assert f'<script nonce="{nonce}">' in page and f'<style nonce="{nonce}">' in page
    assert "@NONCE@" not in page
    assert "unsafe-inline" not in csp and "connect-src 'self'" in csp
    # Nothing from elsewhere: no absolute URL is loaded.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    # A fresh nonce per response.
    st, h2, _ = get(web.port, "/")
    assert h2["content-security-policy"] != csp


def test_show_patient_no_hides_chart_codes(make_daemon):
    d = web_daemon(make_daemon, show_patient="no")
    s = Stream(d.port)
    s.wait_for(lambda e: e[0] == "status")
    d.start_session("1", duration_s=600, patient="A1043", flags=["bleeding-disorder"])
    ev = s.wait_for(lambda e: e[0] == "room" and e[1]["room"]["id"] == "1")
    assert ev[1]["room"]["patient"] is None and ev[1]["room"]["flags"] == []
    _, _, body = get(d.port, "/api/status")
    assert b"A1043" not in body and b"bleeding" not in body
    s.close()
    s = Stream(d.port)
    snap = s.wait_for(lambda e: e[0] == "status")[1]
    assert "A1043" not in json.dumps(snap)
    s.close()
    # The control socket still shows it to the desk.
    assert d.status("1")["patient"] == "A1043"


def test_event_stream(web):
    s = Stream(web.port)
    assert s.status == 200
    assert s.headers["content-type"].startswith("text/event-stream")
    assert s.headers["cache-control"] == "no-store"
    first = s.events()
    assert first[0] == ("retry", 2000)
    snap = s.wait_for(lambda e: e[0] == "status")[1] if len(first) < 2 else first[1][1]
    assert [r["id"] for r in snap["rooms"]] == ["1", "2", "3", "4"]
    assert abs(snap["now"] / 1000 - time.time()) < 5
    t0 = time.monotonic()
    web.start_session("3", duration_s=120)
    ev = s.wait_for(lambda e: e[0] == "room" and e[1]["room"]["id"] == "3")
    assert time.monotonic() - t0 < 1.0
    assert ev[1]["room"]["state"] == "running" and "now" in ev[1]
    # Gates and alarms come too: stimulation on room 1, then a check-in alarm.
    web.ok({"cmd": "start", "room": "1", "duration_s": 300, "needles": 2,
            "profile": "lbp-2hz", "stim": True})
    g = s.wait_for(lambda e: e[0] == "gate")[1]
    assert g["room"] == "1" and g["on"] is True
    web.ok({"cmd": "flag", "room": "1", "flags": ["pacemaker"]})
    s.wait_for(lambda e: e[0] == "gate" and e[1]["on"] is False)
    web.ok({"cmd": "stop", "room": "3"})
    a = s.wait_for(lambda e: e[0] == "alarm")[1]
    assert a["room"] == "3" and a["kind"] == "due" and a["priority"] == "medium"
    s.close()


def test_max_clients(make_daemon):
    d = web_daemon(make_daemon, max_clients=3)
    streams = [Stream(d.port) for _ in range(3)]
    for s in streams:
        assert s.status == 200
    extra = Stream(d.port)
    assert extra.status == 503 and extra.headers.get("retry-after")
    extra.close()
    # The page and the API are still served.
    assert get(d.port, "/api/status")[0] == 200
    streams.pop().close()
    deadline = time.monotonic() + 5
    while True:
        s = Stream(d.port)
        if s.status == 200 or time.monotonic() > deadline:
            break
        s.close()
        time.sleep(0.05)
    assert s.status == 200
    s.close()
    for s in streams:
        s.close()


def test_malformed_and_oversized(web):
    port = web.port
    assert status_line(raw(port, b"garbage\r\n\r\n")) == 400
    assert status_line(raw(port, b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n")) in (400, 505)
    assert status_line(raw(port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")) in (400, 413, 414, None)
    big = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"x" * 9000 + b"\r\n\r\n"
    assert status_line(raw(port, big)) in (400, 413, 431, None)
    many = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n"
    assert status_line(raw(port, many)) in (400, 413, 431, None)
    body = b"POST /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    assert status_line(raw(port, body + b"x" * 100000)) in (400, 413, None)
    assert status_line(raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")) in (400, 413, None)
    assert status_line(raw(port, b"\x00\xff\x01binary\r\n\r\n")) in (400, None)
    assert status_line(raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")) in (400, 405, 413, None)
    # Still serving, and the control socket answers.
    assert get(port, "/api/status")[0] == 200
    assert socket_answers(web)


def test_pipelined_requests(web):
    req = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    out = raw(web.port, req * 5, timeout=2)
    assert out.count(b"HTTP/1.1 200 OK") == 5


def test_reload_applies_title_and_show_patient(make_daemon):
    d = web_daemon(make_daemon, title="Before")
    d.start_session("1", duration_s=600, patient="C3")
    s = Stream(d.port)
    assert s.wait_for(lambda e: e[0] == "status")[1]["title"] == "Before"
    s.close()
    d.write_config(config_text(extra=web_section(listen="127.0.0.1:1", title="After",
                                                 show_patient="no")))
    d.ok({"cmd": "reload"})
    s = Stream(d.port)
    snap = s.wait_for(lambda e: e[0] == "status")[1]
    assert snap["title"] == "After" and snap["show_patient"] is False
    assert snap["rooms"][0]["patient"] is None
    s.close()
    assert "[web] listen takes effect at restart" in d.stderr()


def _activate(tmp, conf, sock, names):
    """acud as systemd starts it with socket activation: the socket at fd 3,
    LISTEN_PID its pid, LISTEN_FDS and LISTEN_FDNAMES."""
    fd = sock.fileno()

    def child():
        os.dup2(fd, 3)
    env = dict(os.environ, LISTEN_FDS="1")
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    errf = open(os.path.join(tmp, "acud.stderr"), "ab")
    p = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', ACUD, "-f", "-c", conf],
                         stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                         preexec_fn=child, pass_fds=(3,), cwd=tmp, env=env)
    errf.close()
    return p


def _activated(d, names):
    """acud started on a listening TCP socket as systemd passes it; (process, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    p = _activate(d.dir, d.conf, sock, names)
    sock.close()
    acuproc.wait_accepting(p, d.socket, 10, d.stderr, AssertionError)
    return p, port


@pytest.mark.parametrize("listen,names", [(None, "web"), (None, None), ("127.0.0.1:1", "web")])
def test_socket_from_systemd(make_daemon, listen, names):
    d = make_daemon(conf_text=config_text(extra=web_section(listen) if listen else ""),
                    start=False)
    p, port = _activated(d, names)
    try:
        assert get(port, "/api/status")[0] == 200
        assert "socket from systemd" in d.stderr()
        # acud did not bind the listen address itself.
        assert not re.search(r"web board on http://127\.0\.0\.1:1/", d.stderr())
    finally:
        p.terminate()
        assert p.wait(5) == 0


def test_socket_from_systemd_named_otherwise_is_left(make_daemon):
    d = make_daemon(start=False)
    p, _ = _activated(d, "other")
    try:
        assert "web board" not in d.stderr()
    finally:
        p.terminate()
        assert p.wait(5) == 0


def test_socket_from_systemd_not_listening_is_refused(make_daemon):
    d = make_daemon(start=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    p = _activate(d.dir, d.conf, sock, "web")
    sock.close()
    assert p.wait(10) == 1
    assert "not a listening stream socket" in d.stderr()


def test_listen_address_in_use_stops_start(make_daemon):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    d = make_daemon(conf_text=config_text(extra=web_section(f"127.0.0.1:{port}")), start=False)
    p = subprocess.Popen([ACUD, "-f", "-c", d.conf], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=10)
    busy.close()
    assert p.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
