"""Control protocol (SPEC §6): framing, ids, error codes for malformed input, and the
daemon staying up and answering after every kind of bad request."""

import json
import os

import pytest

from conftest import err_code


def still_answers(d):
    rep = d.request({"cmd": "status"})
    assert rep.get("ok") is True, f"daemon no longer answers status: {rep!r}"
    assert d.alive()


def test_version(daemon):
    rep = daemon.request({"cmd": "version"})
    assert rep["ok"] is True
    assert isinstance(rep["version"], str) and rep["version"]
    assert rep["protocol"] == 1


@pytest.mark.parametrize("rid", [7, "req-abc", 0, 123456789])
def test_id_echoed_on_success(daemon, rid):
    rep = daemon.request({"id": rid, "cmd": "version"})
    assert rep["ok"] is True
    assert rep["id"] == rid and type(rep["id"]) is type(rid)


@pytest.mark.parametrize("rid", [8, "x-8"])
def test_id_echoed_on_error(daemon, rid):
    rep = daemon.request({"id": rid, "cmd": "no-such-command"})
    assert err_code(rep) == "unknown-command"
    assert rep["id"] == rid


def test_id_echoed_on_bad_request(daemon):
    rep = daemon.request({"id": 9, "cmd": "status", "bogus": 1})
    assert err_code(rep) == "bad-request"
    assert rep["id"] == 9


def test_no_id_no_id_in_reply(daemon):
    rep = daemon.request({"cmd": "version"})
    assert "id" not in rep or rep["id"] is None


def test_unknown_command(daemon):
    assert err_code(daemon.request({"cmd": "explode"})) == "unknown-command"
    still_answers(daemon)


@pytest.mark.parametrize("req", [
    {"id": 1},                              # no cmd
    {"cmd": 5},                             # cmd not a string
    {"cmd": None},
    {"cmd": ["status"]},
    {"cmd": "status", "bogus": True},       # unknown key
    {"cmd": "version", "room": "1"},        # key not taken by the command
    {"cmd": "status", "room": 1},           # room must be a string id
    {"cmd": "status", "room": None},
    {"cmd": "start", "room": "1", "duration_s": "600", "needles": 6},   # string for int
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": "6"},
    {"cmd": "start", "room": "1", "duration_s": 600.5, "needles": 6},   # real for int
    {"cmd": "start", "room": "1", "duration_s": True, "needles": 6},
    {"cmd": "start", "room": "1", "needles": 6},                        # missing duration_s
    {"cmd": "start", "duration_s": 600, "needles": 6},                  # missing room
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": 6, "stim": "yes"},
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": 6, "flags": "pregnancy"},
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": 6, "flags": [1]},
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": 6, "patient": 1043},
    {"cmd": "start", "room": "1", "duration_s": 600, "needles": 6, "profile": 3},
    {"cmd": "profile"},                                                 # missing name
    {"cmd": "profile", "name": 1},
    {"cmd": "history", "limit": "5"},
    {"cmd": "history", "since": [1]},
    {"cmd": "silence", "room": "1", "duration_s": "60"},
    {"cmd": "extend", "room": "1"},
    {"cmd": "needles", "room": "1"},
    {"cmd": "flag", "room": "1"},
    {"cmd": "stim", "room": "1", "on": "true"},
])
def test_bad_request_shapes(daemon, req):
    rep = daemon.request(dict(req, id=42))
    assert err_code(rep) == "bad-request", f"{req!r} -> {rep!r}"
    assert rep.get("id") == 42
    # Nothing started by accident.
    assert daemon.status("1")["state"] == "idle"
    still_answers(daemon)


def test_unknown_room(daemon):
    for req in ({"cmd": "status", "room": "9"},
                {"cmd": "start", "room": "9", "duration_s": 60, "needles": 3},
                {"cmd": "pause", "room": "nope"},
                {"cmd": "finish", "room": "42", "removed": 1}):
        assert err_code(daemon.request(req)) == "unknown-room", req
    still_answers(daemon)


def test_malformed_json(daemon):
    rep = daemon.raw(b'{"cmd": "status",\n')
    assert err_code(rep) == "bad-request"
    rep = daemon.raw(b"{cmd: status}\n")
    assert err_code(rep) == "bad-request"
    still_answers(daemon)


def test_json_array_is_not_a_request(daemon):
    assert err_code(daemon.raw(b'[{"cmd":"status"}]\n')) == "bad-request"
    assert err_code(daemon.raw(b'"status"\n')) == "bad-request"
    assert err_code(daemon.raw(b"42\n")) == "bad-request"
    assert err_code(daemon.raw(b"null\n")) == "bad-request"
    still_answers(daemon)


def test_two_objects_on_one_line_is_bad_request(daemon):
    assert err_code(daemon.raw(b'{"cmd":"status"}{"cmd":"status"}\n')) == "bad-request"
    still_answers(daemon)


def test_overlong_line_then_same_connection_still_works(daemon):
    pad = "x" * 5000
    line = json.dumps({"id": 1, "cmd": "status", "pad": pad}).encode() + b"\n"
    assert len(line) > 5000
    with daemon.connect() as c:
        c.send_raw(line)
        rep = c.recv()
        assert err_code(rep) == "bad-request"
        # The rest of the long line is discarded; the connection stays usable.
        rep = c.request({"id": 2, "cmd": "status"})
        assert rep["ok"] is True and rep["id"] == 2 and len(rep["rooms"]) == 4
        # Exactly one reply for the long line: nothing else is pending.
        rep = c.request({"id": 3, "cmd": "version"})
        assert rep["ok"] is True and rep["id"] == 3


