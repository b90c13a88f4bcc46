"""`make install` / `make uninstall` (issue 7) with PREFIX and DESTDIR: the exact
list of files, their modes, the unit naming the installed binary, the example
configuration never overwritten, and uninstall taking everything back but a
configuration the technician changed."""

import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import REPO, config_accepted

MAKE = shutil.which("make") or "make"


def wired():
    """Whether the main Makefile's install runs install-extra itself; until then
    the test asks for both targets."""
    with open(os.path.join(REPO, "Makefile")) as f:
        text = f.read()
    return bool(re.search(r"^\t.*\binstall-extra\b", text, re.M) or
                re.search(r"^install:.*\binstall-extra\b", text, re.M))


def make(*targets, **vars):
    if not wired():
        targets = tuple(t2 for t in targets for t2 in
                        ((t, f"{t}-extra") if t in ("install", "uninstall") else (t,)))
    # `install` builds `all` first: keep the variant the suite runs (SANITIZE=1
    # relinks to build/san), or the binaries under test would change under it.
    if ("SANITIZE" not in os.environ.get("MAKEFLAGS", "") and
            os.path.exists(os.path.join(REPO, "build", "san", ".variant"))):
        vars.setdefault("SANITIZE", "1")
    cmd = [MAKE, "--no-print-directory", "-C", REPO, *targets,
           *(f"{k}={v}" for k, v in vars.items())]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    return out


def tree(root):
    """{relative path: mode} of every file and symlink under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def example_profiles():
    d = os.path.join(REPO, "etc", "profiles.d")
    return sorted(f for f in os.listdir(d) if f.endswith(".conf"))


def expected(prefix):
    p = prefix.strip("/")
    files = {
        f"{p}/sbin/acud": 0o755,
        f"{p}/bin/acuctl": 0o755,
        f"{p}/share/man/man1/acuctl.1": 0o644,
        f"{p}/share/man/man5/acud.conf.5": 0o644,
        f"{p}/share/man/man8/acud.8": 0o644,
        f"{p}/share/bash-completion/completions/acuctl": 0o644,
        f"{p}/lib/systemd/system/acud.service": 0o644,
        f"{p}/lib/systemd/system/acud-web.socket": 0o644,
        f"{p}/lib/sysusers.d/acud.conf": 0o644,
        f"{p}/lib/tmpfiles.d/acud.conf": 0o644,
        f"{p}/lib/udev/rules.d/60-acud-gpio.rules": 0o644,
        f"{p}/share/acud/acud-mqtt.conf": 0o644,
        "etc/acud/acud.conf": 0o644,
    }
    for f in example_profiles():
        files[f"etc/acud/profiles.d/{f}"] = 0o644
    return files


@pytest.fixture
def destdir():
    d = tempfile.mkdtemp(prefix="acuinst.", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def fmt(files):
    return "\n".join(f"  {oct(m)} {f}" for f, m in sorted(files.items()))


def test_install_packaging_layout(destdir):
    make("install", DESTDIR=destdir, PREFIX="/usr")
    got, want = tree(destdir), expected("/usr")
    assert got == want, f"installed:\n{fmt(got)}\nexpected:\n{fmt(want)}"
    # What was installed is what the checkout has.
    for src, dst in (("man/acud.8", "usr/share/man/man8/acud.8"),
                     ("cli/acuctl.bash-completion",
                      "usr/share/bash-completion/completions/acuctl"),
                     ("systemd/acud.sysusers", "usr/lib/sysusers.d/acud.conf"),
                     ("systemd/acud.tmpfiles", "usr/lib/tmpfiles.d/acud.conf"),
                     ("etc/acud.conf", "etc/acud/acud.conf")):
        with open(os.path.join(REPO, src), "rb") as a, \
                open(os.path.join(destdir, dst), "rb") as b:
            assert a.read() == b.read(), dst
    # PREFIX=/usr is the case systemd/acud.service is written for: unchanged.
    with open(os.path.join(REPO, "systemd", "acud.service")) as a, \
            open(os.path.join(destdir, "usr/lib/systemd/system/acud.service")) as b:
        assert a.read() == b.read()
    # The installed daemon runs and accepts the installed example.
    p = subprocess.run([os.path.join(destdir, "usr/sbin/acud"), "--check-config", "-c",
                        os.path.join(destdir, "etc/acud/acud.conf")], capture_output=True)
    assert config_accepted(p.returncode, p.stderr.decode(errors="replace")), p.stderr


def test_unit_names_the_installed_binary(destdir):
    make("install", DESTDIR=destdir, PREFIX="/usr/local")
    got, want = tree(destdir), expected("/usr/local")
    assert got == want, f"installed:\n{fmt(got)}\nexpected:\n{fmt(want)}"
    with open(os.path.join(destdir, "usr/local/lib/systemd/system/acud.service")) as f:
        unit = f.read()
    execs = re.findall(r"^(Exec\w+)=(.*)$", unit, re.M)
    acud_execs = [v for k, v in execs if "acud" in v.split()[0]]
    assert len(acud_execs) == 3, execs
    for v in acud_execs:
        assert v.split()[0] == "/usr/local/sbin/acud", v
        assert "-c /etc/acud/acud.conf" in v, v
    assert "/usr/sbin/acud" not in unit


def test_existing_configuration_is_kept(destdir):
    make("install", DESTDIR=destdir, PREFIX="/usr")
    conf = os.path.join(destdir, "etc/acud/acud.conf")
    with open(conf, "a") as f:
        f.write("; the technician's own\n")
    with open(conf) as f:
        mine = f.read()
    make("install", DESTDIR=destdir, PREFIX="/usr")
    with open(conf) as f:
        assert f.read() == mine, "make install overwrote the configuration"
    make("uninstall", DESTDIR=destdir, PREFIX="/usr")
    # The changed configuration stays; everything else, the unchanged example
    # profiles included, is gone.
    assert tree(destdir) == {"etc/acud/acud.conf": 0o644}, fmt(tree(destdir))
    with open(conf) as f:
        assert f.read() == mine


def test_uninstall_removes_every_file(destdir):
    make("install", DESTDIR=destdir, PREFIX="/usr")
    make("uninstall", DESTDIR=destdir, PREFIX="/usr")
    assert tree(destdir) == {}, f"left behind:\n{fmt(tree(destdir))}"
    assert not os.path.exists(os.path.join(destdir, "etc/acud")), "empty config dir left"
    # Uninstalling twice is not an error.
    make("uninstall", DESTDIR=destdir, PREFIX="/usr")
