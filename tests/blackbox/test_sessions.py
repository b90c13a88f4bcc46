"""Rooms and sessions (SPEC §2, §4, §6): every session command, its state rules and
error codes, the room object, timers, alarms and the history."""

import json
import time

import pytest

from conftest import ME, ROOM_NAMES, alarm, err_code, parse_ts

PRIORITIES = ("high", "medium", "low")


def check_room(r):
    """Every field SPEC §6 lists, with the right type."""
    assert isinstance(r, dict), r
    for key in ("id", "name", "state", "patient", "practitioner", "started_at", "ends_at",
                "duration_s", "remaining_s", "overdue_s", "needles", "profile", "flags",
                "stim", "checkin_due_at", "alarms"):
        assert key in r, f"room object lacks {key!r}: {r!r}"
    assert isinstance(r["id"], str)
    assert isinstance(r["name"], str)
    assert r["state"] in ("idle", "running", "paused", "due")
    for key in ("patient", "practitioner", "profile"):
        assert r[key] is None or isinstance(r[key], str), (key, r[key])
    for key in ("started_at", "ends_at", "checkin_due_at"):
        if r[key] is not None:
            parse_ts(r[key])
    session = r["state"] != "idle"
    for key in ("duration_s", "remaining_s", "overdue_s", "needles"):
        v = r[key]
        if session and not (key == "needles" and v is None):
            assert isinstance(v, int) and not isinstance(v, bool), (key, v)
            assert v >= 0, (key, v)
        else:
            assert v is None or (isinstance(v, int) and not isinstance(v, bool)), (key, v)
    if session:
        assert isinstance(r["practitioner"], str)
        parse_ts(r["started_at"])
    assert isinstance(r["flags"], list) and all(isinstance(f, str) for f in r["flags"])
    st = r["stim"]
    assert isinstance(st, dict), st
    assert isinstance(st["armed"], bool) and isinstance(st["on"], bool)
    assert st["blocked"] is None or isinstance(st["blocked"], str)
    assert isinstance(st["channels"], list) and st["channels"]
    for ch in st["channels"]:
        assert isinstance(ch["on"], bool)
        assert isinstance(ch["delivered_s"], int) and ch["delivered_s"] >= 0
    assert isinstance(r["alarms"], list)
    for a in r["alarms"]:
        assert isinstance(a["kind"], str)
        assert a["priority"] in PRIORITIES, a
        parse_ts(a["since"])
        assert "silenced_until" in a
        if a["silenced_until"] is not None:
            parse_ts(a["silenced_until"])
    return r


def history(d, **kw):
    rep = d.ok(dict({"cmd": "history"}, **kw))
    assert isinstance(rep["entries"], list)
    return rep["entries"]


def session_entries(entries, room="1"):
    out = []
    for e in entries:
        if "outcome" not in e:
            continue
        rid = e.get("room")
        if rid is None and isinstance(e.get("session"), dict):
            rid = e["session"].get("id")
        if rid == room:
            out.append(e)
    return out


def due_to(d, room="1", duration_s=300, needles=6, **kw):
    d.start_session(room, duration_s, needles=needles, **kw)
    r = d.ok({"cmd": "stop", "room": room})["room"]
    assert r["state"] == "due"
    return r


# --- status ------------------------------------------------------------------

def test_status_all_rooms(daemon):
    rep = daemon.request({"cmd": "status"})
    assert rep["ok"] is True
    rooms = rep["rooms"]
    assert [r["id"] for r in rooms] == ["1", "2", "3", "4"]
    for r in rooms:
        check_room(r)
        assert r["name"] == ROOM_NAMES[r["id"]]
        assert r["state"] == "idle"
        assert r["patient"] is None and r["practitioner"] is None
        assert r["started_at"] is None and r["ends_at"] is None
        assert r["alarms"] == [] and r["flags"] == []
        assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    assert len(rooms[0]["stim"]["channels"]) == 2
    assert len(rooms[1]["stim"]["channels"]) == 1
    assert len(rooms[3]["stim"]["channels"]) == 2


