"""Room inputs: the patient's call button and the practitioner's presence button
(SPEC §4 `call` alarm, §11), and the technician's `lines` and `test` commands,
on the simulated backend.

Wiring here: room 1 has a lamp (not audible) on 5, call on !16 (normally
closed: the closed circuit reads 1, an open one 0 = calling), presence on 20
and an interlock on 6; room 2 has an audible buzzer on 25, call on 7 and
presence on 8. Input levels given to sim-input are PHYSICAL."""

import os
import subprocess
import time

import pytest

from conftest import ACUCTL, alarm, err_code, parse_ts
from simgpio import edges, intervals, mono_ns, pipelined, read_trace, stim_config, wait_for

ROOMS = """\
[room 1]
name = Lotus
gate = 17
alarm = 5
audible = no
interlock = 6
call = !16
presence = 20

[room 2]
name = Bamboo
gate = 24
alarm = 25
audible = yes
call = 7
presence = 8

[room 3]
name = Cedar
gate = 13
"""

PROFILES = """\
[profile p2]
mode = continuous
frequency_hz = 2
duration_s = 600
"""

CALL1, PRESENCE1, LAMP1, INTERLOCK1 = "16", "20", "5", "6"
CALL2, PRESENCE2, BUZZER2 = "7", "8", "25"
# Room 1's call is active low: open circuit (0) calls, closed (1) rests.
PRESS1, REST1 = 0, 1


def conf(debounce_ms=0, call_escalate_after="2s", checkin_interval=None,
         escalate_after=None):
    text = stim_config(rooms=ROOMS, profiles=PROFILES, heartbeat=None,
                       checkin_interval=checkin_interval, escalate_after=escalate_after)
    text = text.replace("[gpio]\nbackend = sim\n",
                        f"[gpio]\nbackend = sim\ndebounce_ms = {debounce_ms}\n")
    text = text.replace("[alarm]\n", f"[alarm]\ncall_escalate_after = {call_escalate_after}\n")
    return text


def sim(d, line, level):
    rep = d.request({"cmd": "sim-input", "line": line, "level": level})
    assert rep.get("ok") is True, rep
    return rep


def history(d, room=None, kind=None, limit=200):
    req = {"cmd": "history", "limit": limit}
    if room:
        req["room"] = room
    recs = d.ok(req)["entries"]
    return [r for r in recs if kind is None or r.get("type") == kind]


def records(d, room, kind, n=1, timeout=6.0):
    """The history records of that kind once there are at least n (history
    is written by acud's writer thread: a query may come before it)."""
    return wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(history(d, room, kind)),
                    timeout=timeout, what=f"{n} {kind} records in room {room}'s history")


def call_alarm(d, room):
    return alarm(d.status(room), "call")


def press(d, line, down, up):
    """A press and release, as two separate inputs."""
    sim(d, line, down)
    sim(d, line, up)


@pytest.fixture
def cd(make_daemon):
    return make_daemon(conf_text=conf())


def test_call_raises_without_session_and_shows_everywhere(cd):
    d = cd
    assert d.status("1")["state"] == "idle"
    assert call_alarm(d, "1") is None
    t0 = time.time()
    sim(d, CALL1, PRESS1)
    a = d.wait_room("1", lambda r: alarm(r, "call"), what="call alarm")
    a = alarm(a, "call")
    assert a["priority"] == "medium"
    assert abs(parse_ts(a["since"]) - t0) < 5
    # The table shows it, with its age.
    rc, out, err = d.acuctl("status")
    assert rc == 0, err
    row = [ln for ln in out.splitlines() if ln.startswith("1 ")][0]
    assert "call 0:0" in row, out
    # The history has the press and the alarm.
    assert records(d, "1", "call")[0]["new"] is True
    assert any(r.get("kind") == "call" and r.get("change") == "raised"
               for r in records(d, "1", "alarm")), history(d, "1")
    # A second call while one is active changes nothing.
    since = a["since"]
    sim(d, CALL1, REST1)
    sim(d, CALL1, PRESS1)
    time.sleep(0.1)
    a2 = call_alarm(d, "1")
    assert a2["since"] == since and a2["priority"] == "medium"
    raised = [r for r in history(d, "1", "alarm") if r.get("kind") == "call"
              and r.get("change") == "raised"]
    assert len(raised) == 1, raised
    # Other rooms are untouched.
    assert call_alarm(d, "2") is None


