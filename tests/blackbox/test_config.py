"""Config file (SPEC §5): --check-config, errors naming FILE:LINE, refusing to start
on a bad config, reload and SIGHUP."""

import os
import signal
import subprocess
import time

import pytest

from conftest import ACUD, config_accepted, config_text, err_code, run

from bad_configs import BAD_CONFIGS


def write_conf(tmpdir, text, name="acud.conf"):
    os.makedirs(os.path.join(tmpdir, "profiles.d"), exist_ok=True)
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_config(path):
    return run([ACUD, "--check-config", "-c", path], timeout=10)


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in config")


def test_check_config_good(tmpdir_short):
    path = write_conf(tmpdir_short, config_text())
    rc, out, err = check_config(path)
    assert rc == 0, f"good config rejected: {err}"


def test_check_config_example_configs():
    here = os.path.dirname(ACUD)
    for name in ("etc/acud.conf", "etc/demo.conf"):
        path = os.path.join(here, name)
        rc, out, err = check_config(path)
        assert config_accepted(rc, err), f"{name} rejected: {err}"


def test_check_config_does_not_touch_socket_or_state(tmpdir_short):
    path = write_conf(tmpdir_short, config_text())
    rc, _, err = check_config(path)
    assert rc == 0, err
    assert not os.path.exists(os.path.join(tmpdir_short, "run", "acud.sock"))


