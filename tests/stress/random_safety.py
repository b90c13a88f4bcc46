#!/usr/bin/env python3
"""Randomized safety run (issue 6): a seeded generator drives the real acud on the
simulated GPIO backend with random sequences of every session command, flags,
stimulation on/off, interlock changes (sim-input), interlock blips (trip and
clear in one write), unreadable interlocks, GPIO write failures (the sim state
file on a small tmpfs, filled for one step; as root), reloads that change the
[safety] policies or turn an armed profile into one a room cannot run, and
short sessions that expire.

After every step it reads the status and then the sim state file: a room that the
status shows blocked by any condition of rule S2 (not running, not armed, a hard
flag, a soft flag its policy refuses, interlock tripped) must have every gate
inactive in the file, and no gate may be active on a channel the session's profile
does not drive. At the end it checks the sim trace: every interval in which a gate
was active must lie inside an "allowed window" reconstructed from the command log
with monotonic timestamps: a window opens when an arming request (stim on, start
--stim) is sent and it succeeds, and closes at the first reply after it that shows
the room blocked, at the reply of a stop/pause/stim off/finish or of a flag or a
reload that refuses the patient's flags, shortly after an interlock trip is sent,
or shortly after the latest possible end of the session, at the reply of an
interlock trip or blip, and by the end of a step in which a write failed for
the room (S7: no gate while a GPIO fault is pending). While any GPIO fault is
pending the heartbeat line must not toggle. Within a window the gate
also follows the profile: not before delay_s, only in the on phases of an
intermittent pattern, only on the profile's channels, and no more stimulation per
channel and session than min(duration_s, stim_max). Pulse lines pulse only while
their channel's gate is on.

Environment: ACU_RANDOM_STEPS (default 3000), ACU_SEED (default random; printed),
ACU_RANDOM_FAULTS=0 leaves out the write failures (they need root for the tmpfs),
ACU_TOL (seconds of timer lateness allowed, default 0.15; raise under valgrind),
ACU_KEEP=1 keeps the scratch directory. Run directly or through pytest
(tests/blackbox/test_random_safety.py). The command sequence depends only on the
seed, so a failure replays with the printed seed (timing may still differ).
"""

import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acuproc  # noqa: E402

NS = 1_000_000_000
HARD = ("pacemaker", "icd", "implanted-device")
SOFT = ("pregnancy", "epilepsy", "heart-disease", "bleeding-disorder", "metal-implant")

# Room wiring: (line, active_low). Room 3 mixes polarities.
ROOMS = {
    "1": {"gates": [("17", False), ("27", False)], "pulses": [("22", False), ("23", False)],
          "alarm": "5", "interlock": ("6", True)},
    "2": {"gates": [("24", False)], "pulses": [], "alarm": "16", "interlock": ("7", False)},
    "3": {"gates": [("13", True), ("14", False)], "pulses": [("12", True), ("15", False)],
          "alarm": None, "interlock": ("8", False)},
    "4": {"gates": [("19", False)], "pulses": [], "alarm": None, "interlock": None},
}
ROOM_IDS = sorted(ROOMS)
STIM_MAX = 8

PROFILES = {
    "cont": dict(mode="continuous", frequency_hz=2, duration_s=3),
    "long": dict(mode="continuous", frequency_hz=5),
    "dd": dict(mode="dense-disperse", frequency_hz=2, alt_frequency_hz=100, switch_s=1,
               duration_s=5),
    "inter": dict(mode="intermittent", frequency_hz=10, on_s=1, off_s=1, pulse_width_us=500,
                  duration_s=6),
    "delayed": dict(mode="continuous", frequency_hz=2, delay_s=1, duration_s=2),
    "ch2": dict(mode="continuous", frequency_hz=2, channels="2", duration_s=4),
    "safe": dict(mode="intermittent", frequency_hz=2, on_s=2, off_s=1, pregnancy_safe="yes"),
}
PROFILE_NAMES = sorted(PROFILES)

POLICIES = {
    "A": {"pregnancy": "refuse", "epilepsy": "warn", "heart-disease": "refuse",
          "bleeding-disorder": "warn", "metal-implant": "warn"},
    "B": {"pregnancy": "refuse", "epilepsy": "refuse", "heart-disease": "refuse",
          "bleeding-disorder": "warn", "metal-implant": "refuse"},
}


# Variant D: policies of A, and profile "cont" turned dense-disperse, which the
# rooms without pulse lines (2 and 4) cannot run: a reload disarms them there.
VARIANT_MODES = {"D": {"cont": "dense-disperse"}}
HEARTBEAT = "26"
SIMFS = "simfs"


def profile_of(variant, name):
    p = dict(PROFILES.get(name) or {})
    if name in VARIANT_MODES.get(variant, {}):
        p["mode"] = VARIANT_MODES[variant][name]
    return p