def test_status_one_room(daemon):
    rep = daemon.request({"cmd": "status", "room": "3"})
    assert rep["ok"] is True
    assert "rooms" not in rep
    check_room(rep["room"])
    assert rep["room"]["id"] == "3" and rep["room"]["name"] == "Cedar"


# --- start -------------------------------------------------------------------

def test_start_room_object(daemon):
    t0 = time.time()
    rep = daemon.request({"id": 7, "cmd": "start", "room": "1", "duration_s": 500,
                          "profile": "lbp-2hz", "needles": 8, "patient": "A1043",
                          "flags": ["bleeding-disorder"], "stim": False})
    assert rep["ok"] is True and rep["id"] == 7
    r = check_room(rep["room"])
    assert r["id"] == "1" and r["name"] == "Lotus"
    assert r["state"] == "running"
    assert r["patient"] == "A1043"
    assert r["practitioner"] == ME
    assert abs(parse_ts(r["started_at"]) - t0) < 5
    assert abs(parse_ts(r["ends_at"]) - (parse_ts(r["started_at"]) + 500)) <= 2
    assert r["duration_s"] == 500
    assert 495 <= r["remaining_s"] <= 500
    assert r["overdue_s"] == 0
    assert r["needles"] == 8
    assert r["profile"] == "lbp-2hz"
    assert r["flags"] == ["bleeding-disorder"]
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    assert all(ch["on"] is False for ch in r["stim"]["channels"])
    # Default check-in interval is 10 minutes.
    assert abs(parse_ts(r["checkin_due_at"]) - (t0 + 600)) < 5
    assert r["alarms"] == []
    # status says the same
    s = check_room(daemon.status("1"))
    assert s["state"] == "running" and s["patient"] == "A1043" and s["ends_at"] == r["ends_at"]
    assert s["practitioner"] == ME
    # other rooms untouched
    assert daemon.status("2")["state"] == "idle"


def test_start_minimal(daemon):
    r = daemon.ok({"cmd": "start", "room": "2", "duration_s": 60, "needles": 1})["room"]
    check_room(r)
    assert r["state"] == "running"
    assert r["patient"] is None
    assert r["profile"] is None
    assert r["flags"] == []
    assert r["practitioner"] == ME


def test_start_twice_invalid_state(daemon):
    daemon.start_session("1", 300)
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": 2,
                          "patient": "B2"})
    assert err_code(rep) == "invalid-state"
    r = daemon.status("1")
    assert r["patient"] == "A1043" and r["needles"] == 6 and r["duration_s"] == 300


def test_start_missing_needles(daemon):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300})
    assert err_code(rep) == "bad-request"
    assert daemon.status("1")["state"] == "idle"


@pytest.mark.parametrize("needles", [0, -1, 201, 100000])
def test_start_needles_out_of_range(daemon, needles):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": needles})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["state"] == "idle"


def test_start_needles_bounds_accepted(daemon):
    assert daemon.start_session("1", 300, needles=1)["needles"] == 1
    assert daemon.start_session("2", 300, needles=200)["needles"] == 200


def test_require_needle_count_no(make_daemon):
    d = make_daemon(require_needle_count="no")
    r = d.ok({"cmd": "start", "room": "1", "duration_s": 300})["room"]
    assert r["state"] == "running"
    check_room(r)


@pytest.mark.parametrize("duration", [0, 601, 3600])
def test_start_duration_out_of_range(daemon, duration):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": duration, "needles": 6})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["state"] == "idle"


def test_start_duration_bounds_accepted(daemon):
    assert daemon.start_session("1", 1)["duration_s"] == 1
    assert daemon.start_session("2", 600)["duration_s"] == 600


def test_session_min_enforced(make_daemon):
    d = make_daemon(session_min="30s", session_max="1h")
    rep = d.request({"cmd": "start", "room": "1", "duration_s": 29, "needles": 6})
    assert err_code(rep) == "out-of-range"
    rep = d.request({"cmd": "start", "room": "1", "duration_s": 3601, "needles": 6})
    assert err_code(rep) == "out-of-range"
    assert d.start_session("1", 30)["state"] == "running"
    assert d.start_session("2", 3600)["state"] == "running"


