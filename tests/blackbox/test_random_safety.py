"""Randomized safety run (issue 6): random sequences of every session command,
flags, stimulation on/off, interlock changes, reloads and short sessions expiring,
with rule S2 checked after every step (status + sim state file) and over the whole
sim trace at the end, against the real daemon in real time. See
tests/stress/random_safety.py. The same commands on a virtual clock, tens of
thousands of steps a second, are `make vclock` (tests/vclock/vc_random.c), part
of `make check`.

ACU_RANDOM_STEPS (default 300; `make stress` runs 3000), ACU_SEED (default random; printed on stderr and in
any failure), ACU_TOL (timer lateness allowed, seconds; default 0.15).
"""

import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
import acuproc  # noqa: E402
import random_safety  # noqa: E402


def test_random_safety(capsys):
    steps = int(os.environ.get("ACU_RANDOM_STEPS", "300"))
    seed = int(os.environ.get("ACU_SEED") or random.SystemRandom().randrange(1 << 32))
    tol = float(os.environ.get("ACU_TOL", "0.15"))
    # Printed past pytest's capture, so that every run names its seed.
    with capsys.disabled():
        print(f"\nrandom_safety: ACU_SEED={seed} ACU_RANDOM_STEPS={steps}", flush=True)
    run = random_safety.Run(steps, seed, tol)
    try:
        violations = run.run()
    finally:
        if not run.violations and os.environ.get("ACU_KEEP") != "1":
            acuproc.rmtree(run.dir)
    assert not violations, (
        f"{len(violations)} safety violations; replay with ACU_SEED={seed} "
        f"ACU_RANDOM_STEPS={steps} (scratch dir {run.dir} kept):\n" + "\n".join(violations[:15]))