def fits(variant, pname, rid):
    """Whether room rid can run the profile (SPEC §3: dense-disperse needs pulse lines)."""
    p = profile_of(variant, pname)
    return not (p.get("mode") == "dense-disperse" and not ROOMS[rid]["pulses"])


def config_text(variant, simfs=False):
    out = ["[daemon]", "socket = run/acud.sock", "state_dir = state",
           "profiles_dir = profiles.d", "log_level = info", "",
           "[gpio]", "backend = sim", "sim_trace = state/gpio.trace", f"heartbeat = {HEARTBEAT}",
           "heartbeat_hz = 10"]
    if simfs:
        out.append(f"sim_state = {SIMFS}/gpio-sim.state")
    out += ["",
           "[limits]", "session_min = 1s", "session_max = 10m", f"stim_max = {STIM_MAX}s", "",
           "[alarm]", "escalate_after = 2s", "checkin_interval = 3s", "", "[safety]"]
    pol = POLICIES["A" if variant in "CD" else variant]
    out += [f"{k} = {v}" for k, v in pol.items()]
    if variant == "C":
        out.append("bogus-key = 1")  # a broken config: reload must refuse it
    out.append("")
    for rid in ROOM_IDS:
        r = ROOMS[rid]
        out.append(f"[room {rid}]")
        out.append("gate = " + ", ".join(("!" if lo else "") + l for l, lo in r["gates"]))
        if r["pulses"]:
            out.append("pulse = " + ", ".join(("!" if lo else "") + l for l, lo in r["pulses"]))
        if r["alarm"]:
            out.append(f"alarm = {r['alarm']}")
        if r["interlock"]:
            l, lo = r["interlock"]
            out.append(f"interlock = {'!' if lo else ''}{l}")
        out.append("")
    for name in PROFILE_NAMES:
        out.append(f"[profile {name}]")
        out += [f"{k} = {v}" for k, v in profile_of(variant, name).items()]
        out.append("")
    return "\n".join(out) + "\n"


def profile_channels(pname, rid):
    n = len(ROOMS[rid]["gates"])
    p = PROFILES.get(pname) or {}
    if "channels" in p:
        return {int(c) for c in str(p["channels"]).split(",")}
    return set(range(1, n + 1))


def budget_s(pname):
    d = (PROFILES.get(pname) or {}).get("duration_s")
    return min(d, STIM_MAX) if d else STIM_MAX


ANY_KINDS = [("start", 8), ("stim_on", 8), ("stim_off", 4), ("pause", 4), ("resume", 4),
             ("stop", 4), ("extend", 4), ("finish", 4), ("checkin", 2), ("needles", 2),
             ("flag", 4), ("silence", 2), ("interlock", 5), ("reload", 3), ("sleep", 3),
             ("history", 1), ("junk", 2), ("blip", 3), ("unreadable", 1), ("writefail", 2)]
STATE_KINDS = {
    "idle": [("start", 10), ("interlock", 1), ("sleep", 1)],
    "running": [("stim_on", 10), ("sleep", 2), ("flag", 1), ("interlock", 1), ("pause", 1),
                ("stop", 1), ("extend", 1), ("reload", 1)],
    "running-armed": [("sleep", 8), ("stim_on", 1), ("stim_off", 2), ("flag", 2),
                      ("interlock", 3), ("pause", 2), ("stop", 2), ("extend", 2), ("checkin", 1),
                      ("needles", 1), ("reload", 3), ("silence", 1), ("blip", 2),
                      ("writefail", 1), ("unreadable", 1)],
    "running-blocked": [("interlock", 3), ("stop", 3), ("pause", 1), ("sleep", 2), ("reload", 4),
                        ("stim_on", 1), ("finish", 1)],
    "paused": [("resume", 6), ("stop", 3), ("stim_on", 1), ("flag", 1), ("extend", 1),
               ("sleep", 1)],
    "due": [("finish", 8), ("extend", 2), ("silence", 1), ("stim_on", 1)],
}


