"""The history (SPEC §8, S8): one file per UTC day under state_dir/history,
`[history] keep`, the legacy state_dir/history.jsonl, records written whole or not
at all on a full file system (bounded memory, the history-gap record), and
`history` queries that never stall the event loop however long the history.

The full-file-system tests mount a 1 MiB tmpfs as state_dir/history (root only;
skipped with the reason otherwise) and always unmount it. The helpers are here,
not in conftest.py: only this file uses them.
"""

import datetime
import json
import os
import select
import shutil
import subprocess
import time

import pytest

import acuproc
from conftest import ACUD, config_text, err_code

DAY = 86400
NS = 1_000_000_000


# --- helpers -------------------------------------------------------------------

# One worker for the file under make check's parallel run: the module's
# history of many day files is written once, not once per worker.
pytestmark = pytest.mark.xdist_group("history")


def hist_dir(d):
    return os.path.join(d.state_dir, "history")


def utc_date(ts_s):
    return datetime.datetime.fromtimestamp(ts_s, datetime.timezone.utc).date()


def day_file(date):
    return date.strftime("%Y-%m-%d") + ".jsonl"


def midday_ns(date):
    """12:00:00Z of a date, in ns."""
    t = datetime.datetime(date.year, date.month, date.day, 12, tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * NS


def away_from_midnight(margin=120):
    """Tests that name "today" need the UTC day not to change under them."""
    left = DAY - time.time() % DAY
    if left < margin:
        time.sleep(left + 1)


def rfc3339(ts_ns):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // NS))


def record_line(ts_ns, room, patient, kind="command"):
    """A record as acud writes one: compact JSON, ts and ts_ns last."""
    return json.dumps({"type": kind, "cmd": "start", "user": "gen", "patient": patient,
                       "ts": rfc3339(ts_ns), "ts_ns": ts_ns, "room": room},
                      separators=(",", ":"))


def plant(d, date, lines, extra=b""):
    os.makedirs(hist_dir(d), exist_ok=True)
    path = os.path.join(hist_dir(d), day_file(date))
    with open(path, "wb") as f:
        f.write("".join(line + "\n" for line in lines).encode() + extra)
    return path


def disk_records(d):
    """Every record on disk, in file and line order; asserts that every line of
    every day file is a whole JSON object and every file ends with a newline
    (nothing torn, nothing glued)."""
    out = []
    for name in sorted(os.listdir(hist_dir(d))):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(hist_dir(d), name), "rb") as f:
            data = f.read()
        assert data == b"" or data.endswith(b"\n"), f"{name}: ends in a torn record: {data[-200:]!r}"
        for n, line in enumerate(data.split(b"\n")[:-1], 1):
            try:
                rec = json.loads(line)
            except ValueError:
                raise AssertionError(f"{name}:{n}: not a whole record: {line[:300]!r}")
            assert isinstance(rec, dict), f"{name}:{n}: {line[:300]!r}"
            out.append(rec)
    return out


def started(d):
    """Starts d and waits for the writer thread's first pass, which removes the
    files older than keep: the reply to a change waits for what the writer was
    given before it (persist before acknowledge), that pass included. (A
    read-only command's reply does not wait: a refused pause, which is
    recorded, does.)"""
    d.start()
    d.request({"cmd": "pause", "room": "4"})


def history(d, **kw):
    return d.ok(dict({"cmd": "history", "limit": 1000}, **kw))["entries"]


def refusal(conn, tag, room="2"):
    """A refused start: one history record naming `tag` (S8), no state change."""
    rep = conn.request({"cmd": "start", "room": room, "duration_s": 60, "needles": 1,
                        "profile": tag})
    assert err_code(rep) == "unknown-profile", rep
    return rep


def tag_of(rec):
    """The FULLnnnn tag of a refusal record made by refusal()."""
    msg = rec.get("message") or ""
    return msg.split("'")[1] if rec.get("type") == "refusal" and "'" in msg else None