@pytest.mark.parametrize("patient", ["John Smith", "", "x" * 33, "A/1043", "A1043\n",
                                     "Ä1043", "a;b", "../etc"])
def test_start_bad_patient_ref(daemon, patient):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": 6,
                          "patient": patient})
    assert err_code(rep) == "bad-request"
    assert daemon.status("1")["state"] == "idle"


@pytest.mark.parametrize("patient", ["x" * 32, "A.b_c-1", "0", "Z"])
def test_start_good_patient_ref(daemon, patient):
    assert daemon.start_session("1", 300, patient=patient)["patient"] == patient


def test_start_unknown_profile(daemon):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": 6,
                          "profile": "no-such-profile"})
    assert err_code(rep) == "unknown-profile"
    assert daemon.status("1")["state"] == "idle"


def test_start_with_profile_from_profiles_dir(daemon):
    assert daemon.start_session("1", 300, profile="extra-10hz")["profile"] == "extra-10hz"


@pytest.mark.parametrize("flags", [["sunburn"], ["pregnancy", "nope"], ["PACEMAKER"]])
def test_start_unknown_flag(daemon, flags):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 300, "needles": 6,
                          "flags": flags})
    assert err_code(rep) == "bad-request"
    assert daemon.status("1")["state"] == "idle"


def test_start_all_known_flags(daemon):
    flags = ["pacemaker", "icd", "implanted-device", "pregnancy", "epilepsy",
             "heart-disease", "bleeding-disorder", "metal-implant"]
    r = daemon.start_session("1", 300, flags=flags)
    assert sorted(r["flags"]) == sorted(flags)
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False


# --- invalid-state matrix ----------------------------------------------------

SESSION_REQS = {
    "pause": {},
    "resume": {},
    "stop": {},
    "finish": {"removed": 6},
    "checkin": {},
    "extend": {"duration_s": 60},
    "needles": {"delta": 1},
    "flag": {"flags": ["pregnancy"]},
    "silence": {},
}


@pytest.mark.parametrize("cmd", sorted(SESSION_REQS))
def test_idle_room_refuses_session_commands(daemon, cmd):
    rep = daemon.request(dict({"cmd": cmd, "room": "2"}, **SESSION_REQS[cmd]))
    assert err_code(rep) == "invalid-state", (cmd, rep)
    assert daemon.status("2")["state"] == "idle"


def test_running_room_refuses(daemon):
    daemon.start_session("1", 300)
    for cmd in ("resume", "finish"):
        rep = daemon.request(dict({"cmd": cmd, "room": "1"}, **SESSION_REQS[cmd]))
        assert err_code(rep) == "invalid-state", (cmd, rep)
    assert daemon.status("1")["state"] == "running"


def test_paused_room_refuses(daemon):
    daemon.start_session("1", 300)
    daemon.ok({"cmd": "pause", "room": "1"})
    for cmd in ("pause", "finish"):
        rep = daemon.request(dict({"cmd": cmd, "room": "1"}, **SESSION_REQS[cmd]))
        assert err_code(rep) == "invalid-state", (cmd, rep)
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 60, "needles": 1})
    assert err_code(rep) == "invalid-state"
    assert daemon.status("1")["state"] == "paused"
    # A check-in is accepted while paused: the patient is still needled.
    rep = daemon.ok({"cmd": "checkin", "room": "1"})
    assert rep["room"]["checkins"] == 1 and rep["room"]["state"] == "paused"


def test_due_room_refuses(daemon):
    due_to(daemon, "1")
    for cmd in ("pause", "resume", "stop", "checkin"):
        rep = daemon.request(dict({"cmd": cmd, "room": "1"}, **SESSION_REQS[cmd]))
        assert err_code(rep) == "invalid-state", (cmd, rep)
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 60, "needles": 1})
    assert err_code(rep) == "invalid-state"
    assert daemon.status("1")["state"] == "due"


