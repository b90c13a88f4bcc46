"""Bad acud.conf files for the black-box config tests (SPEC §3, §5).

BAD_CONFIGS is a list of (name, config_text, expected_line, message_fragment).
Each config is complete and would be valid but for one error; `acud
--check-config -c FILE` must exit 1 and print `FILE:LINE:` with the fragment
(compared case-insensitively). Paths are relative, so they resolve against the
directory the test writes the file into (which has a profiles.d/ directory).

The line to blame is marked with a leading '@' in the templates below; the
marker is removed and its line number becomes expected_line.
"""

ROOM = """\
[room 1]
name = Lotus
gate = 17
"""


def _conf(daemon="", gpio="", middle="", room=ROOM, after=""):
    return (
        "; acud black-box bad config\n"
        "[daemon]\n"
        "socket = run/acud.sock\n"
        "state_dir = state\n"
        "profiles_dir = profiles.d\n"
        f"{daemon}"
        "\n"
        "[gpio]\n"
        "backend = sim\n"
        f"{gpio}"
        "\n"
        f"{middle}"
        f"{room}"
        f"{after}"
    )


def _bad(name, text, fragment):
    lines = text.split("\n")
    marked = [i for i, line in enumerate(lines, 1) if line.startswith("@")]
    assert len(marked) == 1, f"{name}: mark exactly one line with '@'"
    line = marked[0]
    lines[line - 1] = lines[line - 1][1:]
    return (name, "\n".join(lines), line, fragment)


_long_value = "x" * 240

