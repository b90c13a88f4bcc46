#!/usr/bin/env python3
"""Crash loop and corrupt state files (issue 6, SPEC S1 and §8).

crash_loop(cycles): cycles of load (random session commands on a persistent
connection, stimulation armed now and then so gates are on), kill -9 at a random
moment (sometimes during start-up), `acud --all-off`, restart. After each kill:
the state file parses as JSON; `--all-off` exits 0 and leaves every configured
output inactive in the sim state file. After each restart: every session
acknowledged before the kill is back unchanged (state, patient, needles, flags,
profile; ends_at within 1 s for running and due sessions, remaining_s within 1 s
for paused ones; a running session whose end passed while acud was down is due
with ends_at at that end), nothing is re-armed, no state file was set aside.
The one request in flight at the kill may or may not have been applied.

damaged_states(mode): a small example state file (one room with a running
session) truncated at every byte boundary ("truncate") or with every byte
replaced in five ways: a bit flip, NUL, '"', '}' and 0xff ("corrupt"): each must start the daemon cleanly (it answers status and
exits 0 on SIGTERM); a file that does not parse is kept aside as
state.json.corrupt-* with its bytes unchanged and the room is marked for
attention; outputs are inactive.

full_disk=True (root): state_dir is a 1 MiB tmpfs that is filled to the last
byte before some cycles' load and freed after some kills, so acud is killed,
restarted and run with a full disk too (SPEC S9): on top of the checks above,
no change that starts, resumes, extends or arms is acknowledged while the disk
is full, and what was acknowledged while full comes back after the restart.

Environment: ACU_CRASH_CYCLES (default 200), ACU_SEED (default random; printed),
ACU_DAMAGE_STRIDE (test every Nth byte position, default 1 = every one).
"""

import calendar
import glob
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acuproc  # noqa: E402

ROOMS = {"1": [("17", False), ("27", False)], "2": [("24", False)], "3": [("13", True)],
         "4": [("19", False)]}
OUTPUTS = {"17": 0, "27": 0, "22": 0, "23": 0, "5": 0, "24": 0, "16": 0, "13": 1, "19": 0,
           "26": 0}

CONF = """\
[daemon]
socket = run/acud.sock
state_dir = state
profiles_dir = profiles.d
log_level = notice

[gpio]
backend = sim
heartbeat = 26

[limits]
session_min = 1s
session_max = 60m

[alarm]
checkin_interval = 2s
escalate_after = 2s

[room 1]
gate = 17, 27
pulse = 22, 23
alarm = 5
interlock = !6

[room 2]
gate = 24
alarm = 16

[room 3]
gate = !13

[room 4]
gate = 19

[profile cont]
mode = continuous
frequency_hz = 20
"""


def wall(ts):
    """RFC 3339 (as acud writes it, UTC with Z) -> unix seconds, or None."""
    if ts is None:
        return None
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))


def snapshot(room):
    return {"state": room["state"], "patient": room["patient"], "needles": room["needles"],
            "flags": sorted(room["flags"]), "profile": room["profile"],
            "ends_at": wall(room["ends_at"]), "remaining_s": room["remaining_s"]}


def outputs_inactive(sim_state):
    levels = acuproc.read_sim_state(sim_state)
    return {k: v for k, v in levels.items() if k in OUTPUTS and v != OUTPUTS[k]}


def positive(req):
    """A change S9 refuses while changes cannot be saved."""
    return req["cmd"] in ("start", "resume", "extend") or \
        (req["cmd"] == "stim" and req.get("on"))


