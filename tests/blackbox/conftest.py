"""Black-box test harness for acud: starts the real daemon on the simulated GPIO
backend in a temporary directory and talks to it through acuctl and the raw socket.

Everything here follows docs/SPEC.md (the product contract); nothing relies
on the daemon's internals.
"""

import json as jsonlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
import acuproc  # noqa: E402  (the daemon-process helpers shared with tests/stress)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ACUD = os.path.join(REPO, "acud")
ACUCTL = os.path.join(REPO, "acuctl")

ME = pwd.getpwuid(os.getuid()).pw_name

# Default room layout: names are distinctive so that CLI output can be checked.
DEFAULT_ROOMS = """\
[room 1]
name = Lotus
gate = 17, 27
pulse = 22, 23
alarm = 5
audible = yes
interlock = 6

[room 2]
name = Bamboo
gate = 24

[room 3]
name = Cedar
gate = 13
alarm = 16

[room 4]
name = Willow
gate = 19, 20
"""
ROOM_NAMES = {"1": "Lotus", "2": "Bamboo", "3": "Cedar", "4": "Willow"}

DEFAULT_PROFILES = """\
[profile lbp-2hz]
description = Low back pain, 2 Hz continuous
mode = continuous
frequency_hz = 2
duration_s = 1200

[profile gentle]
description = Gate only, stimulator sets the rate
mode = intermittent
on_s = 5
off_s = 5
pregnancy_safe = yes
"""

# Lives in profiles_dir/extra.conf: profiles also come from that directory.
EXTRA_PROFILE = """\
[profile extra-10hz]
description = From the profiles directory
mode = continuous
frequency_hz = 10
duration_s = 600
"""


def config_text(session_min="1s", session_max="10m", stim_max=None,
                checkin_interval=None, escalate_after=None,
                require_needle_count=None, access=None, rooms=None,
                profiles=None, safety=None, extra=""):
    """A complete acud.conf. Paths are relative: they resolve against the
    config file's directory. None leaves a key at its default."""
    out = ["; acud black-box test config",
           "[daemon]",
           "socket = run/acud.sock",
           "state_dir = state",
           "profiles_dir = profiles.d",
           "log_level = debug",
           "",
           "[gpio]",
           "backend = sim",
           "",
           "[limits]"]
    if session_min is not None:
        out.append(f"session_min = {session_min}")
    if session_max is not None:
        out.append(f"session_max = {session_max}")
    if stim_max is not None:
        out.append(f"stim_max = {stim_max}")
    out.append("")
    out.append("[safety]")
    if require_needle_count is not None:
        out.append(f"require_needle_count = {require_needle_count}")
    for k, v in (safety or {}).items():
        out.append(f"{k} = {v}")
    out.append("")
    out.append("[alarm]")
    if escalate_after is not None:
        out.append(f"escalate_after = {escalate_after}")
    if checkin_interval is not None:
        out.append(f"checkin_interval = {checkin_interval}")
    out.append("")
    if access:
        out.append("[access]")
        for k, v in access.items():
            out.append(f"{k} = {v}")
        out.append("")
    out.append(DEFAULT_ROOMS if rooms is None else rooms)
    out.append(DEFAULT_PROFILES if profiles is None else profiles)
    out.append(extra)
    return "\n".join(out) + "\n"


# Daemons started by the current test, so that a failure report carries their stderr.
_current_daemons = []


class AcudError(AssertionError):
    pass