BAD_CONFIGS = [
    # Structure and syntax.
    _bad("unknown-section", _conf(after="\n@[nonsense]\nkey = 1\n"), "unknown section"),
    _bad("unknown-section-empty", _conf(after="\n@[nonsense]\n"), "unknown section"),
    _bad("unknown-key-room", _conf(room=ROOM + "@colour = red\n"), "unknown key"),
    _bad("colon-delimiter", _conf(room="[room 1]\ngate = 17\n@name: Lotus\n"),
         "':' is not a delimiter"),
    _bad("no-delimiter", _conf(room=ROOM + "@audible\n"), "syntax error"),
    _bad("unknown-key-limits", _conf(middle="[limits]\n@bogus_key = 1\n\n"), "unknown key"),
    _bad("duplicate-key", _conf(middle="[limits]\nsession_min = 1m\n@session_min = 2m\n\n"),
         "duplicate key"),
    _bad("duplicate-section", _conf(after="\n@[gpio]\nheartbeat = 26\n"), "appears twice"),
    _bad("syntax-error", _conf(room=ROOM + "@this is not an ini line\n"), "syntax error"),
    _bad("unclosed-section-header", _conf(after="\n@[room 2\ngate = 18\n"), "syntax error"),
    _bad("indented-continuation", _conf(room=ROOM + "@  gate2 = 18\n"), "indented line"),
    _bad("overlong-line", _conf(room=ROOM + f"@name = {_long_value}\n"),
         "line longer than 199 characters"),
    _bad("key-outside-section", "; acud black-box bad config\n@log_level = info\n" +
         _conf()[len("; acud black-box bad config\n"):], "outside any section"),
    _bad("empty-value", _conf(room="[room 1]\n@name =\ngate = 17\n"), "value is required"),

    # Rooms and GPIO lines.
    _bad("duplicate-room", _conf(after="\n@[room 1]\ngate = 40\n"), "duplicate room"),
    _bad("bad-room-id", _conf(after="\n@[room a/b]\ngate = 40\n"), "bad room id"),
    _bad("room-without-gate", _conf(after="\n@[room 2]\nname = Bamboo\n"), "gate is required"),
    _bad("line-used-twice-gate", _conf(after="\n[room 2]\n@gate = 17\n"), "used twice"),
    _bad("line-used-twice-heartbeat",
         _conf(gpio="heartbeat = 17\n", room="[room 1]\nname = Lotus\n@gate = 17\n"),
         "used twice (also heartbeat"),
    _bad("heartbeat-after-rooms-reuses-gate",
         "; acud black-box bad config\n[daemon]\nsocket = run/acud.sock\nstate_dir = state\n"
         "profiles_dir = profiles.d\n\n" + ROOM + "\n[gpio]\nbackend = sim\n@heartbeat = !17\n",
         "used twice"),
    _bad("line-used-twice-by-name", _conf(room="[room 1]\ngate = SW_A\n",
                                          after="\n[room 2]\n@gate = SW_A\n"), "used twice"),
    _bad("line-used-twice-by-offset-and-sim-name",
         _conf(room="[room 1]\ngate = 24\n", after="\n[room 2]\ngate = 25\n@alarm = GPIO24\n"),
         "used twice"),
    _bad("interlock-reuses-pulse",
         _conf(room="[room 1]\ngate = 17, 27\npulse = 22, 23\n@interlock = !22\n"), "used twice"),
    # Room buttons (SPEC §11).
    _bad("call-reuses-interlock",
         _conf(room="[room 1]\ngate = 17\ninterlock = 6\n@call = !6\n"), "used twice"),
    _bad("presence-reuses-other-rooms-call",
         _conf(room="[room 1]\ngate = 17\ncall = 16\n",
               after="\n[room 2]\ngate = 24\n@presence = 16\n"), "used twice"),
    _bad("call-bad-line", _conf(room=ROOM + "@call = !\n"), "followed by a line"),
    _bad("debounce-out-of-range", _conf(gpio="@debounce_ms = 5000\n"), "out of range"),
    _bad("debounce-not-a-number", _conf(gpio="@debounce_ms = 20ms\n"), "debounce_ms"),
    _bad("call-escalate-bad", _conf(middle="[alarm]\n@call_escalate_after = soon\n\n"),
         "call_escalate_after"),
    _bad("pulse-count-mismatch", _conf(room="[room 1]\ngate = 17, 27\n@pulse = 22\n"),
         "pulse line"),
    _bad("more-than-8-channels", _conf(room="[room 1]\n@gate = 1,2,3,4,5,30,31,32,33\n"),
         "more than 8 channels"),
    _bad("empty-list-entry", _conf(room="[room 1]\n@gate = 17,,27\n"), "empty entry"),
    _bad("gate-only-comma", _conf(room="[room 1]\n@gate = ,\n"), "empty entry"),
    _bad("line-offset-out-of-range", _conf(room="[room 1]\n@gate = 5000\n"), "out of range"),
    _bad("bad-line-name", _conf(room="[room 1]\n@gate = GPIO+1\n"), "not a GPIO line"),
    _bad("bad-boolean", _conf(room=ROOM + "@audible = loud\n"), "not a boolean"),

    # [daemon] and [gpio].
    _bad("bad-log-level", _conf(daemon="@log_level = loud\n"), "not a log level"),
    _bad("bad-backend", "; acud black-box bad config\n[daemon]\nsocket = run/acud.sock\n"
         "state_dir = state\nprofiles_dir = profiles.d\n\n[gpio]\n@backend = magic\n\n" + ROOM,
         "not a backend"),
    # issue 19: the pulse thread's priority and the timing alarm's share
    _bad("realtime-priority-out-of-range", _conf(daemon="@realtime_priority = 100\n"),
         "out of range"),
    _bad("realtime-priority-not-a-number", _conf(daemon="@realtime_priority = high\n"),
         "not a whole number"),
    _bad("timing-share-over-100", _conf(middle="[alarm]\n@timing_share = 101%\n\n"),
         "not a share"),
    _bad("timing-share-negative", _conf(middle="[alarm]\n@timing_share = -1%\n\n"),
         "not a share"),
    _bad("timing-share-five-decimals", _conf(middle="[alarm]\n@timing_share = 0.00001%\n\n"),
         "not a share"),
    _bad("timing-share-words", _conf(middle="[alarm]\n@timing_share = one percent\n\n"),
         "not a share"),
    _bad("heartbeat-hz-out-of-range", _conf(gpio="heartbeat = 26\n@heartbeat_hz = 100\n"),
         "out of range"),
    _bad("socket-path-too-long",
         "; acud black-box bad config\n[daemon]\n@socket = run/" + "s" * 110 + "/acud.sock\n"
         "state_dir = state\nprofiles_dir = profiles.d\n\n[gpio]\nbackend = sim\n\n" + ROOM,
         "socket path must be under 108"),
    _bad("missing-profiles-dir",
         "; acud black-box bad config\n[daemon]\nsocket = run/acud.sock\nstate_dir = state\n"
         "@profiles_dir = no-such-dir.d\n\n[gpio]\nbackend = sim\n\n" + ROOM,
         "no such file or directory"),
    _bad("no-room", "; acud black-box bad config\n[daemon]\nsocket = run/acud.sock\n"
         "state_dir = state\nprofiles_dir = profiles.d\n\n[gpio]\n@backend = sim",
         "no [room ID] section"),

    # [limits], [safety], [alarm], [access].
    _bad("bad-duration", _conf(middle="[limits]\n@session_min = soon\n\n"), "bad duration"),
    _bad("session-max-over-4h", _conf(middle="[limits]\n@session_max = 5h\n\n"), "out of range"),
    _bad("session-min-above-max",
         _conf(middle="[limits]\nsession_min = 30m\n@session_max = 20m\n\n"),
         "above session_max"),
    _bad("stim-max-over-60m", _conf(middle="[limits]\n@stim_max = 2h\n\n"), "out of range"),
    _bad("hard-flag-pacemaker", _conf(middle="[safety]\n@pacemaker = warn\n\n"),
         "pacemaker can never be relaxed"),
    _bad("hard-flag-icd", _conf(middle="[safety]\n@icd = refuse\n\n"), "can never be relaxed"),
    _bad("bad-policy", _conf(middle="[safety]\n@pregnancy = maybe\n\n"), "not a policy"),
    _bad("bad-needle-count-flag", _conf(middle="[safety]\n@require_needle_count = maybe\n\n"),
         "not a boolean"),
    _bad("negative-checkin-interval", _conf(middle="[alarm]\n@checkin_interval = -5\n\n"),
         "bad duration"),
    _bad("bad-group-name", _conf(middle="[access]\n@desk_group = front desk\n\n"),
         "not a group name"),

    # Profiles.
    _bad("profile-frequency-out-of-range",
         _conf(after="\n[profile p]\nmode = continuous\n@frequency_hz = 5000\n"), "out of range"),
    _bad("profile-bad-mode", _conf(after="\n[profile p]\n@mode = wobble\n"), "not a mode"),
    _bad("profile-pulse-width-too-short", _conf(after="\n[profile p]\n@pulse_width_us = 20\n"),
         "out of range"),
    _bad("profile-duration-above-stim-max",
         _conf(middle="[limits]\nstim_max = 10m\n\n", after="\n[profile p]\n@duration_s = 20m\n"),
         "above stim_max"),
    _bad("profile-delay-above-session-max",
         _conf(middle="[limits]\nsession_max = 10m\n\n", after="\n[profile p]\n@delay_s = 11m\n"),
         "above session_max"),
    _bad("profile-channel-out-of-range", _conf(after="\n[profile p]\n@channels = 1,9\n"),
         "out of range"),
    _bad("profile-unknown-key", _conf(after="\n[profile p]\n@voltage = 9\n"), "unknown key"),
    _bad("duplicate-profile", _conf(after="\n[profile p]\n\n@[profile p]\n"),
         "duplicate profile"),
    _bad("bad-profile-name", _conf(after="\n@[profile bad name!]\n"), "bad profile name"),

    # [web] (SPEC §10).
    _bad("web-listen-no-port", _conf(after="\n[web]\n@listen = 127.0.0.1\n"), "HOST:PORT"),
    _bad("web-listen-bad-port", _conf(after="\n[web]\n@listen = 127.0.0.1:99999\n"),
         "port"),
    _bad("web-listen-v6-brackets", _conf(after="\n[web]\n@listen = ::1:8080\n"),
         "in brackets"),
    _bad("web-listen-bad-host", _conf(after="\n[web]\n@listen = bad_host:8080\n"),
         "neither an IP address nor a host name"),
    _bad("web-show-patient", _conf(after="\n[web]\n@show_patient = maybe\n"),
         "not a boolean"),
    _bad("web-max-clients-zero", _conf(after="\n[web]\n@max_clients = 0\n"), "out of range"),
    _bad("web-max-clients-huge", _conf(after="\n[web]\n@max_clients = 100000\n"),
         "out of range"),
    _bad("web-hosts-port", _conf(after="\n[web]\n@hosts = board.lan:8080\n"),
         "not a host name"),
    _bad("web-hosts-twice", _conf(after="\n[web]\n@hosts = a.lan, A.lan\n"), "listed twice"),
    _bad("web-hosts-empty-entry", _conf(after="\n[web]\n@hosts = a.lan,,b.lan\n"),
         "empty entry"),
    _bad("web-hosts-too-many", _conf(after="\n[web]\n@hosts = a,b,c,d,e,f,g,h,i\n"),
         "more than 8"),
    _bad("web-title-control", _conf(after="\n[web]\n@title = a\x01b\n"), "control character"),
    _bad("web-unknown-key", _conf(after="\n[web]\n@port = 8080\n"), "unknown key"),
    _bad("web-twice", _conf(after="\n[web]\ntitle = a\n@[web]\n"), "appears twice"),
]
