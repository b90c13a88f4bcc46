#!/usr/bin/env bash
# The black-box suite with every acud process under valgrind (issue 6): memcheck,
# full leak check, definite and indirect leaks count as errors. Every acud run
# (daemon, --check-config, --all-off) writes build/valgrind/vg.PID.log; the run
# fails if pytest fails or any log reports an error or a leak.
#
#   tests/valgrind.sh [PYTEST ARGS...]        e.g. tests/valgrind.sh -k watch
#
# acud is wrapped by the pytest plugin tests/acud_valgrind.py (it rewrites
# subprocess calls whose program is ./acud, so --check-config and --all-off runs
# are checked too, not only the daemon). Timing-heavy tests get slack through
# ACU_TOL / ACU_TIMER_SLACK / ACU_RESPONSE_BOUND and smaller stress runs;
# VALGRIND_XFAIL names tests whose real-time or RSS assertions valgrind itself
# breaks (they still run and their memory is checked, but may fail);
# VALGRIND_DESELECT (a pytest -k expression) skips tests altogether.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
LOGDIR=${VALGRIND_LOGDIR:-$REPO/build/valgrind}

command -v valgrind >/dev/null || {
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y valgrind >&2 || { apt-get update && apt-get install -y valgrind >&2; }
	else
		echo "valgrind missing; run: sudo apt-get install valgrind" >&2; exit 2
	fi
}
make -s acud acuctl || exit 2

rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
export ACUD_VALGRIND="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
--errors-for-leak-kinds=definite,indirect --error-exitcode=97 --num-callers=40 \
--log-file=$LOGDIR/vg.%p.log"
unset ACUD_WRAPPER

export ACU_TOL=${ACU_TOL:-1.0}                 # random_safety: timer lateness
export ACU_TIMER_SLACK=${ACU_TIMER_SLACK:-3}   # test_limits: a 2 s session's lateness
export ACU_RESPONSE_BOUND=${ACU_RESPONSE_BOUND:-10}  # test_limits: the normal client's wait
export ACU_RANDOM_STEPS=${ACU_RANDOM_STEPS:-300}
export ACU_CRASH_CYCLES=${ACU_CRASH_CYCLES:-20}
export ACU_DAMAGE_STRIDE=${ACU_DAMAGE_STRIDE:-25}
# Also: valgrind delivers SIGBUS/SIGSYS itself and its epoll emulation trips a
# libevent assertion under a storm of ignored signals (test_faults); RSS
# bounds measure valgrind's own memory (test_watch); valgrind runs one thread at
# a time, so the pulse thread's figures under a CPU hog are valgrind's (test_realtime).
export VALGRIND_XFAIL=${VALGRIND_XFAIL:-test_pulses_100hz,test_slow_watcher_is_dropped_and_memory_bounded,test_stalled_watchers_together_hold_bounded_memory,test_f6_fault_signals_drive_outputs_off[SIGBUS],test_f6_fault_signals_drive_outputs_off[SIGSYS],test_f6_meaningless_signals_are_ignored,test_rt_pulses_keep_rate_under_cpu_hog,test_rt_expiry_cut_on_time_under_cpu_hog,test_f6_reload_keeps_pulse_phase}
export PYTHONPATH="$REPO/tests${PYTHONPATH:+:$PYTHONPATH}"

# Two workers (pytest-xdist, the groups of make check): valgrind is CPU-bound
# and serial, and this stage is CI's longest. VALGRIND_JOBS=1: one process.
jobs=${VALGRIND_JOBS:-2}
args=(-q -p no:cacheprovider -p acud_valgrind -rxX)
[ "$jobs" != 1 ] && args+=(-n "$jobs" --dist loadgroup)
[ -n "${VALGRIND_DESELECT:-}" ] && args+=(-k "not ($VALGRIND_DESELECT)")

start=$(date +%s)
"$PYTHON" -m pytest "${args[@]}" "$@" tests/blackbox
rc=$?
secs=$(( $(date +%s) - start ))

# Every log: errors (invalid reads, uninitialised values...) and leaks. With
# --quiet a clean run leaves its log empty.
nlogs=$(find "$LOGDIR" -name 'vg.*.log' | wc -l)
bad=0
for f in "$LOGDIR"/vg.*.log; do
	[ -s "$f" ] || continue
	if grep -qE 'Invalid|uninitialised|definitely lost|indirectly lost|Mismatched|overlap|Syscall param|ERROR SUMMARY: [1-9]' "$f"; then
		bad=$((bad + 1))
		echo "=== valgrind: $f" >&2
		head -60 "$f" >&2
	fi
done
echo "valgrind: $nlogs acud processes checked in ${secs}s; $bad with errors or leaks; pytest exit $rc"
[ "$rc" = 0 ] && [ "$bad" = 0 ]