def test_press_handled_before_the_request_after_it(cd):
    """sim-input reads the input lines before it answers (stim_inputs_poll,
    the same check S5 runs before every request): a status read in the same
    go as the press already shows the call. Also once the set of input lines
    is made again, by a reload and by a reload that adds a line."""
    d = cd

    def shows_call(line, level, room):
        reps = pipelined(d, [{"cmd": "sim-input", "line": line, "level": level},
                             {"cmd": "status", "room": room}])
        assert alarm(reps[1]["room"], "call"), reps[1]

    shows_call(CALL1, PRESS1, "1")
    d.ok({"cmd": "reload"})
    shows_call(CALL2, 1, "2")
    d.write_config(conf().replace("name = Cedar\ngate = 13\n", "name = Cedar\ngate = 13\ncall = 12\n"))
    d.ok({"cmd": "reload"})
    shows_call("12", 1, "3")


def test_call_escalates_after_configured_time(cd):
    d = cd
    with d.connect() as w:
        w.request({"cmd": "watch"})
        t_before = time.monotonic()
        sim(d, CALL2, 1)
        ev = w.recv_until(lambda m: m.get("event") == "alarm" and m.get("kind") == "call")
        assert ev["change"] == "raised" and ev["priority"] == "medium" and ev["room"] == "2"
        ev = w.recv_until(lambda m: m.get("event") == "alarm" and m.get("kind") == "call",
                          timeout=10)
        waited = time.monotonic() - t_before
    assert ev["change"] == "escalated" and ev["priority"] == "high", ev
    # call_escalate_after = 2s after the call, which came after t_before: never earlier.
    assert waited >= 2.0, waited
    assert call_alarm(d, "2")["priority"] == "high"
    assert d.status("2")["alarm_level"] == "high"


def test_presence_acknowledges_call_and_new_call_is_new_alarm(cd):
    d = cd
    sim(d, CALL1, PRESS1)
    first = d.wait_room("1", lambda r: alarm(r, "call"), what="call")
    sim(d, CALL1, REST1)
    press(d, PRESENCE1, 1, 0)
    d.wait_room("1", lambda r: alarm(r, "call") is None, what="call answered")
    recs = records(d, "1", "presence")
    assert recs[-1]["call"] is True and recs[-1]["checkin"] is False, recs
    cleared = wait_for(lambda: [r for r in history(d, "1", "alarm") if r.get("kind") == "call"
                                and r.get("change") == "cleared"], what="cleared record")
    assert len(cleared) == 1
    # A new call after an acknowledged one is a new alarm.
    time.sleep(1.1)
    sim(d, CALL1, PRESS1)
    r = d.wait_room("1", lambda r: alarm(r, "call"), what="second call")
    assert parse_ts(alarm(r, "call")["since"]) > parse_ts(alarm(first, "call")["since"])
    assert alarm(r, "call")["priority"] == "medium"
    # checkin answers a call too, with no session.
    rep = d.ok({"cmd": "checkin", "room": "1"})
    assert alarm(rep["room"], "call") is None
    # ... and with no call and no session it is refused as before.
    assert err_code(d.request({"cmd": "checkin", "room": "1"})) == "invalid-state"


def test_unanswered_call_survives_restart(make_daemon):
    d = make_daemon(conf_text=conf(call_escalate_after="4s"))
    t_before = time.monotonic()
    sim(d, CALL2, 1)
    a = alarm(d.wait_room("2", lambda r: alarm(r, "call"), what="call"), "call")
    assert d.stop() == 0
    d.start()
    # The line still reads active after the restart, which changes nothing.
    b = call_alarm(d, "2")
    assert b is not None, "the call was forgotten by the restart"
    assert b["since"] == a["since"]
    if time.monotonic() - t_before < 3.5:  # a restart slower than that (valgrind) escalated it
        assert b["priority"] == "medium"
    # It still escalates on its original time.
    d.wait_room("2", lambda r: (alarm(r, "call") or {}).get("priority") == "high",
                timeout=8, what="escalated after restart")
    # An acknowledged call stays acknowledged across a restart.
    press(d, PRESENCE2, 1, 0)
    d.wait_room("2", lambda r: alarm(r, "call") is None, what="answered")
    assert d.stop() == 0
    d.start()
    time.sleep(0.3)
    assert call_alarm(d, "2") is None


