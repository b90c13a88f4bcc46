"""Roles from peer credentials (SPEC §6): desk, practitioner, technician, no role.
Needs root to create throwaway users and groups; skipped otherwise."""

import grp
import json
import os
import pwd
import select
import shutil
import stat
import subprocess
import time
import uuid

import pytest

from conftest import ACUCTL, config_text

# One worker for the whole file (make check runs the suite in parallel): the
# throwaway users and groups are made once per module and share their names.
pytestmark = [pytest.mark.skipif(os.geteuid() != 0,
                                 reason="role tests need root to create throwaway users "
                                        "and groups (groupadd/useradd)"),
              pytest.mark.xdist_group("roles")]


@pytest.fixture(scope="module")
def accounts():
    if not shutil.which("useradd") or not shutil.which("groupadd"):
        pytest.skip("useradd/groupadd not available")
    tag = uuid.uuid4().hex[:6]
    groups = {k: f"acut{k}{tag}" for k in ("sock", "desk", "prac", "tech")}
    users = {k: f"acut{k}{tag}" for k in ("desk", "prac", "tech", "none")}
    made_groups, made_users = [], []
    try:
        for g in groups.values():
            subprocess.run(["groupadd", g], check=True, capture_output=True)
            made_groups.append(g)
        role_group = {"desk": groups["desk"], "prac": groups["prac"], "tech": groups["tech"],
                      "none": None}
        info = {}
        for k, u in users.items():
            supp = [groups["sock"]] + ([role_group[k]] if role_group[k] else [])
            subprocess.run(["useradd", "-M", "-N", "-g", groups["sock"], "-G", ",".join(supp),
                            "-s", "/usr/sbin/nologin", u], check=True, capture_output=True)
            made_users.append(u)
            info[k] = {"user": u, "group": groups["sock"], "extra": supp}
        yield {"groups": groups, "users": info}
    finally:
        for u in made_users:
            subprocess.run(["userdel", u], capture_output=True)
        for g in made_groups:
            subprocess.run(["groupdel", g], capture_output=True)


@pytest.fixture
def rdaemon(make_daemon, accounts):
    g = accounts["groups"]
    access = {"desk_group": g["desk"], "practitioner_group": g["prac"],
              "technician_group": g["tech"], "socket_group": g["sock"]}
    d = make_daemon(start=False, conf_text=config_text(access=access))
    # Other users must reach the socket and run a copy of acuctl.
    os.chmod(d.dir, 0o755)
    os.makedirs(os.path.join(d.dir, "run"), mode=0o755, exist_ok=True)
    os.chmod(os.path.join(d.dir, "run"), 0o755)
    d.acuctl_copy = os.path.join(d.dir, "acuctl")
    shutil.copy(ACUCTL, d.acuctl_copy)
    os.chmod(d.acuctl_copy, 0o755)
    d.start()
    return d