# --- pause / resume / stop / extend ------------------------------------------

def test_pause_freezes_remaining(daemon):
    daemon.start_session("1", 300)
    time.sleep(1.1)
    r = daemon.ok({"cmd": "pause", "room": "1"})["room"]
    check_room(r)
    assert r["state"] == "paused"
    assert r["ends_at"] is None
    assert r["stim"]["armed"] is False and r["stim"]["on"] is False
    frozen = r["remaining_s"]
    assert 295 <= frozen <= 299
    time.sleep(2.2)
    r = daemon.status("1")
    assert r["state"] == "paused"
    assert r["remaining_s"] == frozen
    r = daemon.ok({"cmd": "resume", "room": "1"})["room"]
    assert r["state"] == "running"
    assert frozen - 1 <= r["remaining_s"] <= frozen
    assert abs(parse_ts(r["ends_at"]) - (time.time() + r["remaining_s"])) <= 2
    assert r["paused_s"] >= 2


def test_stop_makes_due_with_medium_alarm(daemon):
    daemon.start_session("1", 300)
    t0 = time.time()
    r = daemon.ok({"cmd": "stop", "room": "1"})["room"]
    check_room(r)
    assert r["state"] == "due"
    assert r["remaining_s"] == 0
    assert r["overdue_s"] >= 0
    assert abs(parse_ts(r["ends_at"]) - t0) < 3  # due: when it became due
    a = alarm(r, "due")
    assert a is not None, r["alarms"]
    assert a["priority"] == "medium"
    assert a["silenced_until"] is None
    assert r["patient"] == "A1043" and r["needles"] == 6


def test_stop_from_paused(daemon):
    daemon.start_session("1", 300)
    daemon.ok({"cmd": "pause", "room": "1"})
    r = daemon.ok({"cmd": "stop", "room": "1"})["room"]
    assert r["state"] == "due"
    assert alarm(r, "due")["priority"] == "medium"


def test_extend_running(daemon):
    r0 = daemon.start_session("1", 300)
    r = daemon.ok({"cmd": "extend", "room": "1", "duration_s": 120})["room"]
    assert r["state"] == "running"
    assert 415 <= r["remaining_s"] <= 420
    assert abs(parse_ts(r["ends_at"]) - (parse_ts(r0["ends_at"]) + 120)) <= 1


@pytest.mark.parametrize("dur", [0, -1, -600])
def test_extend_non_positive_out_of_range(daemon, dur):
    daemon.start_session("1", 300)
    rep = daemon.request({"cmd": "extend", "room": "1", "duration_s": dur})
    assert err_code(rep) == "out-of-range"
    assert 295 <= daemon.status("1")["remaining_s"] <= 300


def test_extend_beyond_session_max_out_of_range(daemon):
    daemon.start_session("1", 500)
    rep = daemon.request({"cmd": "extend", "room": "1", "duration_s": 200})
    assert err_code(rep) == "out-of-range"
    r = daemon.status("1")
    assert r["state"] == "running" and r["remaining_s"] <= 500


def test_extend_from_due_beyond_session_max(daemon):
    due_to(daemon, "1")
    rep = daemon.request({"cmd": "extend", "room": "1", "duration_s": 601})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["state"] == "due"


def test_extend_paused_stays_paused(daemon):
    daemon.start_session("1", 300)
    r = daemon.ok({"cmd": "pause", "room": "1"})["room"]
    frozen = r["remaining_s"]
    r = daemon.ok({"cmd": "extend", "room": "1", "duration_s": 60})["room"]
    assert r["state"] == "paused"
    assert r["remaining_s"] == frozen + 60


def test_extend_from_due_returns_to_running(daemon):
    due_to(daemon, "1")
    r = daemon.ok({"cmd": "extend", "room": "1", "duration_s": 60})["room"]
    check_room(r)
    assert r["state"] == "running"
    assert 58 <= r["remaining_s"] <= 60
    assert r["overdue_s"] == 0
    assert alarm(r, "due") is None
    assert abs(parse_ts(r["ends_at"]) - (time.time() + 60)) <= 3


