"""The man pages (issue 7): acud(8), acuctl(1) and acud.conf(5) lint clean with
Debian's mandoc (`mandoc -T lint -W warning`) and groff (`man --warnings`), and
cover every option, command, configuration key, error code and exit status."""

import os
import re
import subprocess

import pytest

from conftest import ACUCTL, ACUD, REPO, config_accepted
from debtool import need

MAN = os.path.join(REPO, "man")
PAGES = ["acud.8", "acuctl.1", "acud.conf.5"]


def run(cmd, env=None):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def page(name):
    return os.path.join(MAN, name)


def rendered(name):
    """The page as plain text, for coverage checks (mandoc -T utf8, no overstrike)."""
    rc, out, err = run([need("mandoc", "mandoc"), "-T", "ascii", "-O", "width=200",
                        page(name)])
    assert rc == 0, err
    return re.sub(r".\x08", "", out)


@pytest.mark.parametrize("name", PAGES)
def test_mandoc_lint(name):
    mandoc = need("mandoc", "mandoc")
    rc, out, err = run([mandoc, "-T", "lint", "-W", "warning", page(name)])
    assert rc == 0 and not out.strip() and not err.strip(), f"{name}:\n{out}{err}"


@pytest.mark.parametrize("name", PAGES)
def test_groff_warnings(name):
    """What man-db shows a user, at 80 columns: no groff warning (a table too wide,
    a bad escape, a missing macro)."""
    man = need("man", "man-db")
    env = dict(os.environ, MANWIDTH="80", MAN_DISABLE_SECCOMP="1", LANG="C.UTF-8")
    rc, out, err = run([man, "--warnings", "-E", "UTF-8", "-l", page(name)], env=env)
    assert rc == 0 and not err.strip(), f"{name}:\n{err}"
    assert out.strip()


def test_mandoc_lint_catches_mistakes(tmp_path):
    """The lint is real: a page with a known mistake is reported."""
    bad = tmp_path / "bad.1"
    bad.write_text(".TH BAD 1\n.SH NAME\nbad \\- x\n.SH DESCRIPTION\n\ntext \n")
    rc, out, err = run([need("mandoc", "mandoc"), "-T", "lint", "-W", "warning", str(bad)])
    assert rc != 0 and (out + err).strip()


def help_text(prog):
    rc, out, err = run([prog, "--help"])
    assert rc == 0, err
    return out


def test_acud_8_covers_every_option():
    text = rendered("acud.8")
    opts = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", help_text(ACUD)))
    assert {"-c", "--config", "--check-config", "--all-off", "-f", "-v", "-V"} <= opts
    missing = [o for o in sorted(opts) if not re.search(rf"(?<![\w-]){re.escape(o)}\b", text)]
    assert not missing, f"acud(8) does not mention {missing}"
    for sect in ("EXIT STATUS", "FILES", "Signals", "ENVIRONMENT", "SYSTEMD",
                 "CONTROL PROTOCOL"):
        assert re.search(rf"^\s*{sect}$", text, re.M), sect
    for status in ("0", "1", "2"):
        assert re.search(rf"^\s+{status}\s", text.split("EXIT STATUS")[1], re.M), status
    for f in ("/etc/acud/acud.conf", "/run/acud/acud.sock", "/var/lib/acud/state.json",
              "/var/lib/acud/history.jsonl", "SIGHUP", "SIGTERM", "WATCHDOG=1", "READY=1",
              "ExecStopPost=", "NOTIFY_SOCKET"):
        assert f in text, f


def acuctl_commands(help_out):
    """The command words of `acuctl --help` ("pause|resume ROOM", "reload | version")."""
    block = help_out.split("Commands:", 1)[1].split("\n\n", 1)[0]
    commands = set()
    for line in block.splitlines():
        synopsis = re.split(r"\s{2,}", line.strip())[0]
        if not synopsis or synopsis.startswith("["):
            continue
        for alt in synopsis.split(" | "):
            commands.update(alt.split()[0].split("|"))
    return commands