def readable(conn):
    """Whether a reply is waiting on the connection, without reading it."""
    return bool(conn.buf) or bool(select.select([conn.sock], [], [], 0)[0])


def check_config(path):
    p = subprocess.run([ACUD, "--check-config", "-c", path], capture_output=True, text=True,
                       timeout=10)
    return p.returncode, p.stdout + p.stderr


# --- day files --------------------------------------------------------------------

def test_records_go_to_their_utc_day_file(daemon):
    away_from_midnight()
    daemon.start_session("1", 300, needles=2, patient="DAY1")
    daemon.ok({"cmd": "stop", "room": "1"})
    daemon.ok({"cmd": "finish", "room": "1", "removed": 2})
    names = os.listdir(hist_dir(daemon))
    assert names == [day_file(utc_date(time.time()))], names
    assert not os.path.exists(os.path.join(daemon.state_dir, "history.jsonl"))
    with open(os.path.join(hist_dir(daemon), names[0])) as f:
        recs = [json.loads(line) for line in f]
    assert recs and any("DAY1" in json.dumps(r) for r in recs)
    for r in recs:
        assert day_file(utc_date(r["ts_ns"] / NS)) == names[0], r
        assert r["ts"] == rfc3339(r["ts_ns"]), r
    # The query reads what is on disk, in time order.
    entries = history(daemon)
    assert entries == recs


def test_torn_last_line_is_never_glued_to_the_next_record(make_daemon):
    d = make_daemon()
    d.start_session("1", 300, needles=2, patient="TORN1")
    d.kill9()
    name = sorted(os.listdir(hist_dir(d)))[-1]
    torn = b'{"type":"command","cmd":"st'  # a write cut by a power loss
    with open(os.path.join(hist_dir(d), name), "ab") as f:
        f.write(torn)
    d.restart()
    d.ok({"cmd": "stop", "room": "1"})
    with open(os.path.join(hist_dir(d), name), "rb") as f:
        lines = f.read().split(b"\n")
    assert torn in lines, "the damaged line was changed or glued to another"
    for line in lines[:-1]:
        if line != torn:
            json.loads(line)
    entries = history(d, room="1")
    assert any(e.get("cmd") == "stop" for e in entries), entries


# --- [history] keep -------------------------------------------------------------------

def test_keep_default_removes_day_files_older_than_a_year(make_daemon):
    away_from_midnight()
    d = make_daemon(start=False)
    today = utc_date(time.time())
    old = [today - datetime.timedelta(days=n) for n in (400, 366)]
    kept = [today - datetime.timedelta(days=n) for n in (365, 30, 1)]
    for day in old + kept:
        plant(d, day, [record_line(midday_ns(day), "1", f"K{day:%Y%m%d}")])
    with open(os.path.join(hist_dir(d), "notes.txt"), "w") as f:
        f.write("not a day file\n")
    started(d)
    names = set(os.listdir(hist_dir(d)))
    for day in old:
        assert day_file(day) not in names, f"{day_file(day)} is older than keep (365 days)"
    for day in kept:
        assert day_file(day) in names, f"{day_file(day)} is within keep"
    assert "notes.txt" in names
    entries = history(d, room="1")
    assert [e["patient"] for e in entries] == [f"K{day:%Y%m%d}" for day in kept]


def test_keep_from_config_and_from_a_reload(make_daemon):
    away_from_midnight()
    d = make_daemon(start=False, extra="[history]\nkeep = 30d\n")
    today = utc_date(time.time())
    days = {n: today - datetime.timedelta(days=n) for n in (31, 30, 3, 1)}
    for n, day in days.items():
        plant(d, day, [record_line(midday_ns(day), "1", f"R{n}")])
    started(d)
    names = set(os.listdir(hist_dir(d)))
    assert day_file(days[31]) not in names and day_file(days[30]) in names, names
    # A reload with a shorter keep prunes before its reply, with no record
    # written since (on the writer thread).
    d.write_config(config_text(extra="[history]\nkeep = 2d\n"))
    d.ok({"cmd": "reload"})
    names = set(os.listdir(hist_dir(d)))
    assert day_file(days[30]) not in names and day_file(days[3]) not in names, names
    assert day_file(days[1]) in names, names
    assert [e["patient"] for e in history(d, room="1")] == ["R1"]


