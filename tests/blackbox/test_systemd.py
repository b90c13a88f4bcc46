"""The systemd integration (issue 7): systemd/acud.service passes
`systemd-analyze verify` (binaries and man pages of its Documentation= found),
scores at most 1.0 with `systemd-analyze security --offline=true`, and has what
SPEC S1 and §9 ask of it; the sysusers.d, tmpfiles.d and udev companions create
what the unit and the example configuration expect."""

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ACUD, REPO
from debtool import need

UNIT = os.path.join(REPO, "systemd", "acud.service")
SYSUSERS = os.path.join(REPO, "systemd", "acud.sysusers")
TMPFILES = os.path.join(REPO, "systemd", "acud.tmpfiles")
UDEV_RULE = os.path.join(REPO, "systemd", "60-acud-gpio.rules")
MAN_PAGES = {"acud.8": "8", "acuctl.1": "1", "acud.conf.5": "5"}
MAX_EXPOSURE = 1.0


@pytest.fixture(scope="module")
def analyze():
    return need("systemd-analyze", "systemd")


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="acusd.", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(cmd, env=None, timeout=120):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def unit_settings(path=UNIT):
    """{(section, key): [values...]} of a unit file (keys may repeat)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def one(settings, key, section="Service"):
    vals = settings.get((section, key))
    assert vals, f"{key}= missing from [{section}] of {UNIT}"
    return vals[-1]


def man_tree(root):
    """The repo's man pages laid out as a MANPATH directory."""
    for page, sec in MAN_PAGES.items():
        d = os.path.join(root, f"man{sec}")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(REPO, "man", page), d)
    return root


def verifiable_unit(tmp, text=None):
    """The unit with its acud paths pointed at the built binary: verify checks that
    every Exec*= command exists and is executable."""
    assert os.access(ACUD, os.X_OK), f"{ACUD} is not built"
    with open(UNIT) as f:
        text = f.read() if text is None else text
    text = text.replace("/usr/sbin/acud", ACUD)
    path = os.path.join(tmp, "acud.service")
    with open(path, "w") as f:
        f.write(text)
    return path