# --- expiry, escalation, check-ins -------------------------------------------

def test_expiry_reaches_due(daemon):
    r = daemon.start_session("1", 2)
    assert r["state"] == "running"
    r = daemon.wait_room("1", lambda r: r["state"] == "due", timeout=6, what="expiry")
    check_room(r)
    a = alarm(r, "due")
    assert a is not None and a["priority"] == "medium"
    assert abs(parse_ts(a["since"]) - parse_ts(r["ends_at"])) <= 1
    assert r["remaining_s"] == 0
    # ends_at of a due room is when it became due: the original end.
    assert abs(parse_ts(r["ends_at"]) - (parse_ts(r["started_at"]) + 2)) <= 1
    # overdue_s grows
    r2 = daemon.wait_room("1", lambda x: x["overdue_s"] >= r["overdue_s"] + 1, timeout=4,
                          what="overdue_s growing")
    assert r2["state"] == "due"
    assert r2["patient"] == "A1043"


def test_expiry_not_early(daemon):
    daemon.start_session("1", 3)
    time.sleep(1.0)
    r = daemon.status("1")
    assert r["state"] == "running" and 1 <= r["remaining_s"] <= 3


def test_due_escalates_to_high(make_daemon):
    d = make_daemon(escalate_after="2s")
    d.start_session("1", 1)
    r = d.wait_room("1", lambda r: r["state"] == "due", timeout=6, what="expiry")
    assert alarm(r, "due")["priority"] == "medium" or r["overdue_s"] >= 2
    r = d.wait_room("1", lambda r: (alarm(r, "due") or {}).get("priority") == "high",
                    timeout=6, what="escalation to high")
    assert r["overdue_s"] >= 1
    # Extending clears it; the room runs again.
    r = d.ok({"cmd": "extend", "room": "1", "duration_s": 30})["room"]
    assert r["state"] == "running" and alarm(r, "due") is None


def test_escalation_not_before_escalate_after(make_daemon):
    d = make_daemon(escalate_after="5s")
    due_to(d, "1")
    time.sleep(1.5)
    r = d.status("1")
    assert alarm(r, "due")["priority"] == "medium"


def test_checkin_alarm_and_ack(make_daemon):
    d = make_daemon(checkin_interval="2s")
    r = d.start_session("1", 120)
    assert abs(parse_ts(r["checkin_due_at"]) - (parse_ts(r["started_at"]) + 2)) <= 1
    assert alarm(r, "checkin") is None
    r = d.wait_room("1", lambda r: alarm(r, "checkin") is not None, timeout=6,
                    what="check-in reminder")
    a = alarm(r, "checkin")
    assert a["priority"] == "low"
    assert r["state"] == "running"
    before = parse_ts(r["checkin_due_at"])
    t0 = time.time()
    r = d.ok({"cmd": "checkin", "room": "1"})["room"]
    check_room(r)
    assert alarm(r, "checkin") is None
    assert r["checkins"] == 1
    assert parse_ts(r["checkin_due_at"]) > before
    assert abs(parse_ts(r["checkin_due_at"]) - (t0 + 2)) <= 2


def test_checkin_disabled(make_daemon):
    d = make_daemon(checkin_interval="0")
    r = d.start_session("1", 120)
    assert r["checkin_due_at"] is None
    time.sleep(1.5)
    assert alarm(d.status("1"), "checkin") is None


def test_checkin_before_due_restarts_interval(make_daemon):
    d = make_daemon(checkin_interval="1m")
    r = d.start_session("1", 300)
    first = parse_ts(r["checkin_due_at"])
    time.sleep(1.1)
    r = d.ok({"cmd": "checkin", "room": "1"})["room"]
    assert parse_ts(r["checkin_due_at"]) >= first + 1


# --- needles -----------------------------------------------------------------

