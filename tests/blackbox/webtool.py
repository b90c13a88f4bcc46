"""Helpers for the web board's tests (SPEC §10): a daemon with [web] on a free
port, plain HTTP requests, and an event-stream reader. Shared by
test_web.py (make check) and tests/web/ (make check-web)."""

import http.client
import json
import re
import socket
import time

import acuproc

# Every method HTTP/1.1 names; evhttp parses these (any other token is a 400).
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"]
PATHS = {"/": "text/html", "/api/status": "application/json", "/events": "text/event-stream"}
OTHER_PATHS = ["/index.html", "/api", "/api/status/", "/events/x", "/favicon.ico",
               "/%61pi/status", "/../etc/passwd", "/api/start"]


def web_section(listen="127.0.0.1:0", **keys):
    lines = ["[web]", f"listen = {listen}"]
    for k, v in keys.items():
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def web_port(d, timeout=5.0):
    """The port acud logged ("web board on http://127.0.0.1:PORT/"); the
    last start's."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(r"web board on http://[^ ]*:(\d+)/", d.stderr())
        if found:
            return int(found[-1])
        if time.monotonic() > deadline:
            raise AssertionError("acud did not log the web board's address:\n" + d.stderr()[-3000:])
        time.sleep(0.02)


def web_daemon(make_daemon, **keys):
    import sys
    config_text = (sys.modules.get("bbconftest") or sys.modules["conftest"]).config_text
    d = make_daemon(conf_text=config_text(extra=web_section(**keys)))
    d.port = web_port(d)
    return d


def get(port, path="/", method="GET", headers=None, host=None, timeout=10.0, body=None):
    """One request on a fresh connection: (status, headers dict lower-cased, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        if path.startswith("/events") and r.status == 200 and method == "GET":
            data = b""  # a stream: read nothing, just close
        else:
            data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def raw(port, data, timeout=10.0, read_max=65536):
    """Sends bytes as they are; returns what came back until the server closed
    or went quiet for timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while len(out) < read_max:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_line(resp):
    """The status code of a raw HTTP response, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", resp)
    return int(m.group(1)) if m else None


class Stream:
    """A GET /events client that parses Server-Sent Events (chunked or not)."""

    def __init__(self, port, host=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.buf = b""
        self.headers = None
        self.status = None
        self.chunked = False
        self.body = b""
        self.closed = False
        self.pending = []
        self._read_headers(timeout)

    def _fill(self, timeout):
        self.sock.settimeout(max(0.001, timeout))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def _read_headers(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline - time.monotonic()) and (
                    self.closed or time.monotonic() > deadline):
                raise AssertionError(f"no response headers: {self.buf[:300]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _decode(self):
        if not self.chunked:
            self.body += self.buf
            self.buf = b""
            return
        while True:
            if b"\r\n" not in self.buf:
                return
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.buf = rest[size + 2:]
            if size == 0:
                self.closed = True
                return

    def events(self, timeout=5.0):
        """Every complete event that arrived within timeout (at least one, or
        whatever came before timeout): list of (name, data dict or comment)."""
        out, self.pending = self.pending, []
        deadline = time.monotonic() + timeout
        while True:
            self._decode()
            while b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                name, data, comment = "message", [], []
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        comment.append(line[1:].strip())
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line.startswith("retry:"):
                        out.append(("retry", int(line[6:])))
                if comment:
                    out.append(("comment", comment))
                if data:
                    out.append((name, json.loads("\n".join(data))))
            if out or self.closed:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self._fill(left)

    def wait_for(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            evs = self.events(deadline - time.monotonic())
            for i, ev in enumerate(evs):
                seen.append(ev)
                if pred(ev):
                    self.pending = evs[i + 1:] + self.pending
                    return ev
            if self.closed:
                break
        raise AssertionError(f"no matching event within {timeout}s; saw {seen[-5:]!r}")

    def close(self):
        self.sock.close()


def socket_answers(d):
    """The control socket still answers status at once."""
    t = acuproc.mono_ns()
    rooms = d.status()
    return rooms and (acuproc.mono_ns() - t) < 2_000_000_000


def chromium(width=1920, height=1080):
    """Debian's headless Chromium through Selenium (make check-web and make
    check-mqtt install both): a driver whose browser log is kept."""
    import shutil
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars",
              "--force-device-scale-factor=1"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver") or
                                           "/usr/bin/chromedriver"), options=opts)
    drv.set_window_size(width, height)
    return drv
