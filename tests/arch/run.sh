#!/bin/bash
# make check-arch ARCH=arm64|armhf: acud built and tested on another architecture,
# in a Debian root file system of that architecture run under qemu-user.
#
#   ARCH=arm64   Debian 13 trixie   (64-bit; libgpiod 2.x)
#   ARCH=armhf   Debian 12 bookworm (32-bit long, 32-bit time_t; libgpiod 1.6)
#   ARCH=amd64   Debian 13 trixie   (this host's architecture, no emulation: the
#                libgpiod 2 build on an x86 host, and make vmtest's second kernel)
#
# The root file system is made once with debootstrap --foreign (qemu-user-static
# and binfmt_misc run its second stage) and the build and test packages are
# installed in it with apt-get; it is cached with the build tree inside it, so a
# second run only copies the checkout in and rebuilds what changed. Then, inside
# it: `make WERROR=1`, the unit tests, the virtual-clock runs (`make vclock`),
# `acud --check-config -c etc/demo.conf`, `make demo` with a session started on
# it through acuctl, and
# the black-box suite (ACUD_ARCH_TESTS: `full` = all of tests/blackbox, `quick` =
# the named subset below, `none`). Every run happens in a private mount namespace,
# so no mount outlives it. Exits non-zero on any failure; never skips a stage.
#
# Environment:
#   ACUD_ARCH_CACHE   root file systems (default /var/cache/acud-arch as root,
#                     else ${XDG_CACHE_HOME:-~/.cache}/acud-arch)
#   ACUD_ARCH_SUITE   Debian suite (default: trixie for arm64, bookworm for armhf)
#   ACUD_ARCH_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   ACUD_ARCH_TESTS   full | quick | ci (CI's smaller subset) | none (unit tests only) | build (make all only:
#                     make vmtest's libgpiod 2 acud) | test paths, e.g.
#                     tests/blackbox/test_lock.py (default full)
#   ACUD_ARCH_PYTEST  extra pytest arguments (e.g. "-k watch")
#   ACUD_ARCH_JOBS    pytest workers for the black-box suite (default 2)
#   ACUD_ARCH_DESELECT pytest -k expression of tests left out (default: the 100 Hz
#                     pulse-timing test, whose real-time bounds emulation breaks,
#                     as `make valgrind` xfails it, and the two stuck-save tests,
#                     whose fsfreeze qemu-user does not implement (FIFREEZE:
#                     "Function not implemented"); empty runs them too)
#   ACUD_ARCH_REFRESH 1: apt-get update and upgrade the cached root first
#   ACUD_ARCH_BACKPORTS 1: libgpiod-dev from SUITE-backports (bookworm: libgpiod
#                     2.1), in the root SUITE-backports-ARCH
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
arch=${ARCH:-${1:-}}
tests=${ACUD_ARCH_TESTS:-full}
mirror=${ACUD_ARCH_MIRROR:-http://deb.debian.org/debian}

say() { echo "check-arch: $*" >&2; }
die() { echo "check-arch: $*" >&2; exit 1; }

case "$arch" in
amd64) qarch=; suite=${ACUD_ARCH_SUITE:-trixie} ;;
arm64) qarch=aarch64; suite=${ACUD_ARCH_SUITE:-trixie} ;;
armhf) qarch=arm; suite=${ACUD_ARCH_SUITE:-bookworm} ;;
*) die "ARCH must be amd64, arm64 or armhf (got '${arch}')" ;;
esac
case "$tests" in full | quick | ci | none | build | tests/*) ;;
*) die "ACUD_ARCH_TESTS must be full, quick, ci, none, build or test paths" ;; esac
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, binfmt_misc): run it with sudo"

if [ "$(id -u)" = 0 ]; then
	cache=${ACUD_ARCH_CACHE:-/var/cache/acud-arch}
else
	cache=${ACUD_ARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/acud-arch}
fi
# ACUD_ARCH_BACKPORTS=1: libgpiod-dev from SUITE-backports (bookworm's 2.1), in
# a root of its own so the plain one keeps the suite's libgpiod.
bpo=${ACUD_ARCH_BACKPORTS:-0}
name=$suite-$arch
[ "$bpo" != 1 ] || name=$suite-backports-$arch
root=$cache/$name
src=/src/acud   # the checkout's copy, inside the root

# What the build, the unit tests and the black-box suite use. systemd gives
# systemd-analyze, -sysusers and -tmpfiles (test_systemd); mandoc and man-db
# (test_man); faketime (test_storage); tmux (test_board).
# procps: the unit's ExecReload=/bin/kill, which systemd-analyze verify checks.
# e2fsprogs: mkfs.ext4 for test_stuck_save (not in trixie's minbase).
# dpkg-dev: dpkg-buildflags, which tells the Makefile whether time_t is 64-bit.
# CI's subset needs only the first line and python: under emulation every
# package's scripts run slowly (systemd's and man-db's most), so a cold CI
# root installs that much and a later full run adds the rest.
PKGS="gcc make libc6-dev dpkg-dev pkg-config libevent-dev libjansson-dev libinih-dev libgpiod-dev libmosquitto-dev
python3 python3-pytest python3-pytest-xdist procps"
PKGS_MORE="systemd e2fsprogs mandoc man-db faketime tmux bash-completion"
case "$tests" in ci | none | build) ;; *) PKGS="$PKGS $PKGS_MORE" ;; esac

# The named subset (ACUD_ARCH_TESTS=quick): config loading (directory reading,
# the EOVERFLOW of a 32-bit build without LFS), the protocol and the CLI, timers
# and stimulation on the sim backend, persistence and restart arithmetic, the
# history's day files (dates), sd_notify and watchers.
QUICK="test_config.py test_protocol.py test_cli.py test_sessions.py test_stim.py
test_persistence.py test_history.py test_notify.py test_watch.py"
# CI's subset (ACUD_ARCH_TESTS=ci), where a 32-bit build broke before: config
# loading (directory reading), timers and stimulation, the state file and
# restart arithmetic, the history's dates.
CI_SET="test_config.py test_stim.py test_persistence.py test_history.py"

t_start=$(date +%s)
stamp() { echo $(($(date +%s) - t_start)); }

# --- inside the private mount namespace ---------------------------------------
if [ "${1:-}" = --inside ]; then
	stage=$2
	# The root a mount point of its own, as / is on a machine: `unshare --mount`
	# (test_storage's reboot tests) cannot make / private otherwise.
	mount --bind "$root" "$root"
	mount -t proc proc "$root/proc"
	if [ "$stage" = bootstrap ]; then
		chroot "$root" /debootstrap/debootstrap --second-stage >&2
		exit 0
	fi
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
	mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	in_root() {
		chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
	}
	case "$stage" in
	packages)
		# No service starts in the chroot.
		printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
		chmod 0755 "$root/usr/sbin/policy-rc.d"
		# A throw-away test root: no fsync for each file dpkg unpacks, and no
		# man page index rebuilt after every package (slow under emulation).
		echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/acud-unsafe-io"
		echo 'man-db man-db/auto-update boolean false' | in_root debconf-set-selections
		in_root apt-get update -q >&2
		[ "${ACUD_ARCH_REFRESH:-0}" = 1 ] && in_root apt-get -y -q upgrade >&2
		# shellcheck disable=SC2086
		in_root apt-get install -y -q --no-install-recommends $PKGS >&2
		if [ "$bpo" = 1 ]; then
			echo "deb $mirror $suite-backports main" >"$root/etc/apt/sources.list.d/backports.list"
			in_root apt-get update -q >&2
			in_root apt-get install -y -q --no-install-recommends -t "$suite-backports" libgpiod-dev >&2
			in_root apt-cache policy libgpiod-dev >&2
		fi
		in_root apt-get clean
		;;
	test)
		shift 2
		in_root bash -c "$*"
		;;
	esac
	exit 0
fi

# --- host tools and binfmt_misc ---------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -z "$qarch" ] || [ -x /usr/bin/qemu-$qarch-static ] || need+=(qemu-user-static)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; } ||
		die "apt-get install ${need[*]} failed"
fi
bf=/proc/sys/fs/binfmt_misc
# amd64 (this host's own architecture, for libgpiod 2 and vmtest): no emulation.
if [ -n "$qarch" ] && [ ! -e "$bf/qemu-$qarch" ]; then
	[ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf" ||
		die "cannot mount binfmt_misc on $bf"
	if [ ! -e "$bf/qemu-$qarch" ]; then
		conf=/usr/lib/binfmt.d/qemu-$qarch.conf
		[ -f "$conf" ] || die "$conf missing (qemu-user-static)"
		say "registering qemu-$qarch with binfmt_misc ($conf)"
		# F: the interpreter is opened now, so it works inside the chroot too.
		grep -v '^#' "$conf" > "$bf/register" || die "cannot register qemu-$qarch in binfmt_misc"
	fi
fi
[ -z "$qarch" ] || grep -q '^enabled' "$bf/qemu-$qarch" || die "binfmt_misc: qemu-$qarch is registered but disabled"
[ -z "$qarch" ] || grep -q '^flags: .*F' "$bf/qemu-$qarch" ||
	die "binfmt_misc: qemu-$qarch lacks the F flag; a chroot cannot find its interpreter"

# --- the root file system, cached -----------------------------------------------------
mkdir -p "$cache"
exec 9>"$cache/$name.lock"
flock -w 1800 9 || die "cannot lock $cache/$name.lock"

inside() { unshare --mount --propagation private "$0" --inside "$@"; }
export ARCH=$arch ACUD_ARCH_CACHE=$cache ACUD_ARCH_SUITE=$suite ACUD_ARCH_BACKPORTS=$bpo ACUD_ARCH_TESTS=$tests

if [ ! -f "$root/.acud-base" ]; then
	say "debootstrap $suite $arch (minbase) into $root"
	rm -rf "$root"
	debootstrap --foreign --arch="$arch" --variant=minbase "$suite" "$root" "$mirror" >&2 ||
		die "debootstrap --foreign $suite $arch failed"
	say "second stage${qarch:+ under qemu-$qarch} ($(stamp) s)"
	inside bootstrap || die "debootstrap --second-stage failed (see $root/debootstrap/debootstrap.log)"
	touch "$root/.acud-base"
	say "root file system ready ($(stamp) s)"
fi
# .acud-pkgs lists what is installed: a run installs only when it wants more.
want=$(echo $PKGS | tr ' ' '\n' | sort -u)
[ "$bpo" != 1 ] || want="$want libgpiod-dev/$suite-backports"
have=$({ cat "$root/.acud-pkgs" 2>/dev/null || true; } | tr ' ' '\n' | sed '/^$/d' | sort -u)
if [ -n "$(comm -23 <(echo "$want") <(echo "$have"))" ] || [ "${ACUD_ARCH_REFRESH:-0}" = 1 ]; then
	say "apt-get install in the $suite $arch root ($(stamp) s)"
	inside packages || die "apt-get install in the $suite $arch root failed"
	printf '%s\n%s\n' "$want" "$have" | sed '/^$/d' | sort -u > "$root/.acud-pkgs"
	say "packages ready ($(stamp) s)"
fi

# --- the checkout, copied in (its build tree stays between runs) -----------------------
mkdir -p "$root$src"
find "$root$src" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
"$top/tests/checkout-copy.sh" "$top" "$root$src"

# --- build and tests inside ------------------------------------------------------------
case "$tests" in
full) sel=tests/blackbox ;;
quick) sel=$(for t in $QUICK; do printf 'tests/blackbox/%s ' "$t"; done) ;;
ci) sel=$(for t in $CI_SET; do printf 'tests/blackbox/%s ' "$t"; done) ;;
none | build) sel= ;;
*) sel=$tests ;;
esac
deselect=${ACUD_ARCH_DESELECT-test_pulses_100hz or save_is_stuck}
# Two workers, with make check's groups (timing tests share one): emulation is
# CPU-bound. ACUD_ARCH_JOBS=1: one process.
jobs=${ACUD_ARCH_JOBS:-2}
xdist=
[ "$jobs" = 1 ] || xdist="-n $jobs --dist loadgroup"
kexpr=
[ -z "$deselect" ] || kexpr="-k 'not ($deselect)'"
# Emulation is 5-20 times slower than the host: the timing bounds get the slack
# `make valgrind` gives them, and the randomized and crash runs are shorter.
# The history's queries read 30 day files instead of a year's 365.
# The randomized run on a virtual clock: a tenth of make check's steps emulated
# (arm64's 5,000 took about 2 minutes).
vcsteps=
[ -z "$qarch" ] || vcsteps="ACU_VC_STEPS=2000"
envs="ACU_TOL=1.0 ACU_TIMER_SLACK=3 ACU_RESPONSE_BOUND=10 ACU_RANDOM_STEPS=300 \
ACU_CRASH_CYCLES=20 ACU_CRASH_FULL_CYCLES=10 ACU_DAMAGE_STRIDE=25 ACU_HISTORY_DAYS=30"
script="set -e; cd $src
# For every make, the suite's own (test_install) too: the same flags, no rebuild.
export WERROR=1
echo \"check-arch: \$(uname -m) userland, \$(. /etc/os-release && echo \$PRETTY_NAME), \
gcc \$(gcc -dumpfullversion), glibc \$(ldd --version | sed -n '1s/.* //p'), \
libgpiod \$(pkg-config --modversion libgpiod), libevent \$(pkg-config --modversion libevent)\"
t0=\$(date +%s)
make -s -j\$(nproc) all
echo \"check-arch: build \$((\$(date +%s) - t0)) s\"
[ '$tests' != build ] || exit 0
t0=\$(date +%s)
make -s -j\$(nproc) unit
echo \"check-arch: unit tests \$((\$(date +%s) - t0)) s\"
t0=\$(date +%s)
$vcsteps make -s -j\$(nproc) vclock
echo \"check-arch: virtual-clock runs \$((\$(date +%s) - t0)) s\"
./acud --check-config -c etc/demo.conf
# The README's quick start: make demo up and answering, a session started on it.
t0=\$(date +%s)
rm -rf demo; make -s demo > build/demo.log 2>&1 & mpid=\$!
for i in \$(seq 600); do [ -S demo/run/acud.sock ] && break; sleep 0.1; done
drc=0
./acuctl -s demo/run/acud.sock start 1 20m --needles 6 --patient A1043 &&
	./acuctl -s demo/run/acud.sock status | grep -q 'running.*A1043' || drc=1
kill \$(pgrep -P \$mpid -x acud) 2>/dev/null || drc=1
wait \$mpid 2>/dev/null || true
[ \$drc = 0 ] || { cat build/demo.log; echo 'check-arch: make demo FAILED'; exit 1; }
echo \"check-arch: make demo: a session started and shown (\$((\$(date +%s) - t0)) s)\"
if [ -n '$sel' ]; then
	t0=\$(date +%s); rc=0
	env $envs python3 -m pytest -q -p no:cacheprovider -rfE --durations=15 $xdist $kexpr ${ACUD_ARCH_PYTEST:-} $sel || rc=\$?
	echo \"check-arch: black-box suite ($tests) \$((\$(date +%s) - t0)) s\"
	exit \$rc
fi"
say "$suite $arch: build and tests ($(stamp) s)"
rc=0
inside test "$script" || rc=$?
say "$suite $arch: $([ $rc = 0 ] && echo passed || echo FAILED) in $(stamp) s"
exit $rc