def test_lamp_rates_and_silence_keeps_lamp(make_daemon):
    d = make_daemon(conf_text=conf(call_escalate_after="3s"))
    trace = os.path.join(d.dir, "trace")
    t0 = mono_ns()
    sim(d, CALL1, PRESS1)
    d.wait_room("1", lambda r: alarm(r, "call"), what="call")
    # Medium: 0.5 Hz, 1 s on, 1 s off. Silenced (the lamp is not audible):
    # it keeps flashing and the call stays on the boards.
    time.sleep(0.5)
    rep = d.ok({"cmd": "silence", "room": "1", "duration_s": 60})
    a = alarm(rep["room"], "call")
    assert a is not None and a["silenced_until"] is not None
    wait_for(lambda: call_alarm(d, "1")["priority"] == "high", timeout=8, what="escalation")
    t_high = mono_ns()
    time.sleep(1.9)
    tr = read_trace(trace)
    on = [(s, e) for s, e in intervals(tr, LAMP1, 1, since=t0) if e is not None]
    medium = [(e - s) / 1e9 for s, e in on if e < t_high - 300_000_000]
    high = [(e - s) / 1e9 for s, e in on if s > t_high]
    assert medium and all(0.9 < x < 1.2 for x in medium), medium
    assert len(high) >= 3 and all(0.2 < x < 0.4 for x in high), high
    # The status still shows it, silenced or not.
    assert call_alarm(d, "1")["priority"] == "high"
    # The audible buzzer of room 2 is quiet while silenced, and the call stays.
    sim(d, CALL2, 1)
    d.wait_room("2", lambda r: alarm(r, "call"), what="call 2")
    d.ok({"cmd": "silence", "room": "2", "duration_s": 60})
    time.sleep(0.1)
    t_sil = mono_ns()
    time.sleep(1.2)
    assert [e for e in edges(read_trace(trace), BUZZER2, 1, since=t_sil)] == []
    assert call_alarm(d, "2") is not None


def test_bounce_burst_is_one_call(make_daemon):
    d = make_daemon(conf_text=conf(debounce_ms=100))
    # A press shorter than the debounce is no call.
    pipelined(d, [{"cmd": "sim-input", "line": CALL2, "level": lv} for lv in (1, 0)])
    time.sleep(0.4)
    assert call_alarm(d, "2") is None
    assert history(d, "2", "call") == []
    # A bouncing contact (separate edges, each read on its own) settling closed.
    pipelined(d, [{"cmd": "sim-input", "line": CALL2, "level": lv} for lv in (1, 0, 1, 0, 1)])
    d.wait_room("2", lambda r: alarm(r, "call"), what="call after bounce")
    time.sleep(0.3)
    assert len(records(d, "2", "call")) == 1, history(d, "2", "call")
    # A burst within one read (a level list), then released after bouncing.
    d.ok({"cmd": "checkin", "room": "2"})
    pipelined(d, [{"cmd": "sim-input", "line": CALL2, "level": [0, 1, 0, 1, 0]}])
    time.sleep(0.3)
    d.ok({"cmd": "sim-input", "line": CALL2, "level": [1, 0, 1]})
    d.wait_room("2", lambda r: alarm(r, "call"), what="second call")
    time.sleep(0.3)
    assert len(records(d, "2", "call", 2)) == 2
    # The debounce is acud's own on the simulated backend.
    rep = d.ok({"cmd": "lines"})
    call = [l for l in rep["lines"] if l["room"] == "2" and l["function"] == "call"][0]
    assert call["debounce"] == {"ms": 100, "by": "acud"}


def test_presence_clears_checkin_and_records_a_checkin(make_daemon):
    d = make_daemon(conf_text=conf(checkin_interval="1s"))
    d.start_session("1", duration_s=600, needles=4)
    due = d.wait_room("1", lambda r: alarm(r, "checkin"), what="checkin alarm")
    before = due["checkins"]
    press(d, PRESENCE1, 1, 0)
    r = d.wait_room("1", lambda r: alarm(r, "checkin") is None, what="checkin cleared")
    assert r["checkins"] == before + 1
    # As `acuctl checkin` does: the interval restarts from the press.
    assert parse_ts(r["checkin_due_at"]) > parse_ts(due["checkin_due_at"])
    recs = records(d, "1", "presence")
    assert recs[-1]["checkin"] is True and recs[-1]["call"] is False
    # A presence with nothing due still registers the visit as a check-in.
    press(d, PRESENCE1, 1, 0)
    d.wait_room("1", lambda r: r["checkins"] == before + 2, what="second check-in")