def test_needles_adjust(daemon):
    daemon.start_session("1", 300, needles=6)
    assert daemon.ok({"cmd": "needles", "room": "1", "delta": 2})["room"]["needles"] == 8
    assert daemon.ok({"cmd": "needles", "room": "1", "delta": -3})["room"]["needles"] == 5
    rep = daemon.request({"cmd": "needles", "room": "1", "delta": -6})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["needles"] == 5
    rep = daemon.request({"cmd": "needles", "room": "1", "delta": 196})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["needles"] == 5
    daemon.ok({"cmd": "pause", "room": "1"})
    assert daemon.ok({"cmd": "needles", "room": "1", "delta": 1})["room"]["needles"] == 6
    daemon.ok({"cmd": "stop", "room": "1"})
    assert daemon.ok({"cmd": "needles", "room": "1", "delta": -1})["room"]["needles"] == 5
    # finish matches the adjusted count
    r = daemon.ok({"cmd": "finish", "room": "1", "removed": 5})["room"]
    assert r["state"] == "idle"


def test_needles_to_exactly_zero_allowed(daemon):
    daemon.start_session("1", 300, needles=2)
    assert daemon.ok({"cmd": "needles", "room": "1", "delta": -2})["room"]["needles"] == 0


# --- finish ------------------------------------------------------------------

def test_finish_needle_mismatch_and_recovery(daemon):
    due_to(daemon, "1", needles=6)
    rep = daemon.request({"cmd": "finish", "room": "1", "removed": 5})
    assert err_code(rep) == "needle-mismatch"
    r = check_room(daemon.status("1"))
    assert r["state"] == "due"
    a = alarm(r, "needle-mismatch")
    assert a is not None, r["alarms"]
    assert a["priority"] == "high"
    assert alarm(r, "due") is not None
    r = daemon.ok({"cmd": "finish", "room": "1", "removed": 6})["room"]
    check_room(r)
    assert r["state"] == "idle"
    assert r["alarms"] == []
    assert r["patient"] is None
    ents = session_entries(history(daemon, room="1"))
    assert len(ents) == 1, ents
    assert ents[0]["outcome"]
    assert "A1043" in json.dumps(ents[0])


def test_finish_too_many_removed_is_mismatch(daemon):
    due_to(daemon, "1", needles=6)
    assert err_code(daemon.request({"cmd": "finish", "room": "1", "removed": 7})) == \
        "needle-mismatch"
    assert daemon.status("1")["state"] == "due"


def test_finish_override_recorded(daemon):
    due_to(daemon, "1", needles=6)
    reason = "one needle broke, fragment retrieved"
    r = daemon.ok({"cmd": "finish", "room": "1", "removed": 4, "override": reason})["room"]
    assert r["state"] == "idle"
    assert r["alarms"] == []
    ents = session_entries(history(daemon, room="1"))
    assert len(ents) == 1, ents
    assert reason in json.dumps(ents[0])
    assert ents[0]["outcome"]


def test_finish_missing_removed(daemon):
    due_to(daemon, "1")
    assert err_code(daemon.request({"cmd": "finish", "room": "1"})) == "bad-request"
    assert daemon.status("1")["state"] == "due"


def test_finish_then_room_reusable(daemon):
    due_to(daemon, "1", needles=3)
    daemon.ok({"cmd": "finish", "room": "1", "removed": 3})
    r = daemon.start_session("1", 60, needles=4, patient="B77")
    assert r["state"] == "running" and r["patient"] == "B77" and r["needles"] == 4
    assert r["flags"] == [] and r["alarms"] == []


# --- flags -------------------------------------------------------------------

def test_flag_adds(daemon):
    daemon.start_session("1", 300, flags=["bleeding-disorder"])
    r = daemon.ok({"cmd": "flag", "room": "1", "flags": ["metal-implant"]})["room"]
    assert sorted(r["flags"]) == ["bleeding-disorder", "metal-implant"]
    r = daemon.ok({"cmd": "flag", "room": "1", "flags": ["metal-implant", "epilepsy"]})["room"]
    assert sorted(r["flags"]) == ["bleeding-disorder", "epilepsy", "metal-implant"]


