"""The MQTT tests (make check-mqtt) start acud boards the way the black-box
suite does: its conftest is loaded under another name and re-exported here, so
its fixtures, its failure reports (each daemon's stderr) and the helpers in
simgpio.py work the same."""

import importlib.util
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BLACKBOX = os.path.join(HERE, "..", "blackbox")
sys.path.insert(0, BLACKBOX)
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location("acud_blackbox_conftest",
                                               os.path.join(BLACKBOX, "conftest.py"))
_bb = importlib.util.module_from_spec(_spec)
sys.modules["acud_blackbox_conftest"] = _bb
_spec.loader.exec_module(_bb)
from acud_blackbox_conftest import *  # noqa: E402,F401,F403
from acud_blackbox_conftest import make_daemon, _track_daemons  # noqa: E402,F401

import broker as brokerlib  # noqa: E402


@pytest.fixture(scope="session")
def pki():
    d = _bb.make_tmpdir()
    brokerlib.make_pki(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_brokers = []


@pytest.fixture
def broker(pki):
    """A fresh mosquitto for each test (retained state starts empty)."""
    work = _bb.make_tmpdir()
    b = brokerlib.Broker(pki, work)
    _brokers.append(b)
    b.start()
    yield b
    b.stop()
    _brokers.remove(b)
    shutil.rmtree(work, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each daemon's stderr (the black-box suite's report) and the broker's log."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in list(_bb._current_daemons):
            rep.sections.append((f"acud stderr ({d.dir})", d.stderr()[-6000:]))
        for b in _brokers:
            rep.sections.append(("mosquitto log", b.log_text()[-4000:]))
