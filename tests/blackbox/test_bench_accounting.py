"""make bench's accounting of cyclictest against acud's pulses (bench/run.py).

cyclictest records one sample per stall and skips the 1 ms instants that fell
due meanwhile; P3 compares its share of instants more than 5 ms late with
acud's share of skipped pulses. These check that arithmetic on cyclictest's
own output format, without running either program.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import run as bench  # noqa: E402


class Done:
    """A finished process whose output is text."""

    def __init__(self, text):
        self.text = text

    def communicate(self, timeout=None):
        return self.text, None


def cyclictest_output(bins, overflows=0, maxlat=None):
    """cyclictest -q -h output: one line per µs bin, then its summary lines."""
    lines = ["# Histogram"]
    counts = dict(bins)
    assert max(counts) < bench.HIST_US, "beyond the histogram: an overflow"
    for us in range(0, bench.HIST_US):
        lines.append(f"{us:06d} {counts.get(us, 0):06d}")
    total = sum(counts.values())
    top = maxlat if maxlat is not None else max(counts)
    lines += [f"# Total: {total:09d}", "# Min Latencies: 00001", "# Avg Latencies: 00050",
              f"# Max Latencies: {top:05d}", f"# Histogram Overflows: {overflows:05d}"]
    return "\n".join(lines) + "\n"


def test_a_stall_counts_every_instant_it_made_late():
    # 3 s at 1 ms: 2,990 on time and one 12.3 ms stall, which cyclictest
    # records once and after which it skips the 12 instants due meanwhile.
    out = cyclictest_output([(40, 2987), (12300, 1)])
    r = bench.cyclictest_result(Done(out), 3)
    assert r["samples"] == 2988
    assert r["due"] == 2987 + 13
    # Late by 12.3, 11.3, ..., 5.3 ms: eight instants more than 5 ms late.
    assert r["due_later_than_5ms"] == 8
    assert r["later_than_5ms"] == 1


def test_lateness_at_the_threshold_is_not_late():
    out = cyclictest_output([(40, 2994), (5000, 1), (5001, 1)])
    r = bench.cyclictest_result(Done(out), 3)
    assert r["due_later_than_5ms"] == 1


def test_overflows_count_as_the_histogram_limit():
    out = cyclictest_output([(40, 2970)], overflows=1, maxlat=35000)
    r = bench.cyclictest_result(Done(out), 3)
    assert r["due"] == 2970 + 1 + bench.HIST_US // 1000
    assert r["due_later_than_5ms"] == (bench.HIST_US - 5000) // 1000


def test_a_cyclictest_that_samples_every_instant_is_not_counted():
    # Every instant sampled (no skipping) and a long stall: the instants
    # would be counted twice, so no share is given.
    out = cyclictest_output([(40, 2900), (19000, 100)])
    r = bench.cyclictest_result(Done(out), 3)
    assert r["due"] is None and r["due_later_than_5ms"] is None
    assert r["later_than_5ms"] == 100