@pytest.mark.parametrize("value, fragment", [
    ("0d", "out of range"),
    ("12h", "out of range"),
    ("36501d", "out of range"),
    ("soon", "bad duration"),
    ("1.5d", "bad duration"),
])
def test_keep_bad_values_name_file_and_line(tmpdir_short, value, fragment):
    path = os.path.join(tmpdir_short, "acud.conf")
    os.makedirs(os.path.join(tmpdir_short, "profiles.d"))
    text = config_text(extra=f"[history]\nkeep = {value}\n")
    with open(path, "w") as f:
        f.write(text)
    line = text.split("\n").index(f"keep = {value}") + 1
    rc, out = check_config(path)
    assert rc == 1, out
    assert f"{path}:{line}: keep: " in out and fragment in out, out


@pytest.mark.parametrize("value", ["365d", "1d", "48h", "86400", "3650d"])
def test_keep_good_values(tmpdir_short, value):
    path = os.path.join(tmpdir_short, "acud.conf")
    os.makedirs(os.path.join(tmpdir_short, "profiles.d"))
    with open(path, "w") as f:
        f.write(config_text(extra=f"[history]\nkeep = {value}\n"))
    rc, out = check_config(path)
    assert rc == 0, out


# --- the legacy history.jsonl ------------------------------------------------------------

def test_legacy_history_jsonl_is_still_queried_and_never_written(make_daemon):
    d = make_daemon(start=False)
    os.makedirs(d.state_dir)
    base = (int(time.time()) - 3 * DAY) * NS
    legacy = os.path.join(d.state_dir, "history.jsonl")
    old = [record_line(base + i * NS, "1" if i % 2 == 0 else "2", f"L{i}") for i in range(40)]
    content = ("\n".join(old[:20]) + "\n{damaged\n" + "\n".join(old[20:]) + "\n").encode()
    with open(legacy, "wb") as f:
        f.write(content)
    d.start()
    d.start_session("1", 300, needles=1, patient="NEW1")
    d.ok({"cmd": "stop", "room": "1"})
    d.ok({"cmd": "finish", "room": "1", "removed": 1})
    entries = history(d, room="1")
    pats = [e.get("patient") for e in entries if e.get("patient")]
    # The legacy records come first, oldest first, then today's.
    assert pats[:20] == [f"L{i}" for i in range(0, 40, 2)], pats
    assert "NEW1" in pats[20:], pats
    ts = [e["ts_ns"] for e in entries]
    assert ts == sorted(ts)
    assert len(history(d)) > 40
    # since after the legacy records: they are skipped.
    assert all(not e.get("patient", "").startswith("L")
               for e in history(d, since=int(time.time()) - 3600))
    with open(legacy, "rb") as f:
        assert f.read() == content, "the legacy file was written to"
    # Removed once its last change is older than keep.
    d.stop()
    past = time.time() - 400 * DAY
    os.utime(legacy, (past, past))
    started(d)
    assert not os.path.exists(legacy)
    assert not any(e.get("patient", "").startswith("L") for e in history(d))


# --- a full file system -------------------------------------------------------------------