class CrashLoop:
    def __init__(self, cycles, seed, log=print, full_disk=False):
        self.cycles = cycles
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = log
        self.dir = acuproc.make_tmpdir("acucrash.")
        self.full_disk = full_disk
        self.full = False
        conf = CONF
        if full_disk:
            # The sim lines outside the tmpfs: a full disk is not a GPIO fault.
            conf = CONF.replace("backend = sim\n", "backend = sim\nsim_state = sim/gpio-sim.state\n")
            os.makedirs(os.path.join(self.dir, "sim"))
        self.sim_state = os.path.join(self.dir, "sim" if full_disk else "state", "gpio-sim.state")
        self.acud = acuproc.Acud(self.dir, conf)
        if full_disk:
            os.makedirs(self.acud.state_dir)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                            self.acud.state_dir], check=True, capture_output=True)
        self.expected = {}     # room -> snapshot acknowledged last
        self.pending = None    # (room, request, t_send) in flight at the kill
        self.problems = []
        self.stats = {"acked": 0, "in_flight_applied": 0, "in_flight_lost": 0,
                      "killed_in_startup": 0, "expired_while_down": 0, "gates_on_at_kill": 0,
                      "full_cycles": 0, "acked_while_full": 0, "refused_storage": 0}

    # -- the full disk -----------------------------------------------------------------
    def fill(self):
        path = os.path.join(self.acud.state_dir, "fill")
        with open(path, "ab", buffering=0) as f:
            for chunk in (1 << 16, 4096, 1):
                while True:
                    try:
                        f.write(b"\0" * chunk)
                    except OSError:
                        break
        self.full = True

    def unfill(self):
        try:
            os.unlink(os.path.join(self.acud.state_dir, "fill"))
        except FileNotFoundError:
            pass
        self.full = False

    def cleanup(self):
        if self.full_disk:
            subprocess.run(["umount", "-l", self.acud.state_dir], capture_output=True)

    def problem(self, cycle, msg):
        self.problems.append(f"cycle {cycle}: {msg}")
        self.log(f"crash_loop: PROBLEM cycle {cycle}: {msg}")

    # -- load ------------------------------------------------------------------------
    def request_for(self, rid):
        rng = self.rng
        exp = self.expected.get(rid, {"state": "idle", "needles": 0})
        st = exp["state"]
        u = rng.random()
        if st == "idle":
            dur = rng.choice([1, 2, 3, 60, 300, 600, 1200])
            req = {"cmd": "start", "room": rid, "duration_s": dur, "needles": rng.randint(1, 20),
                   "patient": f"C{rng.randrange(10**6)}"}
            if u < 0.5:
                req["profile"] = "cont"
                req["stim"] = True
            if rng.random() < 0.2:
                req["flags"] = ["bleeding-disorder"]
            return req
        if st == "running":
            return rng.choice([{"cmd": "pause", "room": rid}, {"cmd": "stop", "room": rid},
                               {"cmd": "extend", "room": rid, "duration_s": rng.randint(1, 120)},
                               {"cmd": "needles", "room": rid, "delta": rng.choice([1, 2, -1])},
                               {"cmd": "checkin", "room": rid},
                               {"cmd": "stim", "room": rid, "on": rng.random() < 0.5},
                               {"cmd": "flag", "room": rid, "flags": ["metal-implant"]}])
        if st == "paused":
            return rng.choice([{"cmd": "resume", "room": rid}, {"cmd": "stop", "room": rid},
                               {"cmd": "extend", "room": rid, "duration_s": 30}])
        return rng.choice([{"cmd": "finish", "room": rid, "removed": exp["needles"]},
                           {"cmd": "finish", "room": rid, "removed": exp["needles"]},
                           {"cmd": "extend", "room": rid, "duration_s": 60}])

    def load(self, conn, kill_at):
        """Commands until the killer strikes; returns the request in flight."""
        while True:
            rid = self.rng.choice(sorted(ROOMS))
            req = self.request_for(rid)
            t0 = time.time()
            self.pending = (rid, req, t0)
            try:
                rep = conn.request(req, timeout=5)
            except (EOFError, ConnectionError, OSError, TimeoutError, ValueError):
                return
            self.pending = None
            if self.full and rep.get("ok") and positive(req):
                self.problem(0, f"acknowledged while the disk is full: {req} -> {rep}")
            if self.full and not rep.get("ok") and rep["error"]["code"] == "storage":
                self.stats["refused_storage"] += 1
            if rep.get("ok") and "room" in rep:
                self.expected[rid] = snapshot(rep["room"])
                self.stats["acked"] += 1
                if self.full:
                    self.stats["acked_while_full"] += 1
            if time.monotonic() > kill_at + 2:
                return  # the killer is late; stop anyway

    # -- verification ----------------------------------------------------------------
    def matches(self, got, exp, now):
        """None if the restored room is the acknowledged one, else why not."""
        e = dict(exp)
        if e["state"] == "running" and e["ends_at"] is not None and e["ends_at"] <= now - 1:
            e["state"] = "due"  # its end passed while acud was down (or since)
        elif e["state"] == "running" and e["ends_at"] is not None and e["ends_at"] <= now + 1:
            if got["state"] == "due":
                e["state"] = "due"
        for k in ("state", "patient", "needles", "flags", "profile"):
            if got[k] != e[k]:
                return f"{k} {got[k]!r} != {e[k]!r}"
        if e["state"] in ("running", "due") and e["ends_at"] is not None:
            if got["ends_at"] is None or abs(got["ends_at"] - e["ends_at"]) > 1:
                return f"ends_at {got['ends_at']} != {e['ends_at']}"
        if e["state"] == "paused" and abs(got["remaining_s"] - e["remaining_s"]) > 1:
            return f"remaining_s {got['remaining_s']} != {e['remaining_s']}"
        return None

    def predicted(self, exp, req, t0):
        """What the in-flight request would have made of the room (loosely)."""
        p = dict(exp) if exp else {"state": "idle", "patient": None, "needles": 0, "flags": [],
                                   "profile": None, "ends_at": None, "remaining_s": 0}
        c = req["cmd"]
        if c == "start":
            p.update(state="running", patient=req["patient"], needles=req["needles"],
                     flags=sorted(req.get("flags", [])), profile=req.get("profile"),
                     ends_at=None)
        elif c == "pause":
            p.update(state="paused", ends_at=None)
        elif c == "resume":
            p.update(state="running", ends_at=None)
        elif c == "stop":
            p.update(state="due", ends_at=None)
        elif c == "finish":
            p = {"state": "idle", "patient": None, "needles": 0, "flags": [], "profile": None,
                 "ends_at": None, "remaining_s": 0}
        elif c == "extend":
            p.update(state="paused" if p["state"] == "paused" else "running", ends_at=None)
        elif c == "needles":
            p.update(needles=p["needles"] + req["delta"])
        elif c == "flag":
            p.update(flags=sorted(set(p["flags"]) | set(req["flags"])))
        return p

    def verify(self, cycle, conn):
        rep = conn.request({"cmd": "status"})
        now = time.time()
        got = {r["id"]: r for r in rep["rooms"]}
        for rid in sorted(ROOMS):
            g = snapshot(got[rid])
            if got[rid]["stim"]["armed"] or got[rid]["stim"]["on"]:
                self.problem(cycle, f"room {rid}: stimulation armed after a restart")
            exp = self.expected.get(rid)
            if exp is None:
                exp = {"state": "idle", "patient": None, "needles": 0, "flags": [],
                       "profile": None, "ends_at": None, "remaining_s": 0}
            why = self.matches(g, exp, now)
            if why and self.pending and self.pending[0] == rid:
                pred = self.predicted(exp, self.pending[1], self.pending[2])
                if all(g[k] == pred[k] for k in ("state", "patient", "needles", "flags",
                                                   "profile")) or \
                        (pred["state"] == "running" and g["state"] == "due"):
                    self.stats["in_flight_applied"] += 1
                    why = None
            elif not why and self.pending and self.pending[0] == rid:
                self.stats["in_flight_lost"] += 1
            if why:
                self.problem(cycle, f"room {rid}: restored {g} but acknowledged {exp} "
                                    f"({why}); in flight: {self.pending}")
            if exp["state"] == "running" and g["state"] == "due" and \
                    exp["ends_at"] is not None and exp["ends_at"] < now:
                self.stats["expired_while_down"] += 1
            self.expected[rid] = g
        self.pending = None

    # -- driver ----------------------------------------------------------------------
    def run(self):
        self.log(f"crash_loop: seed={self.seed} cycles={self.cycles} dir={self.dir}")
        t_start = time.monotonic()
        state_file = os.path.join(self.acud.state_dir, "state.json")
        for cycle in range(1, self.cycles + 1):
            if self.rng.random() < 0.08 and cycle > 1:
                # Killed during start-up, before or while the socket comes up.
                self.acud.starts += 1
                with open(self.acud.log_path, "ab") as logf:
                    self.acud.proc = subprocess.Popen(
                        self.acud.cmd("-f", "-c", self.acud.conf), stdin=subprocess.DEVNULL,
                        stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir)
                time.sleep(self.rng.random() * 0.03)
                self.acud.kill9()
                self.stats["killed_in_startup"] += 1
            else:
                self.acud.start()
                conn = self.acud.connect(timeout=10)
                if cycle > 1:
                    self.verify(cycle, conn)
                if self.full_disk and not self.full and self.rng.random() < 0.4:
                    self.fill()
                if self.full:
                    self.stats["full_cycles"] += 1
                kill_at = time.monotonic() + self.rng.random() * 0.25
                killer = threading.Timer(max(0.0, kill_at - time.monotonic()),
                                         lambda: os.kill(self.acud.pid, signal.SIGKILL))
                killer.start()
                self.load(conn, kill_at)
                killer.join()
                conn.close()
                self.acud.proc.wait()
            # After the kill: the state file parses, --all-off leaves outputs inactive.
            if os.path.exists(state_file):
                try:
                    with open(state_file) as f:
                        json.load(f)
                except ValueError as e:
                    self.problem(cycle, f"state.json does not parse after kill -9: {e}")
            levels = acuproc.read_sim_state(self.sim_state)
            if any(levels.get(k) != v for k, v in OUTPUTS.items() if k in levels):
                self.stats["gates_on_at_kill"] += 1
            rc, err = self.acud.all_off()
            if rc != 0:
                self.problem(cycle, f"acud --all-off exit {rc}: {err[-500:]}")
            if self.full and self.rng.random() < 0.5:
                self.unfill()  # otherwise restarted with the disk still full
            bad = outputs_inactive(self.sim_state)
            if bad:
                self.problem(cycle, f"outputs active after --all-off: {bad}")
            if self.rng.random() < 0.05:
                # Down for a while: short sessions end while acud is not running.
                time.sleep(1.2)
                self.stats["long_downtime"] = self.stats.get("long_downtime", 0) + 1
            aside = glob.glob(state_file + ".corrupt-*")
            if aside:
                self.problem(cycle, f"state file set aside as corrupt: {aside}")
                for a in aside:
                    os.unlink(a)
            if len(self.problems) > 20:
                break
        # A last start to verify the final kill, then a clean stop.
        self.unfill()
        self.acud.start()
        conn = self.acud.connect()
        self.verify(self.cycles + 1, conn)
        conn.close()
        rc = self.acud.stop()
        if rc != 0:
            self.problem(self.cycles + 1, f"exit status {rc} on SIGTERM")
        log = self.acud.log()
        for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
            if bad in log:
                i = log.index(bad)
                self.problem(0, f"daemon log has '{bad}': {log[max(0, i - 200):i + 1500]}")
        self.elapsed = time.monotonic() - t_start
        self.log(f"crash_loop: {self.cycles} cycles in {self.elapsed:.1f}s; {self.stats}")
        return self.problems