def test_flag_errors(daemon):
    daemon.start_session("1", 300)
    assert err_code(daemon.request({"cmd": "flag", "room": "1", "flags": ["nope"]})) == \
        "bad-request"
    assert err_code(daemon.request({"cmd": "flag", "room": "1", "flags": []})) == "bad-request"
    assert err_code(daemon.request({"cmd": "flag", "room": "1", "flags": "pregnancy"})) == \
        "bad-request"
    assert daemon.status("1")["flags"] == []


def test_hard_flag_blocks_stim(daemon):
    daemon.start_session("1", 300)
    r = daemon.ok({"cmd": "flag", "room": "1", "flags": ["pacemaker"]})["room"]
    assert "pacemaker" in r["flags"]
    assert r["stim"]["on"] is False and r["stim"]["armed"] is False
    assert isinstance(r["stim"]["blocked"], str) and r["stim"]["blocked"]


def test_flag_in_paused_and_due(daemon):
    daemon.start_session("1", 300)
    daemon.ok({"cmd": "pause", "room": "1"})
    assert "epilepsy" in daemon.ok({"cmd": "flag", "room": "1", "flags": ["epilepsy"]})["room"]["flags"]
    daemon.ok({"cmd": "stop", "room": "1"})
    assert "pregnancy" in daemon.ok({"cmd": "flag", "room": "1", "flags": ["pregnancy"]})["room"]["flags"]


# --- silence -----------------------------------------------------------------

def test_silence_sets_silenced_until(daemon):
    due_to(daemon, "1")
    t0 = time.time()
    r = daemon.ok({"cmd": "silence", "room": "1", "duration_s": 60})["room"]
    a = alarm(r, "due")
    assert a is not None
    assert a["silenced_until"] is not None
    assert abs(parse_ts(a["silenced_until"]) - (t0 + 60)) <= 3
    # Silencing does not clear the alarm.
    assert r["state"] == "due"


def test_silence_default_two_minutes(daemon):
    due_to(daemon, "1")
    t0 = time.time()
    r = daemon.ok({"cmd": "silence", "room": "1"})["room"]
    assert abs(parse_ts(alarm(r, "due")["silenced_until"]) - (t0 + 120)) <= 3


@pytest.mark.parametrize("dur", [601, 0, -1, 3600])
def test_silence_out_of_range(daemon, dur):
    due_to(daemon, "1")
    rep = daemon.request({"cmd": "silence", "room": "1", "duration_s": dur})
    assert err_code(rep) == "out-of-range"
    assert alarm(daemon.status("1"), "due")["silenced_until"] is None


def test_silence_max_accepted(daemon):
    due_to(daemon, "1")
    t0 = time.time()
    r = daemon.ok({"cmd": "silence", "room": "1", "duration_s": 600})["room"]
    assert abs(parse_ts(alarm(r, "due")["silenced_until"]) - (t0 + 600)) <= 3


def test_silence_without_alarm_invalid_state(daemon):
    daemon.start_session("1", 300)
    assert err_code(daemon.request({"cmd": "silence", "room": "1"})) == "invalid-state"


def test_silence_does_not_cover_new_higher_alarm(daemon):
    due_to(daemon, "1", needles=6)
    daemon.ok({"cmd": "silence", "room": "1", "duration_s": 300})
    assert err_code(daemon.request({"cmd": "finish", "room": "1", "removed": 2})) == \
        "needle-mismatch"
    a = alarm(daemon.status("1"), "needle-mismatch")
    assert a is not None and a["priority"] == "high"
    assert a["silenced_until"] is None, a


def test_silence_is_per_room(daemon):
    due_to(daemon, "1")
    due_to(daemon, "2")
    daemon.ok({"cmd": "silence", "room": "1", "duration_s": 60})
    assert alarm(daemon.status("2"), "due")["silenced_until"] is None


# --- profiles ----------------------------------------------------------------

def _profile_names(profiles):
    return [p["name"] if isinstance(p, dict) else p for p in profiles]


