"""make check-web: the black-box harness (tests/blackbox/conftest.py) with its
fixtures, for the browser test and the heavy HTTP abuse tests."""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BLACKBOX = os.path.join(HERE, "..", "blackbox")
sys.path.insert(0, BLACKBOX)
sys.path.insert(0, os.path.join(HERE, "..", "stress"))

_spec = importlib.util.spec_from_file_location("bbconftest", os.path.join(BLACKBOX, "conftest.py"))
_bb = importlib.util.module_from_spec(_spec)
sys.modules["bbconftest"] = _bb
_spec.loader.exec_module(_bb)
globals().update({k: v for k, v in vars(_bb).items() if not k.startswith("__")})