class Conn(acuproc.Conn):
    """A persistent client connection: one JSON line per request, one per reply."""

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self, timeout=10.0):
        line = self.recv_line(timeout)
        try:
            return jsonlib.loads(line)
        except ValueError:
            raise AssertionError(f"reply is not JSON: {line[:300]!r}")

    def recv_until(self, pred, timeout=10.0):
        """Reads lines until one satisfies pred; returns it (and raises on timeout)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching line within {timeout}s; saw {seen[-5:]!r}")
            try:
                msg = self.recv(left)
            except TimeoutError:
                raise TimeoutError(f"no matching line within {timeout}s; saw {seen[-5:]!r}")
            seen.append(msg)
            if pred(msg):
                return msg

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Daemon(acuproc.DaemonProcess):
    def __init__(self, tmpdir, conf_text=None, **overrides):
        self.dir = tmpdir
        self.conf = os.path.join(tmpdir, "acud.conf")
        self.socket = os.path.join(tmpdir, "run", "acud.sock")
        self.state_dir = os.path.join(tmpdir, "state")
        self.profiles_dir = os.path.join(tmpdir, "profiles.d")
        os.makedirs(self.profiles_dir, exist_ok=True)
        with open(os.path.join(self.profiles_dir, "extra.conf"), "w") as f:
            f.write(EXTRA_PROFILE)
        self.write_config(conf_text if conf_text is not None else config_text(**overrides))
        self.proc = None
        self._errf = None
        self.stderr_path = os.path.join(tmpdir, "acud.stderr")
        self.starts = 0

    # -- process -----------------------------------------------------------
    def write_config(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=10.0, env=None):
        """env: variables added to acud's environment (e.g. NOTIFY_SOCKET)."""
        assert os.path.exists(ACUD), f"{ACUD} is not built"
        self.starts += 1
        self._errf = open(self.stderr_path, "ab")
        self._errf.write(f"----- start #{self.starts} -----\n".encode())
        self._errf.flush()
        # ACUD_WRAPPER (e.g. a valgrind command line) goes in front of acud.
        wrapper = shlex.split(os.environ.get("ACUD_WRAPPER", ""))
        self.proc = subprocess.Popen(wrapper + [ACUD, "-f", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._errf, stderr=self._errf, cwd=self.dir,
                                     env=dict(os.environ, **env) if env else None)
        if self not in _current_daemons:
            _current_daemons.append(self)
        acuproc.wait_accepting(self.proc, self.socket, timeout, self.stderr, AcudError)
        return self

    def stop(self, timeout=5.0):
        """SIGTERM; returns the exit status (None if it did not exit in time)."""
        try:
            return self.terminate(timeout)
        finally:
            if self._errf:
                self._errf.close()

    def kill9(self):
        super().kill9()
        self._errf.close()

    def restart(self):
        self.start()
        return self

    def stderr(self):
        return acuproc.read_text(self.stderr_path)

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- clients -----------------------------------------------------------
    def connect(self, timeout=10.0):
        return Conn(self.socket, timeout)

    def request(self, obj, timeout=10.0):
        """One request on a fresh connection; returns the reply as a dict."""
        with self.connect(timeout) as c:
            return c.request(obj, timeout)

    def raw(self, data, timeout=10.0):
        """Sends bytes as they are on a fresh connection and returns the first reply
        line parsed as JSON."""
        with self.connect(timeout) as c:
            c.send_raw(data)
            return c.recv(timeout)

    def ok(self, obj):
        """A request that must succeed."""
        rep = self.request(obj)
        assert rep.get("ok") is True, f"{obj!r} failed: {rep!r}"
        return rep

    def status(self, room=None):
        if room is None:
            return self.ok({"cmd": "status"})["rooms"]
        return self.ok({"cmd": "status", "room": room})["room"]

    def start_session(self, room="1", duration_s=600, needles=6, patient="A1043", **kw):
        req = {"cmd": "start", "room": room, "duration_s": duration_s, "needles": needles,
               "patient": patient}
        req.update(kw)
        return self.ok(req)["room"]

    def wait_room(self, room, pred, timeout=6.0, what="condition"):
        deadline = time.monotonic() + timeout
        r = None
        while time.monotonic() < deadline:
            r = self.status(room)
            if pred(r):
                return r
            time.sleep(0.05)
        raise AssertionError(f"room {room}: {what} not reached within {timeout}s; last: {r!r}")

    def acuctl(self, *args, json=False, env=None, socket_path=None, timeout=15, **popen_kw):
        cmd = [ACUCTL]
        sp = self.socket if socket_path is None else socket_path
        if sp:
            cmd += ["-s", sp]
        if json:
            cmd.append("--json")
        cmd += [str(a) for a in args]
        return run(cmd, env=env, timeout=timeout, **popen_kw)


def run(cmd, env=None, timeout=15, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                       timeout=timeout, **kw)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def config_accepted(rc, err):
    """--check-config's verdict on a configuration with the installed state_dir
    (/var/lib/acud): a user who may not create it there gets that error, and
    only that one; root and acud's own user get OK."""
    if rc == 0:
        return True
    lines = [l for l in err.splitlines() if l.strip()]
    return (os.geteuid() != 0 and rc == 1 and len(lines) == 1
            and re.search(r": state_dir \S+: .*not writable by ", lines[0]) is not None)


def make_tmpdir():
    return acuproc.make_tmpdir("acubb.")


@pytest.fixture
def tmpdir_short():
    d = make_tmpdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _finish(daemons):
    problems = []
    for d in daemons:
        if d.alive():
            rc = d.stop(5.0)
            if rc != 0:
                problems.append(f"acud did not exit 0 on SIGTERM within 5 s (status {rc}):\n"
                                f"{d.stderr()[-4000:]}")
    return problems


@pytest.fixture
def make_daemon():
    """Factory: make_daemon(**config_overrides) or make_daemon(conf_text=...).
    Returns a started Daemon; every daemon is stopped with SIGTERM at teardown and
    must exit 0 within 5 s."""
    made = []
    dirs = []

    def factory(conf_text=None, start=True, **overrides):
        tmp = make_tmpdir()
        dirs.append(tmp)
        d = Daemon(tmp, conf_text=conf_text, **overrides)
        made.append(d)
        if start:
            d.start()
        return d

    yield factory
    problems = _finish(made)
    for tmp in dirs:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def daemon(make_daemon):
    """A fresh daemon with the default config (session_min = 1s, session_max = 10m)."""
    return make_daemon()


@pytest.fixture(autouse=True)
def _track_daemons():
    _current_daemons.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, d in enumerate(_current_daemons):
            rep.sections.append((f"acud #{i} stderr ({d.dir})", d.stderr()[-6000:]))


def err_code(rep):
    """The error code of a failed reply (asserting it failed)."""
    assert rep.get("ok") is False, f"expected a refusal, got {rep!r}"
    assert isinstance(rep.get("error"), dict), f"no error object: {rep!r}"
    assert isinstance(rep["error"].get("message"), str), f"no error message: {rep!r}"
    return rep["error"].get("code")


def alarm(room, kind):
    """The active alarm of that kind in a room object, or None."""
    for a in room.get("alarms") or []:
        if a.get("kind") == kind:
            return a
    return None


def parse_ts(s):
    """RFC 3339 -> unix seconds (float); asserts the format."""
    import datetime
    import re
    assert isinstance(s, str), f"timestamp is not a string: {s!r}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", s), \
        f"not RFC 3339: {s!r}"
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pytest_collection_modifyitems(items):
    """Grouped files first, the largest group first. pytest-xdist's loadgroup
    hands out work in collection order and a group runs on one worker; the
    pulse-timing group alone is most of a worker's share, so it must start at
    once rather than after the other workers have drained the rest."""
    def group(item):
        m = item.get_closest_marker("xdist_group")
        return (m.args[0] if m.args else m.kwargs.get("name")) if m else None
    groups = {it: group(it) for it in items}
    size = {}
    for g in groups.values():
        if g is not None:
            size[g] = size.get(g, 0) + 1
    # sort is stable: ungrouped tests keep their order after the groups.
    items.sort(key=lambda it: (1, 0, "") if groups[it] is None
               else (0, -size[groups[it]], groups[it]))
