"""Crash loop and damaged state files (issue 6, SPEC S1 and §8); see
tests/stress/crash_loop.py. ACU_CRASH_CYCLES (default 40), ACU_CRASH_FULL_CYCLES
(default 30), ACU_SEED (default random; printed), ACU_DAMAGE_STRIDE (test every Nth
byte; default 7; 1: every byte boundary of the ~500-byte example, each byte
damaged five ways). `make crashloop` runs them in full: 200 cycles, 200 full-disk
cycles, stride 1. Every byte of the state file parser is also exercised in
process by the fuzz targets."""

import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
import acuproc  # noqa: E402
import crash_loop  # noqa: E402


def test_crash_loop(capsys):
    cycles = int(os.environ.get("ACU_CRASH_CYCLES", "40"))
    seed = int(os.environ.get("ACU_SEED") or random.SystemRandom().randrange(1 << 32))
    with capsys.disabled():
        print(f"\ncrash_loop: ACU_SEED={seed} ACU_CRASH_CYCLES={cycles}", flush=True)
    cl = crash_loop.CrashLoop(cycles, seed)
    problems = cl.run()
    if not problems:
        acuproc.rmtree(cl.dir)
    assert not problems, (f"{len(problems)} problems (seed {seed}, dir {cl.dir} kept):\n"
                          + "\n".join(problems[:15]))


def test_crash_loop_full_disk(capsys):
    """The crash loop with state_dir on a small tmpfs that fills and empties
    (SPEC S9): kills, restarts and load with the disk full."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to mount a small tmpfs as state_dir")
    cycles = int(os.environ.get("ACU_CRASH_FULL_CYCLES", "30"))
    seed = int(os.environ.get("ACU_SEED") or random.SystemRandom().randrange(1 << 32))
    with capsys.disabled():
        print(f"\ncrash_loop full disk: ACU_SEED={seed} ACU_CRASH_FULL_CYCLES={cycles}",
              flush=True)
    cl = crash_loop.CrashLoop(cycles, seed, full_disk=True)
    try:
        problems = cl.run()
    finally:
        cl.cleanup()
    assert cl.stats["full_cycles"] > 0 and cl.stats["refused_storage"] > 0, cl.stats
    if not problems:
        acuproc.rmtree(cl.dir)
    assert not problems, (f"{len(problems)} problems (seed {seed}, dir {cl.dir} kept):\n"
                          + "\n".join(problems[:15]))


def _damaged(mode):
    stride = int(os.environ.get("ACU_DAMAGE_STRIDE", "7"))
    problems, n, secs = crash_loop.damaged_states(mode, stride)
    assert n > 0
    assert not problems, f"{len(problems)} of {n} damaged state files mishandled:\n" + \
        "\n".join(problems[:15])


def test_truncated_state_files():
    """Every byte boundary: the daemon starts, the file is kept aside, rooms flagged."""
    _damaged("truncate")


def test_corrupted_state_files():
    """Every byte replaced five ways: the daemon starts; a file that is not JSON is
    kept aside unchanged and the room flagged for attention."""
    _damaged("corrupt")