def as_user(d, acc, who, *args, json_out=False, timeout=15):
    a = acc["users"][who]
    cmd = [d.acuctl_copy, "-s", d.socket] + (["--json"] if json_out else []) + [str(x) for x in args]
    p = subprocess.run(cmd, user=a["user"], group=a["group"], extra_groups=a["extra"],
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
                       cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def allowed(d, acc, who, *args):
    rc, out, err = as_user(d, acc, who, *args)
    assert rc == 0, f"{who}: acuctl {' '.join(map(str, args))} -> {rc}: {err}"
    return out


def forbidden(d, acc, who, *args):
    rc, out, err = as_user(d, acc, who, *args)
    assert rc == 1, f"{who}: acuctl {' '.join(map(str, args))} -> {rc} (want 1): {out} {err}"
    assert "forbidden" in err, f"{who}: {args}: stderr lacks 'forbidden': {err!r}"
    rc, out, err = as_user(d, acc, who, *args, json_out=True)
    assert rc == 1
    rep = json.loads(out)
    assert rep["ok"] is False and rep["error"]["code"] == "forbidden", rep


def test_socket_mode_and_group(rdaemon, accounts):
    st = os.stat(rdaemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(stat.S_IMODE(st.st_mode))
    assert grp.getgrgid(st.st_gid).gr_name == accounts["groups"]["sock"]


def test_desk(rdaemon, accounts):
    d, acc = rdaemon, accounts
    out = allowed(d, acc, "desk", "status")
    assert "Lotus" in out
    allowed(d, acc, "desk", "status", "1")
    allowed(d, acc, "desk", "profiles")
    allowed(d, acc, "desk", "profile", "lbp-2hz")
    allowed(d, acc, "desk", "version")
    forbidden(d, acc, "desk", "start", "1", "60", "--needles", "3")
    forbidden(d, acc, "desk", "history")
    forbidden(d, acc, "desk", "reload")
    assert d.status("1")["state"] == "idle"
    # A session started by someone else cannot be touched by the desk.
    d.start_session("2", 300)
    forbidden(d, acc, "desk", "pause", "2")
    forbidden(d, acc, "desk", "stop", "2")
    forbidden(d, acc, "desk", "flag", "2", "pregnancy")
    assert d.status("2")["state"] == "running"


def test_desk_may_watch(rdaemon, accounts):
    d, acc = rdaemon, accounts
    a = acc["users"]["desk"]
    p = subprocess.Popen([d.acuctl_copy, "-s", d.socket, "watch"], user=a["user"],
                         group=a["group"], extra_groups=a["extra"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd="/")
    try:
        time.sleep(0.5)
        assert p.poll() is None, f"acuctl watch as desk exited {p.returncode}: " \
                                 f"{p.stderr.read().decode(errors='replace')}"
        d.start_session("3", 300)
        deadline = time.monotonic() + 5
        buf = b""
        while time.monotonic() < deadline and b'"room"' not in buf:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
        assert b'"room"' in buf, f"desk watcher got no room event: {buf[:500]!r}"
    finally:
        p.kill()
        p.wait()


def test_practitioner(rdaemon, accounts):
    d, acc = rdaemon, accounts
    allowed(d, acc, "prac", "status")
    allowed(d, acc, "prac", "start", "1", "60", "--needles", "3", "--patient", "P1")
    r = d.status("1")
    assert r["state"] == "running"
    assert r["practitioner"] == acc["users"]["prac"]["user"]
    allowed(d, acc, "prac", "pause", "1")
    allowed(d, acc, "prac", "resume", "1")
    allowed(d, acc, "prac", "needles", "1", "+1")
    allowed(d, acc, "prac", "stop", "1")
    allowed(d, acc, "prac", "finish", "1", "--removed", "4")
    allowed(d, acc, "prac", "history")
    forbidden(d, acc, "prac", "reload")


def test_technician(rdaemon, accounts):
    d, acc = rdaemon, accounts
    allowed(d, acc, "tech", "reload")
    allowed(d, acc, "tech", "status")
    allowed(d, acc, "tech", "history")
    allowed(d, acc, "tech", "start", "4", "60", "--needles", "2")
    assert d.status("4")["practitioner"] == acc["users"]["tech"]["user"]


def test_lines_and_test_are_for_technicians(rdaemon, accounts):
    """SPEC §11: `lines` and `test` are technician commands."""
    d, acc = rdaemon, accounts
    for who in ("desk", "prac", "none"):
        forbidden(d, acc, who, "lines")
        forbidden(d, acc, who, "lines", "--watch")
        forbidden(d, acc, who, "test", "3", "alarm", "3s")
    out = allowed(d, acc, "tech", "lines")
    assert "room 3 alarm" in out, out
    out = allowed(d, acc, "tech", "test", "3", "alarm", "3s")
    assert "alarm line test" in out, out
    # Refused (not forbidden) while the room has a session.
    allowed(d, acc, "prac", "start", "3", "60", "--needles", "1")
    rc, out, err = as_user(d, acc, "tech", "test", "3", "alarm")
    assert rc == 1 and "invalid-state" in err, (rc, err)


def test_no_role(rdaemon, accounts):
    d, acc = rdaemon, accounts
    forbidden(d, acc, "none", "status")
    forbidden(d, acc, "none", "version")
    forbidden(d, acc, "none", "start", "1", "60", "--needles", "3")
    assert d.status("1")["state"] == "idle"


def test_other_user_not_in_socket_group_cannot_connect(rdaemon):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user")
    p = subprocess.run([rdaemon.acuctl_copy, "-s", rdaemon.socket, "status"], user=nobody.pw_uid,
                       group=nobody.pw_gid, extra_groups=[], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=15, cwd="/")
    assert p.returncode == 3, (p.returncode, p.stderr)