def test_profiles_list(daemon):
    rep = daemon.request({"cmd": "profiles"})
    assert rep["ok"] is True
    names = _profile_names(rep["profiles"])
    for n in ("lbp-2hz", "gentle", "extra-10hz"):
        assert n in names, names


def test_profile_detail(daemon):
    rep = daemon.request({"cmd": "profile", "name": "lbp-2hz"})
    assert rep["ok"] is True
    p = rep["profile"]
    assert p["name"] == "lbp-2hz"
    assert p["mode"] == "continuous"
    assert p["frequency_hz"] == 2
    assert p["duration_s"] == 1200
    assert p["description"] == "Low back pain, 2 Hz continuous"
    g = daemon.ok({"cmd": "profile", "name": "gentle"})["profile"]
    assert g["mode"] == "intermittent"
    assert g["on_s"] == 5 and g["off_s"] == 5
    assert g["pregnancy_safe"] in (True, "yes", 1)
    assert g["frequency_hz"] == 2  # default
    assert g["pulse_width_us"] == 200  # default


def test_profile_unknown(daemon):
    assert err_code(daemon.request({"cmd": "profile", "name": "nope"})) == "unknown-profile"


# --- history -----------------------------------------------------------------

def test_history_sessions_and_alarms(daemon):
    due_to(daemon, "1", needles=2, patient="H1")
    daemon.ok({"cmd": "finish", "room": "1", "removed": 2})
    due_to(daemon, "2", needles=3, patient="H2")
    daemon.ok({"cmd": "finish", "room": "2", "removed": 1, "override": "counted twice"})
    entries = history(daemon)
    assert entries, "history is empty"
    s1 = session_entries(entries, "1")
    s2 = session_entries(entries, "2")
    assert len(s1) == 1 and len(s2) == 1, entries
    assert "H1" in json.dumps(s1[0]) and "H2" in json.dumps(s2[0])
    assert s1[0]["outcome"] != s2[0]["outcome"]
    assert "counted twice" in json.dumps(s2[0])
    # Alarms are in the history too, each with a timestamp.
    alarm_entries = [e for e in entries if e.get("kind") == "due" or e.get("alarm") == "due"]
    assert alarm_entries, entries
    for e in alarm_entries:
        if "since" in e:  # when the alarm was raised, on raising and on clearing alike
            assert abs(parse_ts(e["since"]) - time.time()) < 600, e
    for e in entries:
        assert any(isinstance(v, str) and _is_ts(v) for v in e.values()), e


def _is_ts(v):
    try:
        parse_ts(v)
        return True
    except AssertionError:
        return False


def test_history_filters(daemon):
    due_to(daemon, "1", needles=2)
    daemon.ok({"cmd": "finish", "room": "1", "removed": 2})
    due_to(daemon, "2", needles=2)
    daemon.ok({"cmd": "finish", "room": "2", "removed": 2})
    only2 = history(daemon, room="2")
    assert only2
    assert not session_entries(only2, "1")
    assert session_entries(only2, "2")
    assert len(history(daemon, limit=1)) == 1
    assert len(history(daemon, limit=3)) == 3
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert history(daemon, since=future) == []
    assert history(daemon, since=int(time.time()) + 3600) == []
    future_offset = time.strftime("%Y-%m-%dT%H:%M:%S+01:00", time.gmtime(time.time() + 7200))
    assert history(daemon, since=future_offset) == []
    assert len(history(daemon, since="2000-01-01T00:00:00Z")) >= 2
    assert len(history(daemon, since=0)) >= 2


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_history_limit_out_of_range(daemon, limit):
    assert err_code(daemon.request({"cmd": "history", "limit": limit})) == "out-of-range"


def test_history_bad_since(daemon):
    assert err_code(daemon.request({"cmd": "history", "since": "yesterday"})) == "bad-request"


def test_history_empty_on_fresh_daemon(daemon):
    entries = daemon.ok({"cmd": "history"})["entries"]
    assert session_entries(entries, "1") == []