def test_request_of_exactly_4096_bytes_accepted(daemon):
    base = {"id": 1, "cmd": "status", "room": "1"}
    # Pad the id (a string id may be any length) to make the line exactly 4096 bytes.
    n = 4096 - len(json.dumps(dict(base, id="")).encode())
    req = dict(base, id="i" * n)
    line = json.dumps(req).encode()
    assert len(line) == 4096
    rep = daemon.raw(line + b"\n")
    assert rep.get("ok") is True, rep
    assert rep["room"]["id"] == "1"


def test_huge_line_in_pieces(daemon):
    """64 KiB without a newline, then a newline: one bad-request, then normal service."""
    with daemon.connect() as c:
        for _ in range(16):
            c.send_raw(b"a" * 4096)
        c.send_raw(b"\n")
        assert err_code(c.recv()) == "bad-request"
        assert c.request({"cmd": "version"})["ok"] is True
    still_answers(daemon)


def test_binary_garbage(daemon):
    garbage = bytes(range(256)) * 4
    garbage = garbage.replace(b"\n", b"") + b"\n"
    with daemon.connect() as c:
        c.send_raw(garbage)
        assert err_code(c.recv()) == "bad-request"
        assert c.request({"cmd": "version"})["ok"] is True
    # Random bytes without any newline, then disconnect.
    with daemon.connect() as c:
        c.send_raw(os.urandom(3000).replace(b"\n", b"."))
    # Invalid UTF-8 inside a JSON string.
    # Not UTF-8: not JSON at all, so not an unknown command either.
    assert err_code(daemon.raw(b'{"cmd":"sta\xff\xfetus"}\n')) == "bad-request"
    # NUL byte inside a line.
    assert err_code(daemon.raw(b'{"cmd":"status"}\x00junk\n')) == "bad-request"
    still_answers(daemon)


def test_negative_duration(daemon):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": -5, "needles": 6})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["state"] == "idle"
    still_answers(daemon)


@pytest.mark.parametrize("raw", [
    b'{"cmd":"start","room":"1","duration_s":1e30,"needles":6}\n',
    b'{"cmd":"start","room":"1","duration_s":9223372036854775808,"needles":6}\n',
    b'{"cmd":"start","room":"1","duration_s":-9223372036854775809,"needles":6}\n',
    b'{"cmd":"start","room":"1","duration_s":600,"needles":1e30}\n',
    b'{"cmd":"start","room":"1","duration_s":NaN,"needles":6}\n',
    b'{"cmd":"start","room":"1","duration_s":Infinity,"needles":6}\n',
])
def test_absurd_numbers_are_bad_requests(daemon, raw):
    assert err_code(daemon.raw(raw)) == "bad-request", raw
    assert daemon.status("1")["state"] == "idle"
    still_answers(daemon)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 2**31, -(2**31) - 1])
def test_huge_integers_out_of_range(daemon, value):
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": value, "needles": 6})
    assert err_code(rep) == "out-of-range"
    rep = daemon.request({"cmd": "start", "room": "1", "duration_s": 60, "needles": value})
    assert err_code(rep) == "out-of-range"
    assert daemon.status("1")["state"] == "idle"
    still_answers(daemon)


def test_huge_integers_in_session_commands(daemon):
    daemon.start_session("1", 600, needles=6)
    for req in ({"cmd": "extend", "room": "1", "duration_s": 2**63 - 1},
                {"cmd": "extend", "room": "1", "duration_s": -(2**63)},
                {"cmd": "needles", "room": "1", "delta": 2**63 - 1},
                {"cmd": "needles", "room": "1", "delta": -(2**63)},
                {"cmd": "history", "limit": 2**63 - 1}):
        assert err_code(daemon.request(req)) == "out-of-range", req
    r = daemon.status("1")
    assert r["state"] == "running" and r["needles"] == 6
    assert r["duration_s"] == 600
    still_answers(daemon)


def test_many_requests_on_one_connection_in_one_write(daemon):
    reqs = b"".join(json.dumps({"id": i, "cmd": "version"}).encode() + b"\n" for i in range(50))
    with daemon.connect() as c:
        c.send_raw(reqs)
        ids = [c.recv()["id"] for _ in range(50)]
    assert ids == list(range(50))


def test_crlf_line_ending_or_blank_lines_do_not_kill(daemon):
    with daemon.connect() as c:
        c.send_raw(b"\n")
        c.send_raw(b'{"id":5,"cmd":"version"}\r\n')
        # Whatever it answers to the blank line, the version request gets its reply.
        rep = c.recv_until(lambda m: m.get("id") == 5, timeout=5)
        assert rep["ok"] is True
    still_answers(daemon)


def test_deeply_nested_json(daemon):
    line = b'{"cmd":"status","x":' + b"[" * 2000 + b"]" * 2000 + b"}\n"
    assert err_code(daemon.raw(line)) == "bad-request"
    still_answers(daemon)