# --- damaged state files ------------------------------------------------------------

DAMAGE_CONF = """\
[daemon]
socket = run/acud.sock
state_dir = state
profiles_dir = profiles.d
log_level = notice

[gpio]
backend = sim

[limits]
session_min = 1s

[room 1]
gate = 17
alarm = 5

[profile cont]
mode = continuous
"""


def example_state():
    """A small, valid state file: one room, a running session with a profile, flags
    and an alarm."""
    d = acuproc.make_tmpdir("acuex.")
    try:
        a = acuproc.Acud(d, DAMAGE_CONF)
        a.start()
        c = a.connect()
        rep = c.request({"cmd": "start", "room": "1", "duration_s": 3600, "needles": 7,
                         "patient": "Z42", "profile": "cont", "flags": ["metal-implant"]})
        assert rep["ok"], rep
        c.close()
        assert a.stop() == 0
        with open(os.path.join(a.state_dir, "state.json"), "rb") as f:
            return f.read()
    finally:
        acuproc.rmtree(d)


def damaged_states(mode, stride=1, workers=4, log=print):
    """Starts acud once per damaged variant; returns (problems, variants, seconds)."""
    data = example_state()
    if mode == "truncate":
        variants = [(f"truncated to {n} of {len(data)} bytes", data[:n])
                    for n in range(0, len(data), stride)]
    else:
        variants = []
        for i in range(0, len(data), stride):
            # Every byte gets each damage: a bit flip, a NUL, a quote, a brace, 0xff.
            for v in sorted({data[i] ^ 0x01, 0, ord('"'), ord('}'), 0xff} - {data[i]}):
                variants.append((f"byte {i} {data[i]:#04x} -> {v:#04x}",
                                 data[:i] + bytes([v]) + data[i + 1:]))
    problems = []
    lock = threading.Lock()
    todo = list(variants)
    t0 = time.monotonic()

    def worker():
        d = acuproc.make_tmpdir("acudmg.")
        try:
            a = acuproc.Acud(d, DAMAGE_CONF)
            os.makedirs(a.state_dir, exist_ok=True)
            path = os.path.join(a.state_dir, "state.json")
            while True:
                with lock:
                    if not todo or len(problems) > 20:
                        return
                    what, blob = todo.pop()
                for p in glob.glob(path + "*"):
                    os.unlink(p)
                with open(path, "wb") as f:
                    f.write(blob)
                err = check_one(a, path, blob, what)
                if err:
                    with lock:
                        problems.append(err)
                        log(f"damaged_states: PROBLEM {err}")
        finally:
            acuproc.rmtree(d)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    log(f"damaged_states({mode}): {len(variants)} variants of a {len(data)}-byte state file "
        f"(every {stride} byte), {len(variants)} daemon starts in {secs:.1f}s, "
        f"{len(problems)} problems")
    return problems, len(variants), secs


