"""One acud per state_dir (SPEC §8, S1): the daemon locks its state_dir before it
touches any output. A second daemon on the same state_dir, or on the same socket,
is refused without touching an output of the first; `acud --all-off` refuses while
a daemon holds the lock and works once none does.

On the simulated backend two daemons share nothing unless they share the sim state
file, so every second daemon here writes the first one's sim state file and trace:
any output it touched would show there."""

import os
import re
import time

from conftest import ACUD, run
from simgpio import read_state, read_trace, state_path, stim_config, wait_state

R2_GATE = "24"   # simgpio.STIM_ROOMS: room 2, gate only


def first_with_gate_on(make_daemon):
    d = make_daemon(conf_text=stim_config())
    rep = d.request({"cmd": "start", "room": "2", "duration_s": 600, "needles": 2,
                     "patient": "L1", "profile": "p2", "stim": True})
    assert rep.get("ok") is True, rep
    wait_state(state_path(d), R2_GATE, 1)
    return d


def second_config(first, tmp, same_socket, same_state_dir):
    """A config in tmp whose outputs are the first daemon's sim state file and trace."""
    text = stim_config(sim_state=state_path(first), sim_trace=os.path.join(first.dir, "trace"))
    if same_socket:
        text = text.replace("socket = run/acud.sock", f"socket = {first.socket}")
    if same_state_dir:
        text = text.replace("state_dir = state", f"state_dir = {first.state_dir}")
    os.makedirs(os.path.join(tmp, "profiles.d"), exist_ok=True)
    path = os.path.join(tmp, "acud.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def untouched(first, trace_before):
    """The first daemon's gate is still on and nobody else wrote a line."""
    assert read_state(state_path(first))[R2_GATE] == 1, "the first daemon's gate was turned off"
    trace = read_trace(os.path.join(first.dir, "trace"))
    # The first daemon keeps writing (heartbeat); a second one would write its
    # inactive levels: the gate line never goes to 0.
    new = [e for e in trace[len(trace_before):] if e[1] == R2_GATE]
    assert not new, f"gate line {R2_GATE} written while the first daemon held it: {new}"
    assert first.alive()
    assert first.status("2")["stim"]["on"] is True


def start_second(make_daemon, tmpdir_short, **same):
    """A daemon with its gate on, then a second acud sharing `same` with it:
    (the first, its trace before, the second's exit code and stderr)."""
    first = first_with_gate_on(make_daemon)
    trace0 = read_trace(os.path.join(first.dir, "trace"))
    conf = second_config(first, tmpdir_short, **same)
    rc, out, err = run([ACUD, "-f", "-c", conf], cwd=tmpdir_short, timeout=10)
    return first, trace0, rc, err


def test_second_daemon_on_same_state_dir_is_refused(make_daemon, tmpdir_short):
    first, trace0, rc, err = start_second(make_daemon, tmpdir_short, same_socket=False,
                                          same_state_dir=True)
    assert rc != 0, f"a second acud on the same state_dir started: {err}"
    m = re.search(r"another acud holds (\S+) \(pid (\d+)\)", err)
    assert m, f"no clear message: {err!r}"
    assert m.group(1) == first.state_dir and int(m.group(2)) == first.pid, err
    assert not os.path.exists(os.path.join(tmpdir_short, "run", "acud.sock")), \
        "the refused daemon created its socket"
    time.sleep(0.3)
    untouched(first, trace0)


def test_second_daemon_on_same_socket_touches_no_output(make_daemon, tmpdir_short):
    first, trace0, rc, err = start_second(make_daemon, tmpdir_short, same_socket=True,
                                          same_state_dir=False)
    assert rc != 0, f"a second acud on the same socket started: {err}"
    assert "another acud is already listening" in err, err
    time.sleep(0.3)
    untouched(first, trace0)
    assert first.request({"cmd": "version"})["ok"] is True


def test_all_off_refused_while_a_daemon_runs_then_works(make_daemon):
    first = first_with_gate_on(make_daemon)
    trace0 = read_trace(os.path.join(first.dir, "trace"))
    rc, out, err = run([ACUD, "--all-off", "-c", first.conf], cwd=first.dir, timeout=10)
    assert rc == 1, f"--all-off ran beside a running daemon: {rc} {err}"
    assert f"another acud holds {first.state_dir} (pid {first.pid})" in err, err
    untouched(first, trace0)
    # A crash leaves the gate on and the lock free: --all-off does its job.
    first.kill9()
    assert read_state(state_path(first))[R2_GATE] == 1
    rc, out, err = run([ACUD, "--all-off", "-c", first.conf], cwd=first.dir, timeout=10)
    assert rc == 0, f"--all-off after the daemon died: {rc} {err}"
    assert read_state(state_path(first))[R2_GATE] == 0
    # And the next daemon takes the lock again.
    first.start()
    assert first.status("2")["stim"]["armed"] is False


def test_all_off_without_state_dir(tmpdir_short):
    """Nothing ever ran there: no lock to find, the outputs go off all the same."""
    conf = os.path.join(tmpdir_short, "acud.conf")
    os.makedirs(os.path.join(tmpdir_short, "profiles.d"))
    with open(conf, "w") as f:
        f.write(stim_config(sim_state=os.path.join(tmpdir_short, "sim.state")))
    rc, out, err = run([ACUD, "--all-off", "-c", conf], cwd=tmpdir_short, timeout=10)
    assert rc == 0, err
    assert read_state(os.path.join(tmpdir_short, "sim.state"))[R2_GATE] == 0
    assert not os.path.exists(os.path.join(tmpdir_short, "state")), \
        "--all-off created the state_dir"
