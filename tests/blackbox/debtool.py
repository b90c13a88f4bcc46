"""Debian tools some tests need (systemd-analyze, mandoc): installed with apt-get
when missing and running as root, otherwise the test fails naming the command to
run. Never a skip: a check that did not run must not look like one that passed."""

import os
import shutil
import subprocess

import pytest


def need(tool, package):
    """The path of `tool`, installing Debian `package` first if it is missing."""
    path = shutil.which(tool)
    if path:
        return path
    if os.geteuid() != 0:
        pytest.fail(f"{tool} is missing; run: sudo apt-get install {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    for cmd in ([*apt, "install", "-y", "--no-install-recommends", package],
                [*apt, "update"],
                [*apt, "install", "-y", "--no-install-recommends", package]):
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                           timeout=600)
        if p.returncode == 0 and cmd[3] == "install" and shutil.which(tool):
            return shutil.which(tool)
    pytest.fail(f"{tool} is missing and `apt-get install {package}` failed:\n"
                f"{p.stderr.decode(errors='replace')[-2000:]}")