class StallMonitor(threading.Thread):
    """How late a 5 ms sleep wakes, all through the run: a shared machine can stall
    every process for longer than the timer tolerance, and a gate that goes off
    late because nothing on the machine ran is lateness, not a safety fault."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stalls = []  # (start ns, lateness ns), lateness over 5 ms
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic_ns()
            time.sleep(0.005)
            late = time.monotonic_ns() - t0 - 5_000_000
            if late > 5_000_000:
                self.stalls.append((t0, late))

    def worst(self, a, b):
        """The longest stall overlapping [a, b] (ns)."""
        return max((late for t, late in list(self.stalls) if t <= b and t + late >= a),
                   default=0)


class RoomModel:
    def __init__(self, rid):
        self.rid = rid
        self.state = "idle"
        self.flags = set()
        self.profile = None
        self.needles = 0
        self.armed = False
        self.session = 0
        self.end_hi = None        # latest possible monotonic end while running (ns)
        self.remaining_hi = None  # while paused
        self.tripped = False      # our model of the interlock input
        self.faulted = False      # a GPIO fault is pending (S7), until reload
        self.events = []          # ("arm", t, tr, profile, session) | ("block", t, why) | ("end", t, end_hi)


class Run:
    def __init__(self, steps, seed, tol, log=print, workdir=None):
        self.steps = steps
        self.seed = seed
        self.rng = random.Random(seed)
        self.tol = int(tol * NS)
        self.monitor = StallMonitor()
        self.log = log
        self.dir = workdir or acuproc.make_tmpdir("acurand.")
        # Write failures: the sim state file on a tmpfs of its own, filled for
        # one step. Mounting needs root.
        self.faults = os.environ.get("ACU_RANDOM_FAULTS", "1") != "0" and os.geteuid() == 0
        self.simfs = os.path.join(self.dir, SIMFS)
        self.variant = "A"
        self.acud = acuproc.Acud(self.dir, self.config("A"))
        self.sim_state = (os.path.join(self.simfs, "gpio-sim.state") if self.faults else
                          os.path.join(self.acud.state_dir, "gpio-sim.state"))
        self.fault_periods = []   # [start ns, end ns or None]: a GPIO fault pending somewhere
        self.unreadable = set()   # rooms whose interlock input reads as an error now
        self.rooms = {rid: RoomModel(rid) for rid in ROOM_IDS}
        self.policy = dict(POLICIES["A"])
        self.violations = []
        self.counts = {}
        self.outcomes = {}
        self.slept = 0.0
        self.step_no = 0
        self.t_begin = None

    def config(self, variant):
        return config_text(variant, simfs=self.faults)

    def mount_simfs(self):
        os.makedirs(self.simfs, exist_ok=True)
        rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs",
                             self.simfs], capture_output=True)
        if rc.returncode != 0:
            self.log(f"random_safety: no tmpfs ({rc.stderr.decode().strip()}): "
                     "no write failures in this run")
            self.faults = False
            self.sim_state = os.path.join(self.acud.state_dir, "gpio-sim.state")
            self.acud.write_config(self.config(self.variant))

    def umount_simfs(self):
        if self.faults:
            subprocess.run(["umount", "-l", self.simfs], capture_output=True)

    def fill_simfs(self):
        fd = os.open(os.path.join(self.simfs, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    def empty_simfs(self):
        try:
            os.remove(os.path.join(self.simfs, "filler"))
        except FileNotFoundError:
            pass

    def fault_begins(self, r, t, why):
        """S7: from t no gate of r may be on, nor any heartbeat, until a reload."""
        r.events.append(("block", t, why))
        if not r.faulted:
            r.faulted = True
            if not any(b is None for a, b in self.fault_periods):
                self.fault_periods.append([t, None])

    # -- model --------------------------------------------------------------------
    def refused(self, flags, pname, policy=None):
        policy = policy or self.policy
        safe = (PROFILES.get(pname) or {}).get("pregnancy_safe") == "yes"
        for f in flags:
            if f in HARD:
                return f
            if f in SOFT:
                if f == "pregnancy" and safe:
                    continue
                if policy.get(f) != "warn":
                    return f
        return None

    def blocked(self, r, obj):
        """Why S2 forbids every gate of this room now (from a room object), or None."""
        if obj["state"] != "running":
            return f"state {obj['state']}"
        if not obj["stim"]["armed"]:
            return "not armed"
        f = self.refused(obj.get("flags") or [], obj.get("profile"))
        if f:
            return f"flag {f}"
        if r.tripped:
            return "interlock tripped"
        if r.faulted or any(a.get("kind") == "gpio-fault" for a in obj.get("alarms") or []):
            return "gpio fault pending"
        if obj.get("profile") and not fits(self.variant, obj["profile"], r.rid):
            return f"profile {obj['profile']} unsupported here"
        return None

    def observe(self, obj, t, what):
        r = self.rooms[obj["id"]]
        r.state = obj["state"]
        r.flags = set(obj.get("flags") or [])
        r.profile = obj.get("profile")
        r.needles = obj.get("needles") or 0
        r.armed = bool(obj["stim"]["armed"])
        why = self.blocked(r, obj)
        if why:
            r.events.append(("block", t, f"{what}: {why}"))
        return why

    def violation(self, msg):
        full = f"step {self.step_no}: {msg}"
        self.violations.append(full)
        self.log(f"random_safety: VIOLATION {full}")

    # -- per-step check: status, then the sim state file ---------------------------
    def check_now(self, conn):
        rep, t0, t1 = conn.timed({"cmd": "status"})
        if rep.get("ok") is not True:
            self.violation(f"status failed: {rep}")
            return
        levels = acuproc.read_sim_state(self.sim_state)
        seen = set()
        for obj in rep["rooms"]:
            seen.add(obj["id"])
            r = self.rooms[obj["id"]]
            why = self.observe(obj, t1, "status")
            chans = profile_channels(obj.get("profile"), r.rid)
            for c, (line, lo) in enumerate(ROOMS[r.rid]["gates"], 1):
                active = levels.get(line) != (1 if lo else 0)
                if active and why:
                    self.violation(f"room {r.rid} gate {line} (channel {c}) active while {why}: "
                                   f"{json.dumps(obj['stim'])}")
                if active and c not in chans:
                    self.violation(f"room {r.rid} gate {line} active but profile "
                                   f"{obj.get('profile')} does not drive channel {c}")
        if seen != set(ROOM_IDS):
            self.violation(f"status lists rooms {sorted(seen)}")

    # -- one random step --------------------------------------------------------------
    def step(self, conn):
        rng = self.rng
        # The same draws every step, whatever the replies were: the command
        # sequence depends on the seed only.
        kind_u = rng.random()
        state_u = rng.random()
        rid = rng.choice(ROOM_IDS)
        dur = rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 20])
        needles = rng.randint(1, 12)
        pname = rng.choice(PROFILE_NAMES + [None])
        flag_u = [rng.random() for _ in HARD + SOFT]
        stim = rng.random() < 0.6
        x = rng.random()
        delta = rng.choice([-3, -1, 1, 2, 5])
        ext = rng.choice([1, 2, 3, 10])
        nap = rng.choice([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
        variant = rng.choice("AABBCD")
        fail_u = rng.random()

        # Mostly a command that fits the room's state as last seen (so that
        # sessions get started, armed, stopped and finished), sometimes any.
        r = self.rooms[rid]
        if state_u < 0.8:
            key = r.state
            if key == "running" and (r.tripped or self.refused(r.flags, r.profile)):
                key = "running-blocked"
            elif key == "running" and r.armed:
                key = "running-armed"
            kinds = STATE_KINDS[key]
        else:
            kinds = ANY_KINDS
        total = sum(w for _, w in kinds)
        acc = 0
        for kind, w in kinds:
            acc += w / total
            if kind_u < acc:
                break
        self.counts[kind] = self.counts.get(kind, 0) + 1

        def flags_from(p_hard, p_soft):
            out = [f for f, u in zip(HARD, flag_u[:3]) if u < p_hard]
            out += [f for f, u in zip(SOFT, flag_u[3:]) if u < p_soft]
            return out

        if kind == "sleep":
            time.sleep(nap)
            self.slept += nap
            return
        if kind == "blip":
            self.blip(conn, rid, x < 0.5)
            return
        if kind == "writefail":
            self.writefail(conn, rid, fail_u, pname, dur, needles)
            return
        if kind == "start":
            req = {"cmd": "start", "room": rid, "duration_s": dur, "needles": needles,
                   "patient": f"P{self.step_no}"}
            if pname:
                req["profile"] = pname
            fl = flags_from(0.02, 0.06)
            if fl:
                req["flags"] = fl
            if stim:
                req["stim"] = True
        elif kind == "stim_on":
            req = {"cmd": "stim", "room": rid, "on": True}
        elif kind == "stim_off":
            req = {"cmd": "stim", "room": rid, "on": False}
        elif kind in ("pause", "resume", "stop", "checkin"):
            req = {"cmd": kind, "room": rid}
        elif kind == "extend":
            req = {"cmd": "extend", "room": rid, "duration_s": ext}
        elif kind == "finish":
            removed = r.needles if x >= 0.15 else r.needles + 1
            req = {"cmd": "finish", "room": rid, "removed": removed}
            if x < 0.07:
                req["override"] = "count checked twice"
        elif kind == "needles":
            req = {"cmd": "needles", "room": rid, "delta": delta}
        elif kind == "flag":
            fl = flags_from(0.06, 0.3) or ["bleeding-disorder"]
            req = {"cmd": "flag", "room": rid, "flags": fl}
        elif kind == "silence":
            req = {"cmd": "silence", "room": rid, "duration_s": ext}
        elif kind == "interlock":
            il = ROOMS[rid]["interlock"]
            line, lo = il if il else ("99", False)
            trip = x < (0.15 if r.tripped else 0.5)
            phys = (0 if lo else 1) if trip else (1 if lo else 0)
            req = {"cmd": "sim-input", "line": line, "level": phys}
        elif kind == "unreadable":
            il = ROOMS[rid]["interlock"]
            req = {"cmd": "sim-input", "line": il[0] if il else "99", "level": -1}
        elif kind == "reload":
            self.acud.write_config(self.config(variant))
            req = {"cmd": "reload"}
        elif kind == "history":
            req = {"cmd": "history", "room": rid, "limit": 5}
        else:
            req = rng.choice([{"cmd": "start", "room": rid, "duration_s": "x"},
                              {"cmd": "stim", "room": rid, "on": "yes"},
                              {"cmd": "flag", "room": rid, "flags": ["nonsense"]},
                              {"cmd": "explode", "room": rid}])

        rep, ts, tr = conn.timed(req)
        if not isinstance(rep.get("ok"), bool):
            self.violation(f"reply without ok: {rep}")
            return
        if rep["ok"] is False and not isinstance(rep.get("error"), dict):
            self.violation(f"refusal without an error object: {req} -> {rep}")
        ok = rep["ok"]
        obj = rep.get("room") if ok else None
        code = "ok" if ok else (rep.get("error") or {}).get("code")
        self.outcomes[(kind, code)] = self.outcomes.get((kind, code), 0) + 1
        before = r.state

        # What the command does to the allowed windows, before observing the reply.
        if ok and kind in ("start", "stim_on") and obj and obj["stim"]["armed"]:
            if kind == "start":
                r.session += 1
                r.end_hi = tr + dur * NS
                r.events.append(("end", ts, r.end_hi))
            r.events.append(("arm", ts, tr, obj.get("profile"), r.session))
        elif ok and kind == "start":
            r.session += 1
            r.end_hi = tr + dur * NS
            r.events.append(("end", ts, r.end_hi))
        if ok and kind == "pause":
            r.remaining_hi = (r.end_hi - ts) if r.end_hi else None
        if ok and kind == "resume":
            r.end_hi = tr + (r.remaining_hi if r.remaining_hi is not None else 600 * NS)
            r.events.append(("end", ts, r.end_hi))
        if ok and kind == "extend":
            if obj and obj["state"] == "paused":
                r.remaining_hi = (r.remaining_hi or 0) + ext * NS
            else:
                r.end_hi = max((r.end_hi or 0) + ext * NS, tr + ext * NS)
                r.events.append(("end", ts, r.end_hi))
        if ok and kind in ("stop", "pause", "finish") or (ok and kind == "stim_off"):
            r.events.append(("block", tr, f"{kind} reply"))
        if code == "gpio-fault" and kind in ("start", "stim_on", "stop", "pause", "stim_off"):
            self.fault_begins(r, tr, f"{kind}: gpio-fault reply")
        if ok and kind == "interlock":
            self.unreadable.discard(rid)
            il = ROOMS[rid]["interlock"]
            line, lo = il
            tripped = req["level"] != (1 if lo else 0)
            # S5: the edge is handled before the reply: the gates are off by then.
            if tripped:
                r.events.append(("block", tr, "interlock trip reply"))
            r.tripped = tripped
        if ok and kind == "unreadable":
            # S5: unreadable counts as tripped, and is a GPIO fault.
            self.unreadable.add(rid)
            r.tripped = True
            self.fault_begins(r, tr, "unreadable interlock reply")
        if ok and kind == "reload":
            self.policy = dict(POLICIES["A" if variant in "CD" else variant])
            self.variant = variant
            for m in self.rooms.values():
                f = self.refused(m.flags, m.profile)
                if f:
                    m.events.append(("block", tr, f"reload refuses {f}"))
                if m.profile and not fits(variant, m.profile, m.rid):
                    m.events.append(("block", tr, f"reload: {m.profile} unsupported"))
                # S7: a reload clears every GPIO fault; an unreadable input is
                # read again and faults again at once (the status will say).
                m.faulted = False
            for per in self.fault_periods:
                if per[1] is None:
                    per[1] = ts
            for m in self.rooms.values():
                il = ROOMS[m.rid]["interlock"]
                if il and m.rid in self.unreadable:
                    self.fault_begins(m, tr, "unreadable interlock at reload")
        if kind == "reload" and variant == "C" and ok:
            self.violation("a broken config was accepted by reload")
        if obj:
            self.observe(obj, tr, f"{kind} reply")
            # S3: after a hard flag no arming may succeed for the rest of the session.
            if kind == "stim_on" and ok and set(obj.get("flags") or []) & set(HARD):
                self.violation(f"room {rid}: armed with a hard flag: {obj['flags']}")
        if kind == "stim_on" and ok and r.tripped:
            self.violation(f"room {rid}: armed while the interlock is tripped")
        if before == "idle" and kind == "start" and not ok and stim:
            pass  # refused whole: must stay idle (checked by the status that follows)

    def blip(self, conn, rid, one_request):
        """S5: trip and clear in ONE write (two sim-input requests), or within one
        sim-input (a list of levels: both gone through before the daemon can read
        the line, so only the latched edges tell): it must trip all the same,
        before the reply."""
        r = self.rooms[rid]
        il = ROOMS[rid]["interlock"]
        if not il:
            return
        line, lo = il
        trip, clear = (0, 1) if lo else (1, 0)
        if one_request:
            reqs = [{"cmd": "sim-input", "line": line, "level": [trip, clear]}]
        else:
            reqs = [{"cmd": "sim-input", "line": line, "level": v} for v in (trip, clear)]
        conn.sock.sendall(b"".join(json.dumps(q).encode() + b"\n" for q in reqs))
        reps = [conn.recv() for _ in reqs]
        tr = acuproc.mono_ns()
        ok = all(rep.get("ok") is True for rep in reps)
        self.outcomes[("blip", "ok" if ok else "refused")] = \
            self.outcomes.get(("blip", "ok" if ok else "refused"), 0) + 1
        if not ok:
            self.violation(f"sim-input blip refused: {reps}")
            return
        # Handled before the first reply; both replies are in by tr.
        r.events.append(("block", tr, "interlock blip"))
        r.tripped = False
        self.unreadable.discard(rid)

    def writefail(self, conn, rid, u, pname, dur, needles):
        """S7: every GPIO write fails for the length of one command (or a short nap
        in which pulses, alarm flashes and the heartbeat write)."""
        if not self.faults:
            return
        r = self.rooms[rid]
        if u < 0.4:
            req = {"cmd": "stim", "room": rid, "on": True}
        elif u < 0.6:
            req = {"cmd": "stim", "room": rid, "on": False}
        elif u < 0.75:
            req = {"cmd": "start", "room": rid, "duration_s": dur, "needles": needles,
                   "patient": f"P{self.step_no}", "stim": True}
            if pname:
                req["profile"] = pname
        else:
            req = None
        before = {m.rid: m.faulted for m in self.rooms.values()}
        # A room whose pulses run has them written by the pulse thread
        # (issue 19) at any moment of the window: a failure there is the
        # thread's, not the command's, and is found through the status below.
        room = conn.request({"cmd": "status", "room": rid}).get("room") or {}
        cur = room.get("stim") or {}
        pulsing = bool(ROOMS[rid]["pulses"]) and bool(cur.get("on"))
        # So does a room whose alarm line flashes (a high or medium alarm): a
        # flash in the window fails, faults the room, and the command answers
        # ok for writes of its own that did not fail (or that it had none of).
        flashing = bool(ROOMS[rid]["alarm"]) and any(
            a.get("priority") in ("high", "medium") for a in room.get("alarms") or [])
        self.fill_simfs()
        t_fill = acuproc.mono_ns()
        try:
            if req:
                rep, ts, tr = conn.timed(req)
            else:
                time.sleep(0.03)
        finally:
            self.empty_simfs()
        t_empty = acuproc.mono_ns()
        kind = req["cmd"] + ("_on" if req and req.get("on") else "") if req else "nap"
        code = "ok" if not req or rep.get("ok") else (rep.get("error") or {}).get("code")
        self.outcomes[("writefail-" + kind, code)] = \
            self.outcomes.get(("writefail-" + kind, code), 0) + 1
        if req and code == "ok" and req["cmd"] == "stim" and req["on"] is False:
            r.events.append(("block", tr, "stim_off reply"))
        if req and code in ("ok", "gpio-fault") and (req.get("stim") or req.get("on")):
            # Armed: the window opens (the gate may have been driven on)...
            if req["cmd"] == "start":
                r.session += 1
                r.end_hi = tr + dur * NS
                r.events.append(("end", ts, r.end_hi))
            r.events.append(("arm", ts, tr, req.get("profile", r.profile), r.session))
        # ... and closes for every room the failure reached: from the status
        # (gpio-fault alarm), by the end of the window, heartbeat stopped.
        st = conn.request({"cmd": "status"})
        for obj in st.get("rooms") or []:
            m = self.rooms[obj["id"]]
            if any(a.get("kind") == "gpio-fault" for a in obj.get("alarms") or []) \
                    and not before[m.rid]:
                self.fault_begins(m, t_empty, f"write failed {(t_fill - self.t_begin) / NS:.3f}s")
        if req and code == "gpio-fault" and not r.faulted:
            self.violation(f"room {rid}: {req} answered gpio-fault but no gpio-fault alarm")
        if req and code == "ok" and r.faulted and not before[rid] and not pulsing \
                and not flashing:
            self.violation(f"room {rid}: {req} hit a failed write but was answered ok")
        # Every level the daemon drove reaches the file at its next write: an
        # input set to the level it has makes one.
        for m in self.rooms.values():
            il = ROOMS[m.rid]["interlock"]
            if il and m.rid not in self.unreadable:
                active, inactive = (0, 1) if il[1] else (1, 0)
                conn.request({"cmd": "sim-input", "line": il[0],
                              "level": active if m.tripped else inactive})
                break

    def slack(self, t):
        """How late a timer due at t may fire: the tolerance plus any stall of the
        whole machine seen around t."""
        return self.tol + self.monitor.worst(t - NS // 2, t + NS // 2)

    # -- the trace --------------------------------------------------------------------
    def windows(self, r, t_end):
        """[(open, close, profile, session, t_arm_reply, why closed)] for room r."""
        evs = sorted(r.events, key=lambda e: e[1])
        out = []
        for i, e in enumerate(evs):
            if e[0] != "arm":
                continue
            _, ts, tr, prof, sess = e
            close, why = t_end, "end of run"
            cur_end = None
            # the end bound in force at the arming
            for e2 in evs[:i]:
                if e2[0] == "end":
                    cur_end = e2[2]
            for e2 in evs[i + 1:]:
                if cur_end is not None and cur_end + self.slack(cur_end) < e2[1]:
                    close, why = cur_end + self.slack(cur_end), "expiry"
                    break
                if e2[0] == "block":
                    close, why = e2[1], "block"
                    break
                if e2[0] == "arm":
                    close, why = e2[1], "arm"  # the next arming starts its own window
                    break
                if e2[0] == "end":
                    cur_end = e2[2]
            else:
                if cur_end is not None and cur_end + self.slack(cur_end) < close:
                    close, why = cur_end + self.slack(cur_end), "expiry"
            out.append((ts, close, prof, sess, tr, why))
        return out

    def check_trace(self, t_end):
        trace = acuproc.read_trace(os.path.join(self.acud.state_dir, "gpio.trace"))
        lines = {}
        for t, line, level in trace:
            lines.setdefault(line, []).append((t, level))

        def intervals(line, lo):
            active = 0 if lo else 1
            out, since = [], None
            for t, level in lines.get(line, []):
                if level == active and since is None:
                    since = t
                elif level != active and since is not None:
                    out.append((since, t))
                    since = None
            if since is not None:
                out.append((since, t_end))
            return out

        # S7: no heartbeat while a GPIO fault is pending anywhere.
        for a, b in self.fault_periods:
            b = b if b is not None else t_end
            toggles = [t for t, level in lines.get(HEARTBEAT, []) if a < t < b and level == 1]
            if toggles:
                self.violation(f"trace: heartbeat toggled {len(toggles)} times while a GPIO "
                               f"fault was pending ({(a - self.t_begin) / NS:.3f}s.."
                               f"{(b - self.t_begin) / NS:.3f}s), first at "
                               f"{(toggles[0] - self.t_begin) / NS:.3f}s")
        n_on = 0
        for rid in ROOM_IDS:
            r = self.rooms[rid]
            wins = self.windows(r, t_end)
            delivered = {}
            gate_ivs = {}
            for c, (line, lo) in enumerate(ROOMS[rid]["gates"], 1):
                ivs = intervals(line, lo)
                gate_ivs[c] = ivs
                for a, b in ivs:
                    n_on += 1
                    rel = lambda t: f"{(t - self.t_begin) / NS:.3f}s"
                    idx = [i for i, x in enumerate(wins) if x[0] <= a]
                    w = wins[idx[-1]] if idx else None
                    # Arming again while armed keeps the gate on: the interval may
                    # run on into the next window.
                    last, chained = w, False
                    while last and b > last[1] and last[5] == "arm" and idx[-1] + 1 < len(wins):
                        idx.append(idx[-1] + 1)
                        last, chained = wins[idx[-1]], True
                    if not w or b > last[1]:
                        self.violation(
                            f"trace: room {rid} gate {line} (channel {c}) active "
                            f"{rel(a)}..{rel(b)} outside any allowed window"
                            + (f" (window {rel(w[0])}..{rel(last[1])}, profile {w[2]})" if w else
                               " (never armed before)")
                            + "; " + self.events_near(r, a, b))
                        continue
                    ts, close, prof, sess, tr, _ = w
                    p = PROFILES.get(prof) or {}
                    if c not in profile_channels(prof, rid):
                        self.violation(f"trace: room {rid} channel {c} on at {rel(a)} but "
                                       f"profile {prof} does not drive it")
                    delay = p.get("delay_s", 0) * NS
                    if tr is not None and a < ts + delay - 2_000_000:
                        self.violation(f"trace: room {rid} channel {c} on at {rel(a)}, before "
                                       f"delay_s {p.get('delay_s')} from arming at {rel(ts)}")
                    if p.get("mode") == "intermittent" and not chained and tr is not None:
                        on, per = p["on_s"] * NS, (p["on_s"] + p["off_s"]) * NS
                        t0lo, t0hi = ts + delay, tr + delay
                        k = max(0, (a - t0lo) // per)
                        fits = any(a >= t0lo + kk * per - 2_000_000 and
                                   b <= t0hi + kk * per + on +
                                   self.slack(t0hi + kk * per + on)
                                   for kk in (k - 1, k, k + 1) if kk >= 0)
                        if not fits:
                            self.violation(f"trace: room {rid} channel {c} on {rel(a)}..{rel(b)}"
                                           f" outside the on phases of {prof} armed at "
                                           f"{rel(ts)}..{rel(tr)}")
                    key = (sess, c)
                    n, tot = delivered.get(key, (0, 0))
                    delivered[key] = (n + 1, tot + (b - a))
                    lim = budget_s(prof) * NS
                    if tot + (b - a) > lim + (n + 1) * self.tol:
                        self.violation(f"trace: room {rid} channel {c} session {sess}: "
                                       f"{(tot + b - a) / NS:.3f}s delivered, budget "
                                       f"{lim / NS:.0f}s ({prof})")
            for c, (line, lo) in enumerate(ROOMS[rid]["pulses"], 1):
                for a, b in intervals(line, lo):
                    if not any(ga - 1_000_000 <= a and b <= gb + 1_000_000
                               for ga, gb in gate_ivs.get(c, [])):
                        self.violation(f"trace: room {rid} pulse line {line} high "
                                       f"{(a - self.t_begin) / NS:.3f}s without its gate on")
        return n_on

    def events_near(self, r, a, b):
        rel = lambda t: f"{(t - self.t_begin) / NS:.3f}"
        near = [e for e in sorted(r.events, key=lambda e: e[1])
                if a - 3 * NS <= e[1] <= b + NS][-16:]
        def show(e):
            if e[0] == "block":
                return f"block@{rel(e[1])}({e[2]})"
            if e[0] == "end":
                return f"end@{rel(e[1])}(to {rel(e[2])})"
            return f"arm@{rel(e[1])}({e[3]}, reply {rel(e[2]) if e[2] else '-'})"
        return "events: " + ", ".join(show(e) for e in near)

    # -- driver -----------------------------------------------------------------------
    def run(self):
        self.log(f"random_safety: seed={self.seed} steps={self.steps} dir={self.dir}")
        t_wall = time.monotonic()
        self.t_begin = acuproc.mono_ns()
        self.monitor.start()
        if self.faults:
            self.mount_simfs()
        try:
            self.acud.start()
            conn = self.acud.connect(timeout=20)
            try:
                for self.step_no in range(1, self.steps + 1):
                    self.step(conn)
                    self.check_now(conn)
                    if not self.acud.alive():
                        self.violation(f"acud died: {self.acud.proc.returncode}")
                        break
                    if len(self.violations) > 30:
                        break
            finally:
                conn.close()
                rc = self.acud.stop()
        finally:
            self.umount_simfs()
        t_end = acuproc.mono_ns()
        self.monitor.stop.set()
        if rc != 0:
            self.violation(f"acud exit status {rc} on SIGTERM")
        log = self.acud.log()
        for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer", "<2>acud", "<1>acud"):
            if bad in log:
                i = log.index(bad)
                self.violation(f"daemon log has '{bad}': {log[max(0, i - 300):i + 1200]}")
        n_on = self.check_trace(t_end)
        worst = max((late for _, late in self.monitor.stalls), default=0)
        self.log(f"random_safety: {self.step_no} steps in {time.monotonic() - t_wall:.1f}s, "
                 f"({self.slept:.1f}s asleep), {n_on} gate-on intervals checked; "
                 f"{len(self.monitor.stalls)} machine stalls over 5 ms, worst "
                 f"{worst / 1e6:.1f} ms")
        self.log("random_safety: outcomes " + ", ".join(
            f"{k}:{c}={n}" for (k, c), n in sorted(self.outcomes.items(), key=str)))
        return self.violations


def main():
    steps = int(os.environ.get("ACU_RANDOM_STEPS", "3000"))
    seed = int(os.environ.get("ACU_SEED") or random.SystemRandom().randrange(1 << 32))
    tol = float(os.environ.get("ACU_TOL", "0.15"))
    run = Run(steps, seed, tol, log=lambda m: print(m, flush=True))
    try:
        v = run.run()
    finally:
        if os.environ.get("ACU_KEEP") != "1" and not run.violations:
            acuproc.rmtree(run.dir)
    if v:
        print(f"random_safety: {len(v)} violations; replay with ACU_SEED={seed} "
              f"ACU_RANDOM_STEPS={steps}; scratch dir {run.dir}", flush=True)
        return 1
    print(f"random_safety: OK (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
