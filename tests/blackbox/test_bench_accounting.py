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
    out = cyclictest_output([(40, 2988), (5000, 1), (5001, 1)])
    r = bench.cyclictest_result(Done(out), 3)
    assert r["due_later_than_5ms"] == 1


def test_overflows_count_as_the_histogram_limit():
    out = cyclictest_output([(40, 2970)], overflows=1, maxlat=35000)
    r = bench.cyclictest_result(Done(out), 3)
    assert r["due"] == 2970 + 1 + bench.HIST_US // 1000
    assert r["due_later_than_5ms"] == (bench.HIST_US - 5000) // 1000


def test_a_cyclictest_that_samples_every_instant_is_not_counted():
    # One 12 ms stall in 30 s, sampled at every instant it made late (12,
    # 11, ... 1 ms): counted back as if skipped, these would add up to more
    # instants than the run had, so no share is given.
    ramp = [(ms * 1000, 1) for ms in range(1, 13)]
    out = cyclictest_output([(40, 30000 - len(ramp))] + ramp)
    r = bench.cyclictest_result(Done(out), 30)
    assert r["due"] is None and r["due_later_than_5ms"] is None
    assert r["later_than_5ms"] == 7


def test_a_run_that_adds_up_is_counted_whatever_its_length():
    out = cyclictest_output([(40, 29988), (12300, 1)])
    r = bench.cyclictest_result(Done(out), 30)
    assert (r["due"], r["due_later_than_5ms"]) == (30001, 8)
    # Overflows hide how long their stalls were: up to the longest of them.
    out = cyclictest_output([(40, 29950)], overflows=1, maxlat=70000)
    r = bench.cyclictest_result(Done(out), 30)
    assert r["due"] == 29950 + 1 + bench.HIST_US // 1000


def p3_result(missed, expected, cyclictest):
    return {"P3": {"deviation": {"n": expected - missed, "p50_us": 20, "p99_us": 50,
                                 "max_us": 900},
                   "cyclictest": cyclictest, "missed": missed, "expected": expected,
                   "missed_reported_by_acud": missed, "secs": 30, "load": {"rps": 1000,
                                                                           "p99_us": 100},
                   "acud_ctx_switches": {"nonvoluntary": 30}}}


def test_the_p3_rows_give_both_shares_or_say_why_not():
    out = cyclictest_output([(40, 29988), (12300, 1)])
    c = bench.cyclictest_result(Done(out), 30)
    rows = [r for r in bench.rows_of(p3_result(5, 25000, c)) if "share" in r["measure"]]
    assert len(rows) == 1
    assert rows[0]["acud"] == "0.02%" and rows[0]["reference"].startswith("0.03% (8 of 30001)")
    assert rows[0]["ratio"] == round((5 / 25000) / (8 / 30001), 3)
    out = cyclictest_output([(40, 29000), (19000, 60)])
    c = bench.cyclictest_result(Done(out), 30)
    rows = [r for r in bench.rows_of(p3_result(5, 25000, c)) if "share" in r["measure"]]
    assert rows[0]["reference"].startswith("?") and rows[0]["ratio"] is None