def check_one(a, path, blob, what):
    try:
        valid = True
        try:
            json.loads(blob)
        except ValueError:
            valid = False
        try:
            a.start(timeout=10)
        except AssertionError as e:
            return f"{what}: acud did not start: {e}"
        c = a.connect()
        rep = c.request({"cmd": "status", "room": "1"})
        c.close()
        if rep.get("ok") is not True:
            return f"{what}: status failed: {rep}"
        room = rep["room"]
        aside = glob.glob(path + ".corrupt-*")
        if not valid:
            if len(aside) != 1:
                return f"{what}: not JSON, but {len(aside)} corrupt-* files kept aside"
            with open(aside[0], "rb") as f:
                if f.read() != blob:
                    return f"{what}: the file kept aside is not the damaged file"
        if aside and not room.get("attention"):
            return f"{what}: state kept aside but room 1 not marked for attention: {room}"
        if not aside and room["state"] not in ("running", "due", "paused", "idle"):
            return f"{what}: odd state {room['state']}"
        if room["stim"]["armed"] or room["stim"]["on"]:
            return f"{what}: stimulation armed after start-up"
        bad = {k: v for k, v in acuproc.read_sim_state(
            os.path.join(a.state_dir, "gpio-sim.state")).items() if k == "17" and v != 0}
        if bad:
            return f"{what}: outputs active: {bad}"
        rc = a.stop()
        if rc != 0:
            return f"{what}: exit status {rc} on SIGTERM:\n{a.log()[-1500:]}"
        log = a.log()
        for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
            if bad in log:
                i = log.index(bad)
                return f"{what}: daemon log has '{bad}': {log[max(0, i - 200):i + 1500]}"
        return None
    finally:
        if a.alive():
            a.kill9()


def main():
    cycles = int(os.environ.get("ACU_CRASH_CYCLES", "200"))
    seed = int(os.environ.get("ACU_SEED") or random.SystemRandom().randrange(1 << 32))
    stride = int(os.environ.get("ACU_DAMAGE_STRIDE", "1"))
    cl = CrashLoop(cycles, seed, log=lambda m: print(m, flush=True))
    problems = cl.run()
    if not problems:
        acuproc.rmtree(cl.dir)
    for mode in ("truncate", "corrupt"):
        p, _, _ = damaged_states(mode, stride, log=lambda m: print(m, flush=True))
        problems += p
    if problems:
        print(f"crash_loop: {len(problems)} problems (seed {seed})")
        return 1
    print("crash_loop: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
