"""Bash completion for acuctl (issue 7): cli/acuctl.bash-completion, sourced in a
plain bash, fills COMPREPLY with commands, options, flag names, on|off, and the
room ids and profile names of the running daemon (asked on the socket of -s, or
of $ACUD_SOCKET)."""

import os
import re
import shutil
import subprocess
import time

from conftest import ACUCTL, REPO

COMPLETION = os.path.join(REPO, "cli", "acuctl.bash-completion")
ROOMS = ["1", "2", "3", "4"]                        # conftest's DEFAULT_ROOMS
PROFILES = ["lbp-2hz", "gentle", "extra-10hz"]      # DEFAULT_PROFILES + EXTRA_PROFILE
FLAGS = ["pacemaker", "icd", "implanted-device", "pregnancy", "epilepsy", "heart-disease",
         "bleeding-disorder", "metal-implant"]

BASH = shutil.which("bash")


def comp_words(line):
    """COMP_WORDS as bash builds them with the default COMP_WORDBREAKS: split at
    blanks, and '=' as a word of its own."""
    words = []
    for w in line.split():
        parts = re.split(r"(=)", w)
        words.extend(p for p in parts if p != "")
    if line.endswith(" ") or not words:
        words.append("")
    return words


def complete(line, env_socket=None, prog=ACUCTL):
    """COMPREPLY for `line` with the cursor at its end (`line` starts with the
    command's arguments; prog is put in front)."""
    words = [prog] + comp_words(line)
    script = (
        f"source {sh_quote(COMPLETION)} || exit 99\n"
        f"COMP_WORDS=({' '.join(sh_quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={sh_quote(prog + ' ' + line)}\n"
        "COMP_POINT=${#COMP_LINE}\n"
        "_acuctl\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {k: v for k, v in os.environ.items() if k != "ACUD_SOCKET"}
    if env_socket:
        env["ACUD_SOCKET"] = env_socket
    t0 = time.monotonic()
    p = subprocess.run([BASH, "--norc", "--noprofile", "-c", script], stdin=subprocess.DEVNULL,
                       capture_output=True, env=env, timeout=30)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr.decode()
    assert not p.stderr.strip(), f"completion wrote to stderr: {p.stderr.decode()}"
    return [w for w in p.stdout.decode().split("\n") if w], took


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def test_commands_and_global_options():
    got, _ = complete("st")
    assert sorted(got) == ["start", "status", "stim", "stop"]
    got, _ = complete("")
    for c in ("status", "watch", "start", "finish", "profiles", "history", "reload",
              "sim-input"):
        assert c in got
    assert complete("--js")[0] == ["--json"]
    assert complete("-s /tmp/x --js")[0] == ["--json"]


def test_room_ids_from_the_daemon(daemon):
    assert complete(f"-s {daemon.socket} status ")[0] == ROOMS
    assert complete(f"-s {daemon.socket} pause ")[0] == ROOMS
    assert complete(f"--socket {daemon.socket} finish ")[0] == ROOMS
    assert complete(f"--socket={daemon.socket} stop ")[0] == ROOMS
    assert complete(f"-s{daemon.socket} checkin ")[0] == ROOMS
    assert complete(f"-s {daemon.socket} history --room ")[0] == ROOMS
    # the room is the first argument only
    assert complete(f"-s {daemon.socket} pause 1 ")[0] == []


def test_acud_socket_environment(daemon):
    assert complete("start ", env_socket=daemon.socket)[0] == ROOMS
    assert complete("stim 1", env_socket=daemon.socket)[0] == ["1"]
    # -s wins over the environment
    assert complete(f"-s {daemon.socket} status ", env_socket="/nonexistent")[0] == ROOMS


def test_profile_names_from_the_daemon(daemon):
    s = daemon.socket
    assert complete(f"-s {s} start 1 20m --profile ")[0] == PROFILES
    assert complete(f"-s {s} start 1 20m --profile l")[0] == ["lbp-2hz"]
    assert complete(f"-s {s} start 1 20m --profile=")[0] == PROFILES
    assert complete(f"-s {s} start 1 20m --profile=ex")[0] == ["extra-10hz"]
    assert complete(f"-s {s} profile ")[0] == PROFILES


def test_state_does_not_change_what_is_offered(daemon):
    daemon.start_session(room="2", duration_s=600, needles=4)
    assert complete(f"-s {daemon.socket} stop ")[0] == ROOMS


def test_flags_stim_and_command_options(daemon):
    s = daemon.socket
    assert complete(f"-s {s} flag 2 ")[0] == FLAGS
    assert complete(f"-s {s} flag 2 pa")[0] == ["pacemaker"]
    assert complete(f"-s {s} flag 2 icd ")[0] == FLAGS  # several flags
    assert complete(f"-s {s} flag 2 pregnancy,ep")[0] == ["pregnancy,epilepsy"]
    assert complete(f"-s {s} start 1 20m --flag he")[0] == ["heart-disease"]
    assert complete(f"-s {s} start 1 20m --flag=im")[0] == ["implanted-device"]
    assert complete(f"-s {s} stim 2 ")[0] == ["on", "off"]
    assert complete(f"-s {s} stim 2 o")[0] == ["on", "off"]
    assert complete(f"-s {s} stim 2 of")[0] == ["off"]
    assert complete(f"-s {s} stim 2 on ")[0] == []
    start_opts = complete(f"-s {s} start 1 20m --")[0]
    for o in ("--needles", "--profile", "--patient", "--flag", "--stim", "--json"):
        assert o in start_opts
    assert complete(f"-s {s} finish 1 --r")[0] == ["--removed"]
    assert complete(f"-s {s} history --l")[0] == ["--limit"]
    # values that cannot be guessed are left alone
    assert complete(f"-s {s} start 1 20m --needles ")[0] == []
    assert complete(f"-s {s} start 1 20m --patient ")[0] == []
    # a needle delta is an argument, not an option
    assert complete(f"-s {s} needles 1 -")[0] == ["-1"]
    assert complete(f"-s {s} needles 1 ")[0] == ["+1", "-1"]


def test_socket_option_completes_file_names(tmp_path):
    (tmp_path / "acud.sock").write_text("")
    got, _ = complete(f"-s {tmp_path}/acu")
    assert got == [f"{tmp_path}/acud.sock"]


def test_unreachable_daemon_offers_nothing_quietly():
    got, took = complete("-s /nonexistent/acud.sock status ")
    assert got == [] and took < 5
    got, _ = complete("-s /nonexistent/acud.sock start 1 20m --profile ")
    assert got == []


def test_registered_for_acuctl():
    p = subprocess.run([BASH, "--norc", "--noprofile", "-c",
                        f"source {sh_quote(COMPLETION)}; complete -p acuctl"],
                       capture_output=True, timeout=10)
    assert p.returncode == 0 and b"-F _acuctl" in p.stdout, p.stdout + p.stderr


def test_one_table_answers():
    """The script names no command, option or flag of its own: it asks
    `acuctl --complete`, which reads acuctl's command table, so a command or a
    flag added there is offered without touching the script."""
    with open(COMPLETION) as f:
        text = f.read()
    for word in ("checkin", "sim-input", "--needles", "--removed", "--since", "pacemaker",
                 "metal-implant"):
        assert word not in text, f"the completion script spells out {word}"
    p = subprocess.run([ACUCTL, "--complete", ""], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.split("\n")[0] == "words", p
    offered = set(p.stdout.split()[1:])
    p = subprocess.run([ACUCTL, "--help"], capture_output=True, text=True, timeout=10)
    block = p.stdout.split("Commands:", 1)[1].split("\n\n", 1)[0]
    listed = {line.split()[0] for line in block.splitlines()
              if line.strip() and not line.strip().startswith("[")}
    assert offered == listed, (offered, listed)