@pytest.fixture
def small_fs():
    """mount(path): a 1 MiB tmpfs on path (as root; skips otherwise), unmounted at
    teardown. Ask for it before make_daemon, so that the daemon is stopped first."""
    mounted = []

    def mount(path, size="1m"):
        if os.geteuid() != 0:
            pytest.skip("needs root to mount a small tmpfs and fill it")
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750",
                            "acud-test-full", path], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs on {path}: {p.stderr.strip()}")
        mounted.append(path)

    yield mount
    for path in mounted:
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def fill(path):
    """Fills the file system of path to the last byte."""
    subprocess.run(["dd", "if=/dev/zero", f"of={path}/fill", "bs=4k"], capture_output=True)
    subprocess.run(["dd", "if=/dev/zero", f"of={path}/fill-last", "bs=1"], capture_output=True)
    assert os.statvfs(path).f_bavail == 0, "the file system is not full"


def unfill(path):
    os.unlink(os.path.join(path, "fill"))
    os.unlink(os.path.join(path, "fill-last"))


def full_daemon(small_fs, make_daemon):
    d = make_daemon(start=False)
    small_fs(hist_dir(d))
    d.start()
    # Today's file exists and has records before the disk fills.
    d.start_session("1", 300, needles=1, patient="BEFORE")
    return d


def test_full_disk_records_wait_whole_and_are_written_when_space_returns(small_fs, make_daemon):
    away_from_midnight(300)
    d = full_daemon(small_fs, make_daemon)
    fill(hist_dir(d))
    n = 100  # ~20 KiB of records: more than a page's slack, less than the cap
    with d.connect() as c:
        for i in range(n):
            refusal(c, f"FULL{i:04d}")
    # Commands go on; nothing torn or glued is on disk (the last page's slack
    # took some records whole, the one that straddled it was cut back).
    assert d.status("1")["state"] == "running"
    on_disk = [tag_of(r) for r in disk_records(d) if tag_of(r)]
    assert on_disk == [f"FULL{i:04d}" for i in range(len(on_disk))]
    assert len(on_disk) < n, "the file system was not full"
    assert "records wait in memory" in d.stderr()
    unfill(hist_dir(d))
    # With no further command, a retry (the storage alarm's, or the history's
    # own while records wait) writes them. Read once they are: the writer may
    # be appending while the disk is polled.
    deadline = time.monotonic() + 15
    while "written again; nothing was lost" not in d.stderr() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [tag_of(r) for r in disk_records(d) if tag_of(r)] == [f"FULL{i:04d}" for i in range(n)]
    with d.connect() as c:
        refusal(c, "AFTER")
    recs = disk_records(d)
    tags = [tag_of(r) for r in recs if tag_of(r)]
    assert tags == [f"FULL{i:04d}" for i in range(n)] + ["AFTER"], tags
    assert not [r for r in recs if r.get("type") == "history-gap"]
    assert "written again; nothing was lost" in d.stderr()
    # And the query finds them, in order.
    got = [tag_of(e) for e in history(d, room="2") if tag_of(e)]
    assert got == tags


def test_full_disk_beyond_the_cap_drops_and_counts_in_a_gap_record(small_fs, make_daemon):
    away_from_midnight(300)
    d = full_daemon(small_fs, make_daemon)
    fill(hist_dir(d))
    n = 2000  # ~450 KiB of records: past the 256 KiB held in memory
    with d.connect() as c:
        for start in range(0, n, 100):
            for i in range(start, start + 100):
                c.send({"cmd": "start", "room": "2", "duration_s": 60, "needles": 1,
                        "profile": f"FULL{i:04d}"})
            for i in range(start, start + 100):
                assert err_code(c.recv(30)) == "unknown-profile"
    assert "further records are dropped and counted" in d.stderr()
    unfill(hist_dir(d))
    with d.connect() as c:
        refusal(c, "AFTER")
    recs = disk_records(d)
    gaps = [i for i, r in enumerate(recs) if r.get("type") == "history-gap"]
    assert len(gaps) == 1, [recs[i] for i in gaps]
    gap = recs[gaps[0]]
    tagged = [(i, tag_of(r)) for i, r in enumerate(recs) if tag_of(r)]
    kept = [t for _, t in tagged if t != "AFTER"]
    # The oldest records were kept whole, in order; the rest are counted.
    assert kept == [f"FULL{i:04d}" for i in range(len(kept))]
    assert 0 < len(kept) < n
    assert gap["dropped"] == n - len(kept), (gap, len(kept))
    # The gap stands where the lost records were: after the kept ones, before AFTER.
    assert max(i for i, t in tagged if t != "AFTER") < gaps[0] < [i for i, t in tagged
                                                                   if t == "AFTER"][0]
    assert isinstance(gap["ts_ns"], int) and gap["ts"] == rfc3339(gap["ts_ns"])
    assert gap["from"] <= gap["to"] == gap["ts"]
    assert "records were lost" in d.stderr()
    # A room's history shows the gap too: the lost records may have been its.
    assert any(e.get("type") == "history-gap" for e in history(d, room="1"))