def test_presence_never_clears_other_alarms(make_daemon):
    d = make_daemon(conf_text=conf(escalate_after="1s", call_escalate_after="1h"))
    # Room 1: due, escalated to high; then a needle mismatch; and its interlock.
    d.start_session("1", duration_s=600, needles=4)
    d.ok({"cmd": "stop", "room": "1"})
    assert err_code(d.request({"cmd": "finish", "room": "1", "removed": 3})) \
        == "needle-mismatch"
    sim(d, INTERLOCK1, 1)
    d.wait_room("1", lambda r: (alarm(r, "due") or {}).get("priority") == "high"
                and alarm(r, "interlock"), what="due high and interlock")
    sim(d, CALL1, PRESS1)
    d.wait_room("1", lambda r: alarm(r, "call"), what="call")
    before = {a["kind"]: a for a in d.status("1")["alarms"]}
    assert {"due", "needle-mismatch", "interlock", "call"} <= set(before)
    press(d, PRESENCE1, 1, 0)
    r = d.wait_room("1", lambda r: alarm(r, "call") is None, what="call answered")
    after = {a["kind"]: a for a in r["alarms"]}
    assert set(after) == set(before) - {"call"}
    for k in after:
        assert after[k] == before[k], (k, before[k], after[k])
    assert r["state"] == "due"
    rec = records(d, "1", "presence")[-1]
    assert rec["call"] is True and rec["checkin"] is False


def test_call_line_cannot_be_read_calls(cd):
    d = cd
    sim(d, CALL2, -1)
    d.wait_room("2", lambda r: alarm(r, "call"), what="call from a broken line")
    # A presence line that cannot be read answers nothing.
    sim(d, PRESENCE2, -1)
    time.sleep(0.3)
    assert call_alarm(d, "2") is not None


def test_lines_lists_every_line(cd):
    d = cd
    sim(d, CALL1, PRESS1)
    rep = d.ok({"cmd": "lines"})
    by = {(l["room"], l["function"], l.get("channel")): l for l in rep["lines"]}
    assert set(by) == {("1", "gate", 1), ("1", "alarm", None), ("1", "interlock", None),
                       ("1", "call", None), ("1", "presence", None),
                       ("2", "gate", 1), ("2", "alarm", None), ("2", "call", None),
                       ("2", "presence", None), ("3", "gate", 1)}
    c = by[("1", "call", None)]
    assert c["offset"] == 16 and c["chip"] == "gpiochip0" and c["consumer"] == "acud:1:call"
    assert c["polarity"] == "active-low" and c["direction"] == "input"
    assert c["level"] == 1 and c["physical"] == 0
    assert by[("1", "presence", None)]["level"] == 0
    assert by[("1", "gate", 1)]["direction"] == "output" and by[("1", "gate", 1)]["level"] == 0
    rc, out, err = d.acuctl("lines")
    assert rc == 0, err
    assert "room 1 call" in out and "acud:1:call" in out and "active-low" in out, out