def verify(analyze, tmp, unit):
    env = dict(os.environ, MANPATH=man_tree(os.path.join(tmp, "man")),
               SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat")
    # --man=yes: every man: page of Documentation= must be found (on MANPATH).
    return run([analyze, "verify", "--man=yes", unit], env=env)


# --- systemd-analyze verify ---------------------------------------------------

def test_verify_is_clean(analyze, tmp):
    rc, out, err = verify(analyze, tmp, verifiable_unit(tmp))
    assert rc == 0 and not out.strip() and not err.strip(), \
        f"systemd-analyze verify: rc {rc}\n{out}{err}"


def test_verify_catches_mistakes(analyze, tmp):
    """The check is real: a misspelt directive and a missing binary are reported."""
    with open(UNIT) as f:
        text = f.read()
    bad = text.replace("[Service]\n", "[Service]\nWatchdogSecs=10s\n", 1)
    rc, out, err = verify(analyze, tmp, verifiable_unit(tmp, bad))
    assert "WatchdogSecs" in out + err, f"misspelt key not reported:\n{out}{err}"
    missing = text.replace("/usr/sbin/acud -f", "/nonexistent/acud -f")
    rc, out, err = verify(analyze, tmp, verifiable_unit(tmp, missing))
    assert rc != 0 and "/nonexistent/acud" in out + err, f"rc {rc}\n{out}{err}"


def test_web_socket_verifies(analyze, tmp):
    """acud-web.socket (SPEC §10) passes verify beside the unit it activates, and
    hands acud a socket named web; the service keeps its private network."""
    verifiable_unit(tmp)
    sock = os.path.join(tmp, "acud-web.socket")
    shutil.copy(os.path.join(REPO, "systemd", "acud-web.socket"), sock)
    rc, out, err = verify(analyze, tmp, sock)
    assert rc == 0 and not out.strip() and not err.strip(), \
        f"systemd-analyze verify: rc {rc}\n{out}{err}"
    s = unit_settings(sock)
    assert s[("Socket", "Service")] == ["acud.service"]
    assert s[("Socket", "FileDescriptorName")] == ["web"]
    assert one(unit_settings(), "PrivateNetwork") == "yes"
    assert one(unit_settings(), "RestrictAddressFamilies") == "AF_UNIX"


# --- systemd-analyze security -------------------------------------------------

def exposure(analyze, unit):
    rc, out, err = run([analyze, "security", "--offline=true", "--no-pager", unit],
                       env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0"))
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out + err)
    assert m, f"no 'Overall exposure level' line (rc {rc}):\n{out}{err}"
    return float(m.group(1)), out + err


def test_security_exposure_at_most_1(analyze):
    score, report = exposure(analyze, UNIT)
    assert score <= MAX_EXPOSURE, \
        f"exposure {score} > {MAX_EXPOSURE}:\n" + "\n".join(
            l for l in report.splitlines() if "✗" in l or "Overall" in l)


def test_security_score_is_parsed_from_a_real_report(analyze, tmp):
    """A unit without hardening scores badly: the parse reads the real number."""
    bare = os.path.join(tmp, "bare.service")
    with open(bare, "w") as f:
        f.write("[Service]\nExecStart=/bin/true\n")
    score, _ = exposure(analyze, bare)
    assert score > 5.0


# --- what the unit must say ------------------------------------------------------

def test_unit_contract():
    s = unit_settings()
    assert one(s, "Type") == "notify"
    assert re.fullmatch(r"\d+(ms|s|min)?", one(s, "WatchdogSec")), one(s, "WatchdogSec")
    assert re.search(r"kill\s+-(HUP|SIGHUP|s\s+HUP)\s+\$MAINPID", one(s, "ExecReload"))
    conf = "/etc/acud/acud.conf"
    start = one(s, "ExecStart")
    assert start.split()[0] == "/usr/sbin/acud" and f"-c {conf}" in start, start
    # SPEC S1: a crash too ends with the outputs off.
    post = one(s, "ExecStopPost")
    assert post.split()[0].lstrip("-+!@:") == "/usr/sbin/acud", post
    assert "--all-off" in post and f"-c {conf}" in post, post
    pre = one(s, "ExecStartPre")
    assert "--check-config" in pre and f"-c {conf}" in pre, pre
    assert one(s, "User") == "acud"
    assert one(s, "RuntimeDirectory") == "acud"
    assert one(s, "StateDirectory") == "acud"
    assert one(s, "Restart") in ("on-failure", "always", "on-abnormal")
    # SPEC §8: a ceiling on memory (a leak ends in a kill, all-off and a
    # restart), well above what acud holds for clients (4 MiB for all watchers).
    m = re.fullmatch(r"(\d+)([KMG])", one(s, "MemoryMax"))
    assert m, one(s, "MemoryMax")
    mib = int(m.group(1)) * {"K": 1 / 1024, "M": 1, "G": 1024}[m.group(2)]
    assert 16 <= mib <= 256, one(s, "MemoryMax")
    assert one(s, "MemorySwapMax") == "0"


def test_unit_sandbox_leaves_what_acud_needs():
    s = unit_settings()
    # The GPIO chips: PrivateDevices= would hide /dev/gpiochip*.
    assert s.get(("Service", "PrivateDevices"), ["no"])[-1] in ("no", "false", "0")
    allow = " ".join(s.get(("Service", "DeviceAllow"), []))
    assert re.search(r"(char-gpiochip|/dev/gpiochip\*?)\s+rw", allow), allow
    assert one(s, "RestrictAddressFamilies") == "AF_UNIX"
    groups = one(s, "SupplementaryGroups").split()
    assert "gpio" in groups and socket_group() in groups, groups
    assert one(s, "ProtectSystem") == "strict"
    # PrivateUsers= would turn every peer into nobody: no roles.
    assert s.get(("Service", "PrivateUsers"), ["no"])[-1] in ("no", "false", "0")
    # ProcSubset=pid would hide /proc/sys/kernel/random/boot_id (restart detection).
    assert s.get(("Service", "ProcSubset"), ["all"])[-1] == "all"
    # The socket's group is set with chown(2): not filtered out.
    filters = s.get(("Service", "SystemCallFilter"), [])
    assert filters and "@chown" in filters[-1].split(), filters


# --- sysusers.d, tmpfiles.d, udev -------------------------------------------------

def socket_group():
    """[access] socket_group of the example configuration."""
    section = None
    with open(os.path.join(REPO, "etc", "acud.conf")) as f:
        for line in f:
            line = line.split(";")[0].strip()
            if line.startswith("["):
                section = line
            elif section == "[access]" and line.startswith("socket_group"):
                return line.partition("=")[2].strip()
    pytest.fail("etc/acud.conf has no [access] socket_group")


def test_sysusers_creates_user_and_groups(tmp):
    sysusers = need("systemd-sysusers", "systemd")
    os.makedirs(os.path.join(tmp, "etc"))
    d = os.path.join(tmp, "usr", "lib", "sysusers.d")
    os.makedirs(d)
    shutil.copy(SYSUSERS, os.path.join(d, "acud.conf"))
    rc, out, err = run([sysusers, f"--root={tmp}"])
    assert rc == 0, err
    with open(os.path.join(tmp, "etc", "group")) as f:
        groups = {l.split(":")[0]: l.strip().split(":")[3].split(",") for l in f if l.strip()}
    with open(os.path.join(tmp, "etc", "passwd")) as f:
        users = {l.split(":")[0]: l.strip().split(":") for l in f if l.strip()}
    # SPEC §6 roles with their default group names, the socket's group, the chips'.
    for g in ("acu-desk", "acu-practitioner", "acu-tech", socket_group(), "gpio"):
        assert g in groups, f"group {g} not created: {sorted(groups)}"
    assert "acud" in users, users
    acud = users["acud"]
    assert int(acud[2]) < 1000, "acud must be a system user"
    assert acud[6].endswith("nologin"), acud
    assert acud[5] == "/var/lib/acud", acud
    for g in unit_settings()[("Service", "SupplementaryGroups")][-1].split():
        assert g in groups, f"SupplementaryGroups={g} is not created by acud.sysusers"


def test_tmpfiles_creates_directories(tmp):
    sysusers = need("systemd-sysusers", "systemd")
    tmpfiles = need("systemd-tmpfiles", "systemd")
    os.makedirs(os.path.join(tmp, "etc"))
    for src, sub in ((SYSUSERS, "sysusers.d"), (TMPFILES, "tmpfiles.d")):
        d = os.path.join(tmp, "usr", "lib", sub)
        os.makedirs(d)
        shutil.copy(src, os.path.join(d, "acud.conf"))
    assert run([sysusers, f"--root={tmp}"])[0] == 0
    rc, out, err = run([tmpfiles, f"--root={tmp}", "--create"])
    assert rc == 0, err
    with open(os.path.join(tmp, "etc", "passwd")) as f:
        uid = {l.split(":")[0]: int(l.split(":")[2]) for l in f if l.strip()}["acud"]
    s = unit_settings()
    st = os.stat(os.path.join(tmp, "var", "lib", "acud"))
    assert st.st_uid == uid
    assert oct(st.st_mode & 0o7777) == oct(int(one(s, "StateDirectoryMode"), 8))
    for d in ("etc/acud", "etc/acud/profiles.d"):
        st = os.stat(os.path.join(tmp, d))
        assert st.st_uid == 0 and st.st_mode & 0o7777 == 0o755, d


def test_udev_rule_gives_gpio_group_the_chips():
    rules = []
    with open(UDEV_RULE) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                pairs = re.findall(r'([A-Z]+)(==|=|\+=)"([^"]*)"', line)
                assert pairs, f"not a udev rule: {line}"
                rules.append({k: v for k, _, v in pairs})
    assert rules, "no rule"
    hits = [r for r in rules if r.get("SUBSYSTEM") == "gpio" and
            fnmatch.fnmatch("gpiochip0", r.get("KERNEL", "*")) and
            fnmatch.fnmatch("gpiochip4", r.get("KERNEL", "*"))]
    assert hits, rules
    assert hits[0].get("GROUP") == "gpio" and hits[0].get("MODE") in ("0660", "0664"), hits
    with open(SYSUSERS) as f:
        assert re.search(r"^g\s+gpio\s", f.read(), re.M), "acud.sysusers does not create gpio"