@pytest.mark.parametrize("name,text,line,fragment", BAD_CONFIGS,
                         ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_bad(tmpdir_short, name, text, line, fragment):
    path = write_conf(tmpdir_short, text)
    rc, out, err = check_config(path)
    assert rc == 1, f"{name}: --check-config exited {rc}, stderr: {err!r}"
    assert f"{path}:{line}:" in err, f"{name}: no '{path}:{line}:' in stderr: {err!r}"
    assert fragment.lower() in err.lower(), f"{name}: {fragment!r} not in {err!r}"


@pytest.mark.parametrize("length", [250, 1000, 5000])
def test_overlong_line(tmpdir_short, length):
    text = config_text()
    lines = text.splitlines()
    idx = line_of(text, "description = Low back pain")
    prefix = "description = "
    lines[idx - 1] = prefix + "x" * (length - len(prefix))
    assert len(lines[idx - 1]) == length
    text = "\n".join(lines) + "\n"
    path = write_conf(tmpdir_short, text)
    rc, out, err = check_config(path)
    assert rc == 1, err
    assert f"{path}:{idx}:" in err, err


def test_error_names_file_and_line_for_profiles_dir(tmpdir_short):
    path = write_conf(tmpdir_short, config_text())
    bad = os.path.join(tmpdir_short, "profiles.d", "bad.conf")
    with open(bad, "w") as f:
        f.write("; a profile with a bad frequency\n[profile bad]\nmode = continuous\n"
                "frequency_hz = 5000\n")
    rc, out, err = check_config(path)
    assert rc == 1, err
    assert f"{bad}:4:" in err, err


def _with(text, after, new):
    assert after in text
    return text.replace(after, after + "\n" + new, 1)


@pytest.mark.parametrize("mutate,needle", [
    (lambda t: _with(t, "[limits]", "bogus_key = 1"), "bogus_key"),
    (lambda t: _with(t, "[limits]", "session_min = 1s"), "session_min = 1s"),
    (lambda t: t + "\n[nonsense]\n", "[nonsense]"),
    (lambda t: t.replace("gate = 24", "gate = 17"), "gate = 17"),  # line used twice
    (lambda t: t.replace("gate = 13", "gate = ,"), ("gate = ,", "[room 3]")),
    (lambda t: _with(t, "[safety]", "pacemaker = warn"), "pacemaker = warn"),
    (lambda t: _with(t, "[safety]", "pregnancy = maybe"), "pregnancy = maybe"),
    (lambda t: t.replace("backend = sim", "backend = magic"), "backend = magic"),
    (lambda t: t.replace("session_min = 1s", "session_min = soon"), "session_min = soon"),
    (lambda t: t.replace("frequency_hz = 2\n", "frequency_hz = 500\n", 1), "frequency_hz = 500"),
    (lambda t: t.replace("mode = continuous", "mode = wobble", 1), "mode = wobble"),
    (lambda t: t + "\n[room 1]\ngate = 40\n", ("[room 1]", "gate = 40")),
    (lambda t: t.replace("gate = 19, 20", "gate = 1,2,3,4,5,30,31,32,33"),
     "gate = 1,2,3,4,5,30,31,32,33"),
    (lambda t: t.replace("pulse = 22, 23", "pulse = 22"), ("pulse = 22", "[room 1]")),
    (lambda t: _with(t, "[limits]", "stim_max = 2h"), "stim_max = 2h"),
])
def test_check_config_errors_name_line(tmpdir_short, mutate, needle):
    text = mutate(config_text())
    path = write_conf(tmpdir_short, text)
    rc, out, err = check_config(path)
    assert rc == 1, f"accepted: {needle!r}"
    needles = needle if isinstance(needle, tuple) else (needle,)
    lines = [i for i, l in enumerate(text.splitlines(), 1) if any(n in l for n in needles)]
    assert any(f"{path}:{n}:" in err for n in lines), \
        f"error does not name {path}:{lines}: {err!r}"


def test_comments(tmpdir_short):
    text = config_text().replace("[gpio]", "# full-line hash comment\n[gpio] ; trailing")
    text = text.replace("gate = 24", "gate = 24 ; trailing comment after a value")
    path = write_conf(tmpdir_short, text)
    rc, _, err = check_config(path)
    assert rc == 0, err


@pytest.mark.parametrize("dur", ["90s", "2m", "1h", "1h30m", "45"])
def test_duration_forms(tmpdir_short, dur):
    text = config_text(session_min="1s", session_max="4h").replace(
        "[alarm]", f"[alarm]\nescalate_after = {dur}")
    path = write_conf(tmpdir_short, text)
    rc, _, err = check_config(path)
    assert rc == 0, err


def test_daemon_refuses_to_start_on_bad_config(tmpdir_short):
    text = config_text().replace("gate = 13", "gate = 13\nwobble = 3")
    path = write_conf(tmpdir_short, text)
    p = subprocess.run([ACUD, "-f", "-c", path], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0
    assert f"{path}:{line_of(text, 'wobble')}:" in err, err
    assert not os.path.exists(os.path.join(tmpdir_short, "run", "acud.sock"))


def test_daemon_refuses_missing_config(tmpdir_short):
    path = os.path.join(tmpdir_short, "missing.conf")
    p = subprocess.run([ACUD, "-f", "-c", path], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert path in p.stderr.decode(errors="replace")
    rc, _, err = check_config(path)
    assert rc == 1 and path in err


# --- state_dir: a directory acud can write, or create --------------------------

def with_state_dir(tmpdir, state_dir):
    return write_conf(tmpdir, config_text().replace("state_dir = state",
                                                    f"state_dir = {state_dir}"))


@pytest.mark.parametrize("rel", ["state", "a/b/c", "."])
def test_check_config_state_dir_usable(tmpdir_short, rel):
    """An existing writable directory, or one whose nearest existing parent is."""
    path = with_state_dir(tmpdir_short, os.path.join(tmpdir_short, rel))
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert "configuration OK" in out
    assert not os.path.exists(os.path.join(tmpdir_short, "a")), "--check-config created it"


def test_check_config_state_dir_is_a_file(tmpdir_short):
    state = os.path.join(tmpdir_short, "state")
    with open(state, "w") as f:
        f.write("not a directory\n")
    rc, out, err = check_config(with_state_dir(tmpdir_short, state))
    assert rc == 1, f"a regular file as state_dir passed: {out}"
    assert f"state_dir {state}: exists and is not a directory" in err, err


def test_check_config_state_dir_under_a_file(tmpdir_short):
    blocker = os.path.join(tmpdir_short, "blocker")
    with open(blocker, "w") as f:
        f.write("x\n")
    state = os.path.join(blocker, "sub", "state")
    rc, out, err = check_config(with_state_dir(tmpdir_short, state))
    assert rc == 1, f"a state_dir under a regular file passed: {out}"
    assert f"state_dir {state}: {blocker} is not a directory" in err, err


@pytest.mark.parametrize("exists", [True, False])
def test_check_config_state_dir_not_writable(tmpdir_short, exists):
    """On a read-only file system: not writable even for root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs")
    ro = os.path.join(tmpdir_short, "ro")
    os.makedirs(os.path.join(ro))
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", ro],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        os.makedirs(os.path.join(ro, "state"))
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True, capture_output=True)
        state = os.path.join(ro, "state" if exists else "new")
        rc, out, err = check_config(with_state_dir(tmpdir_short, state))
        assert rc == 1, f"a state_dir on a read-only file system passed: {out}"
        if exists:
            assert f"state_dir {state}: not writable by root (uid 0)" in err, err
        else:
            assert f"state_dir {state}: does not exist, and {ro}, where it would be " \
                   "created, is not writable" in err, err
    finally:
        subprocess.run(["umount", ro], capture_output=True)


# --- reload ------------------------------------------------------------------

def test_reload_good_config(daemon):
    rep = daemon.request({"cmd": "reload"})
    assert rep["ok"] is True, rep


def test_reload_bad_config_keeps_old(daemon):
    daemon.start_session("1", 300, patient="KEEP1")
    good = open(daemon.conf).read()
    bad = good.replace("gate = 24", "gate = 24\nfrobnicate = yes")
    daemon.write_config(bad)
    rep = daemon.request({"cmd": "reload"})
    assert err_code(rep) == "config"
    assert f"{daemon.conf}:{line_of(bad, 'frobnicate')}:" in rep["error"]["message"], rep
    # The old config keeps working.
    rooms = daemon.status()
    assert [r["id"] for r in rooms] == ["1", "2", "3", "4"]
    assert rooms[0]["state"] == "running" and rooms[0]["patient"] == "KEEP1"
    assert daemon.start_session("2", 60)["state"] == "running"
    assert daemon.ok({"cmd": "profile", "name": "lbp-2hz"})
    # Fix it: reload succeeds again.
    daemon.write_config(good)
    assert daemon.request({"cmd": "reload"})["ok"] is True


def test_sighup_adds_room_without_disturbing_session(daemon):
    r1 = daemon.start_session("1", 300, needles=7, patient="HUP1")
    text = open(daemon.conf).read().replace(
        "[profile lbp-2hz]", "[room 5]\nname = Maple\ngate = 4\n\n[profile lbp-2hz]")
    daemon.write_config(text)
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    ids = []
    while time.monotonic() < deadline:
        ids = [r["id"] for r in daemon.status()]
        if "5" in ids:
            break
        time.sleep(0.05)
    assert "5" in ids, f"room 5 not added by SIGHUP: {ids}"
    assert daemon.alive()
    r = daemon.status("1")
    assert r["state"] == "running"
    assert r["ends_at"] == r1["ends_at"]
    assert r["patient"] == "HUP1" and r["needles"] == 7
    assert r["started_at"] == r1["started_at"]
    assert daemon.status("5")["name"] == "Maple"
    assert daemon.start_session("5", 60)["state"] == "running"


def test_sighup_bad_config_keeps_running(daemon):
    daemon.write_config("this is not an ini file\n")
    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert daemon.alive()
    assert len(daemon.status()) == 4


def test_reload_refuses_removing_room_with_session(daemon):
    daemon.start_session("4", 300, patient="STAY4")
    text = open(daemon.conf).read().replace("[room 4]\nname = Willow\ngate = 19, 20\n", "")
    assert "[room 4]" not in text
    daemon.write_config(text)
    rep = daemon.request({"cmd": "reload"})
    assert err_code(rep) == "config"
    r = daemon.status("4")
    assert r["state"] == "running" and r["patient"] == "STAY4"
    assert len(daemon.status()) == 4


def test_reload_refuses_rewiring_room_with_session(daemon):
    daemon.start_session("2", 300)
    text = open(daemon.conf).read().replace("gate = 24", "gate = 25")
    daemon.write_config(text)
    assert err_code(daemon.request({"cmd": "reload"})) == "config"
    assert daemon.status("2")["state"] == "running"


def test_reload_removes_idle_room(daemon):
    daemon.start_session("1", 300)
    text = open(daemon.conf).read().replace("[room 4]\nname = Willow\ngate = 19, 20\n", "")
    daemon.write_config(text)
    assert daemon.request({"cmd": "reload"})["ok"] is True
    assert [r["id"] for r in daemon.status()] == ["1", "2", "3"]
    assert err_code(daemon.request({"cmd": "status", "room": "4"})) == "unknown-room"
    assert daemon.status("1")["state"] == "running"


def test_reload_renames_room_and_changes_profiles(daemon):
    daemon.start_session("3", 300)
    text = open(daemon.conf).read().replace("name = Cedar", "name = Cedar East")
    text += "\n[profile added-later]\nmode = continuous\nfrequency_hz = 4\n"
    daemon.write_config(text)
    assert daemon.request({"cmd": "reload"})["ok"] is True
    r = daemon.status("3")
    assert r["name"] == "Cedar East" and r["state"] == "running"
    assert daemon.ok({"cmd": "profile", "name": "added-later"})["profile"]["frequency_hz"] == 4


def test_reload_changes_limits(daemon):
    text = open(daemon.conf).read().replace("session_max = 10m", "session_max = 20m")
    daemon.write_config(text)
    assert daemon.request({"cmd": "reload"})["ok"] is True
    assert daemon.start_session("1", 1200)["duration_s"] == 1200