def test_acuctl_1_covers_every_command_and_option():
    text = rendered("acuctl.1")
    help_out = help_text(ACUCTL)
    commands = acuctl_commands(help_out)
    assert {"status", "watch", "start", "pause", "resume", "stop", "checkin", "extend",
            "finish", "stim", "flag", "needles", "silence", "profiles", "profile",
            "history", "reload", "version"} <= commands, commands
    for c in sorted(commands):
        assert re.search(rf"^\s+{re.escape(c)}\b", text, re.M), f"acuctl(1): no entry for {c}"
    opts = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*|-[a-z])\b", help_out))
    missing = [o for o in sorted(opts) if o not in text]
    assert not missing, f"acuctl(1) does not mention {missing}"
    for word in ("ACUD_SOCKET", "NO_COLOR", "EXIT STATUS", "pacemaker", "implanted-device",
                 "metal-implant"):
        assert word in text, word
    exit_part = text.split("EXIT STATUS")[1]
    for status in ("0", "1", "2", "3"):
        assert re.search(rf"^\s+{status}\s", exit_part, re.M), status
    for code in ("bad-request", "unknown-command", "unknown-room", "unknown-profile",
                 "forbidden", "invalid-state", "out-of-range", "contraindicated",
                 "unsupported", "needle-mismatch", "interlock", "gpio-fault", "storage",
                 "config", "internal"):
        assert code in text, f"acuctl(1) does not explain error {code}"


def config_keys():
    """Every key acud accepts, per section, from the loader's key tables."""
    with open(os.path.join(REPO, "daemon", "cfg.c")) as f:
        src = f.read()
    keys = {}
    for sect, body in re.findall(r"static const struct key_def (\w+)_keys\[\] = \{(.*?)\n\};",
                                 src, re.S):
        keys[sect] = re.findall(r'\[K_\w+\] = [^"]*"([^"]+)"', body)
    assert {"daemon", "gpio", "limits", "safety", "alarm", "access", "room",
            "profile"} <= set(keys), keys
    return keys


def test_acud_conf_5_covers_every_key():
    text = rendered("acud.conf.5")
    for sect, keys in config_keys().items():
        heading = {"room": "[room ID]", "profile": "[profile NAME]"}.get(sect, f"[{sect}]")
        parts = re.split(rf"^\s+{re.escape(heading)}$", text, maxsplit=1, flags=re.M)
        assert len(parts) == 2, f"acud.conf(5) has no {heading} heading"
        part = re.split(r"^\s+\[[a-z]+( [A-Z]+)?\]$|^[A-Z]", parts[1], maxsplit=1,
                        flags=re.M)[0]
        for k in keys:
            assert re.search(rf"^\s+{re.escape(k)} = ", part, re.M), \
                f"acud.conf(5): {heading} {k} is not documented"


def test_acud_conf_5_gives_defaults_and_ranges():
    text = " ".join(rendered("acud.conf.5").split())
    for want in ("Default /run/acud/acud.sock", "Default /var/lib/acud",
                 "Default /etc/acud/profiles.d", "Default info", "Default gpiod",
                 "Default gpiochip0", "1 to 50. Default 10", "1s to 4h. Default 5m",
                 "Default 60m", "1s to 60m. Default 30m", "0 to 24h. Default 5m",
                 "0 disables check-ins. Default 10m", "Default acu-desk",
                 "Default acu-practitioner", "Default acu-tech", "1 to 200. Default 2",
                 "1 to 200. Default 100", "1s to 60s. Default 3", "1s to 600s each",
                 "50 to 1000 microseconds", "0 to 1023", "199 characters",
                 "can never be relaxed"):
        assert want in text, f"acud.conf(5) lacks {want!r}"


def test_example_in_acud_conf_5_is_valid(tmp_path):
    """The first example of acud.conf(5) is a configuration acud accepts."""
    with open(page("acud.conf.5")) as f:
        src = f.read()
    ex = src.split(".SH EXAMPLES", 1)[1].split(".EX\n", 1)[1].split(".EE", 1)[0]
    conf = tmp_path / "acud.conf"
    conf.write_text(ex.replace("\\-", "-").replace("\\e", "\\"))
    rc, out, err = run([ACUD, "--check-config", "-c", str(conf)])
    assert config_accepted(rc, err), err