def test_lines_watch_prints_edges(cd):
    d = cd
    p = subprocess.Popen([ACUCTL, "-s", d.socket, "lines", "--watch"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        # The listing comes first, then the watching notice.
        deadline = time.monotonic() + 10
        seen = b""
        while b"watching" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        assert b"watching input edges" in seen, seen
        sim(d, CALL2, 1)
        line = p.stdout.readline().decode()
        assert "room 2 call (offset 7): active, 1 edge" in line, line
        sim(d, INTERLOCK1, 1)
        line = p.stdout.readline().decode()
        assert "room 1 interlock (offset 6): active" in line, line
    finally:
        p.terminate()
        p.wait(5)
    # --json: the events as they came; room and alarm events do not go there.
    with d.connect() as w:
        rep = w.request({"cmd": "lines", "watch": True})
        assert rep["watching"] is True and rep["lines"]
        sim(d, PRESENCE2, 1)
        ev = w.recv(5)
        assert ev["event"] == "line" and ev["room"] == "2" and ev["function"] == "presence"
        assert ev["level"] == 1 and ev["edges"] == 1 and ev["offset"] == 8


def test_lamp_test(cd):
    d = cd
    trace = os.path.join(d.dir, "trace")
    t0 = mono_ns()
    rc, out, err = d.acuctl("test", "1", "alarm", "3s")
    assert rc == 0, err
    assert "alarm line test" in out
    time.sleep(3.4)
    tr = read_trace(trace)
    on = [(s, e) for s, e in intervals(tr, LAMP1, 1, since=t0)]
    assert len(on) >= 3, on
    assert all(e is not None for _, e in on), "the lamp stayed on after the test"
    # Never a gate.
    assert [x for x in read_trace(trace) if x[1] in ("17", "24", "13") and x[0] > t0] == []
    wait_for(lambda: any(r.get("cmd") == "test" and r.get("output") == "alarm"
                         for r in history(d, "1", "command")), what="test in the history")
    # Refused: a gate or pulse line, a room without an alarm line, a duration
    # out of range, a room with a session, a room with an alarm.
    assert err_code(d.request({"cmd": "test", "room": "1", "output": "gate"})) == "bad-request"
    assert err_code(d.request({"cmd": "test", "room": "3", "output": "alarm"})) == "unsupported"
    assert err_code(d.request({"cmd": "test", "room": "1", "output": "alarm",
                               "duration_s": 11})) == "out-of-range"
    d.start_session("1", duration_s=600, needles=2)
    assert err_code(d.request({"cmd": "test", "room": "1", "output": "alarm"})) \
        == "invalid-state"
    rc, out, err = d.acuctl("test", "1", "alarm")
    assert rc == 1 and "session" in err
    sim(d, CALL2, 1)
    d.wait_room("2", lambda r: alarm(r, "call"), what="call")
    assert err_code(d.request({"cmd": "test", "room": "2", "output": "alarm"})) \
        == "invalid-state"
    wait_for(lambda: len([r for r in history(d, None, "refusal") if r.get("cmd") == "test"])
             >= 5, what="5 test refusals in the history")


def test_real_alarm_ends_a_lamp_test(cd):
    d = cd
    trace = os.path.join(d.dir, "trace")
    d.ok({"cmd": "test", "room": "1", "output": "alarm", "duration_s": 10})
    time.sleep(0.3)
    sim(d, CALL1, PRESS1)
    d.wait_room("1", lambda r: alarm(r, "call"), what="call")
    t = mono_ns()
    time.sleep(1.3)
    # Medium now (1 s on, 1 s off), no more 2 Hz test flashing.
    on = [(s, e) for s, e in intervals(read_trace(trace), LAMP1, 1, since=t) if e]
    assert on and all((e - s) / 1e9 > 0.9 for s, e in on), on


@pytest.mark.parametrize("debounce_ms", [0, 20])
def test_edge_to_alarm_line_latency(make_daemon, debounce_ms):
    """Measured, not bounded above: an input edge (the sim-input request sent)
    to the alarm line's first write. Printed for the record (pytest -s)."""
    d = make_daemon(conf_text=conf(debounce_ms=debounce_ms, call_escalate_after="1h"))
    trace = os.path.join(d.dir, "trace")
    lat = []
    for _ in range(10):
        t0 = mono_ns()
        sim(d, CALL2, 1)
        rise = wait_for(lambda: edges(read_trace(trace), BUZZER2, 1, since=t0),
                        timeout=5, what="buzzer on", interval=0.005)[0]
        lat.append((rise - t0) / 1e6)
        d.ok({"cmd": "checkin", "room": "2"})
        sim(d, CALL2, 0)
        time.sleep(0.05 + debounce_ms / 1000)
    lat.sort()
    print(f"\ncall edge -> alarm line, debounce {debounce_ms} ms: min {lat[0]:.2f} ms, "
          f"median {lat[len(lat) // 2]:.2f} ms, max {lat[-1]:.2f} ms (n={len(lat)})")
    # The debounce delays a call by its period, never less.
    assert lat[0] >= debounce_ms