# --- queries over a long history --------------------------------------------------------

PER_DAY = 1500
# make check: two months of day files (the loop must not wait for them either);
# `make stress` (CI) sets ACU_HISTORY_DAYS=365 for the year the issue measures,
# make check-arch fewer (under qemu-user a year takes over 120 s a query).
DAYS = int(os.environ.get("ACU_HISTORY_DAYS", "60"))


@pytest.fixture(scope="module")
def year_of_history():
    """A year of history written directly as files: DAYS day files (the days
    before today) of PER_DAY records each, rooms 1-4 in turn, one damaged line
    a week. Returns (directory, the records as (ts_ns, room, patient) in
    order). Daemons get hard links to the files."""
    away_from_midnight(600)
    top = acuproc.make_tmpdir("acuyear.")
    today = utc_date(time.time())
    recs = []
    for back in range(DAYS, 0, -1):
        day = today - datetime.timedelta(days=back)
        t0 = midday_ns(day) - 12 * 3600 * NS
        lines = []
        for i in range(PER_DAY):
            ts = t0 + i * (DAY * NS // PER_DAY)
            room = "1234"[i % 4]
            pat = f"Y{back}-{i}"
            lines.append(record_line(ts, room, pat))
            recs.append((ts, room, pat))
        damage = b'{"type":"command","ro\n' if back % 7 == 0 else b""
        with open(os.path.join(top, day_file(day)), "wb") as f:
            f.write(("\n".join(lines) + "\n").encode() + damage)
    yield top, recs
    shutil.rmtree(top, ignore_errors=True)


def year_daemon(make_daemon, year_of_history):
    top, _ = year_of_history
    d = make_daemon(start=False)
    os.makedirs(hist_dir(d))
    for name in os.listdir(top):
        os.link(os.path.join(top, name), os.path.join(hist_dir(d), name))
    d.start()
    return d


def slow_query(conn, ident="slow"):
    """The slowest query over the year: a room with no records whose id is in
    every record all the same (as the user, "gen"), so every line of every
    file is read and parsed."""
    conn.send({"id": ident, "cmd": "history", "room": "gen", "limit": 1000})


def test_long_query_does_not_stall_other_clients(make_daemon, year_of_history):
    d = year_daemon(make_daemon, year_of_history)
    with d.connect() as slow, d.connect() as other:
        slow_query(slow)
        # Answered while the query runs: the loop is not waiting for it.
        for i in range(3):
            rep = other.request({"id": i, "cmd": "status"})
            assert rep["ok"] is True and rep["id"] == i
            assert not readable(slow), "the history reply came before a later status"
        rep = slow.recv(120)
        assert rep == {"id": "slow", "ok": True, "entries": []}


def test_connection_keeps_its_order_behind_a_deferred_reply(make_daemon, year_of_history):
    d = year_daemon(make_daemon, year_of_history)
    with d.connect() as c:
        # Sent together: the status waits behind the history on this connection.
        c.send_raw((json.dumps({"id": "h", "cmd": "history", "room": "gen"}) + "\n" +
                    json.dumps({"id": "s", "cmd": "status", "room": "1"}) + "\n" +
                    json.dumps({"id": "v", "cmd": "version"}) + "\n").encode())
        assert [c.recv(120)["id"] for _ in range(3)] == ["h", "s", "v"]


def test_client_gone_while_its_query_runs(make_daemon, year_of_history):
    d = year_daemon(make_daemon, year_of_history)
    for _ in range(3):
        c = d.connect()
        slow_query(c)
        c.close()
    assert d.status("2")["state"] == "idle"
    # Queries run one after another: this one ends after the abandoned ones.
    with d.connect() as c:
        slow_query(c, "last")
        assert c.recv(120) == {"id": "last", "ok": True, "entries": []}
    assert d.alive()


def test_shutdown_while_a_query_runs(make_daemon, year_of_history):
    d = year_daemon(make_daemon, year_of_history)
    with d.connect() as c:
        slow_query(c)
        time.sleep(0.05)  # the query under way (an earlier one would be fine too)
        assert d.stop(10) == 0
        try:
            rep = c.recv(5)
        except (EOFError, ConnectionError):
            rep = None
        # An answer (an error) or a closed connection, never a hang.
        assert rep is None or (rep["id"] == "slow" and err_code(rep) == "internal"), rep


def test_query_semantics_across_day_files(make_daemon, year_of_history):
    _, recs = year_of_history
    d = year_daemon(make_daemon, year_of_history)

    def pats(entries):
        return [e["patient"] for e in entries]

    # Unfiltered: the newest 100, in time order.
    got = d.ok({"cmd": "history"})["entries"]
    assert pats(got) == [p for _, _, p in recs[-100:]]
    # A room over several files: its newest 1000.
    want = [p for _, r, p in recs if r == "3"][-1000:]
    assert pats(history(d, room="3")) == want
    # since: only what is at or after it, across the files it spans.
    since_s = (recs[-1][0] // NS) - 10 * DAY
    want = [p for t, r, p in recs if r == "2" and t >= since_s * NS][-1000:]
    got = history(d, room="2", since=since_s)
    assert pats(got) == want
    assert all(e["ts_ns"] >= since_s * NS for e in got)
    ts = [e["ts_ns"] for e in got]
    assert ts == sorted(ts)
    # Nothing matches: every file read, the damaged lines skipped.
    assert history(d, room="Z9") == []
    assert d.request({"cmd": "history", "room": "gen"}, 120)["entries"] == []


def test_query_times_on_a_year_of_history(make_daemon, year_of_history, record_property):
    """Reports (does not assert) the wall time of `acuctl history --since 1h`,
    of an unfiltered `acuctl history`, of a room's query that reads every file,
    and of the slowest query (every line parsed; on the socket, as it may take
    longer than acuctl waits under a sanitizer)."""
    d = year_daemon(make_daemon, year_of_history)
    d.start_session("1", 300, needles=1, patient="NOW1")
    times = {}
    for name, args in (("acuctl history --since 1h", ("history", "--since", "1h")),
                       ("acuctl history", ("history",)),
                       ("acuctl history --room Z9 --limit 1000 (every file)",
                        ("history", "--room", "Z9", "--limit", "1000"))):
        t0 = time.monotonic()
        rc, out, err = d.acuctl(*args, json=True, timeout=120)
        times[name] = time.monotonic() - t0
        assert rc == 0, err
        json.loads(out)
    with d.connect() as c:
        t0 = time.monotonic()
        slow_query(c)
        assert c.recv(300)["entries"] == []
        times["history room gen (every line parsed)"] = time.monotonic() - t0
    lines = len(year_of_history[1])
    for name, t in times.items():
        record_property(name, f"{t:.3f}s")
        print(f"\n  {name}: {t * 1000:.0f} ms over {DAYS} day files, {lines} records")
