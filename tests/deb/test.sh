#!/bin/bash
# make deb-test: the package built by `make deb`, installed with
# `apt install ./acud_*.deb` into a clean Debian root file system (debootstrap
# minbase, cached; each run works on a throw-away overlay of it), then checked
# the way a technician would: conffiles, the user and groups of sysusers.d, the
# directories of tmpfiles.d, `acud --check-config`, `systemd-analyze verify` of
# the installed unit, the daemon started as user acud and answering acuctl,
# the unit left disabled, and a purge that leaves nothing behind. One line per
# check and `N passed, N failed`; exits 1 on any failure.
#
#   tests/deb/test.sh [SUITE]     SUITE: bookworm (default) or trixie
# The package is built first: by tests/deb/build.sh on this machine when SUITE is
# its own release, otherwise inside another throw-away overlay of SUITE's root
# (apt-get build-dep, then tests/deb/build.sh there, lintian of that release
# included), so that the .deb tested is one built for SUITE.
# Environment:
#   ACUD_DEB_CACHE   root file systems and downloaded packages
#                    (default /var/cache/acud-deb)
#   ACUD_DEB_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   DEB_OUT          where the .deb is (default build/deb)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" = --inside ]; then suite=$ACUD_DEB_SUITE; else suite=${1:-${ACUD_DEB_SUITE:-bookworm}}; fi
cache=${ACUD_DEB_CACHE:-/var/cache/acud-deb}
mirror=${ACUD_DEB_MIRROR:-http://deb.debian.org/debian}
out=${DEB_OUT:-$top/build/deb}
arch=$(dpkg --print-architecture)
base=$cache/$suite-$arch
say() { echo "deb-test: $*" >&2; }
die() { echo "not ok - $*"; echo "0 passed, 1 failed"; exit 1; }

# --- inside a private mount namespace: the overlay and the checks ----------------
if [ "${1:-}" = --inside ]; then
	run=$2 deb=$3
	root=$run/merged
	mkdir -p "$run/upper" "$run/work" "$root"
	mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
	mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
	mount -t tmpfs -o mode=0755 tmpfs "$root/run"
	mkdir -p "$cache/archives-$suite/partial" "$root/var/cache/apt/archives"
	mount --bind "$cache/archives-$suite" "$root/var/cache/apt/archives"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	in_root() {
		chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
	}
	if [ "$deb" = --build ]; then
		# Build the package for this release inside its root; the .deb comes out in $out.
		mkdir -p "$root/tmp/src"
		(cd "$top" && git ls-files -z --cached --others --exclude-standard |
			xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
			tar --null -T - -cf -) | tar -xf - -C "$root/tmp/src"
		in_root sh -c 'apt-get install -y -q --no-install-recommends dpkg-dev debhelper lintian &&
			cd /tmp/src && apt-get build-dep -y -q ./' >&2 || exit 1
		rc=0
		in_root sh -c 'cd /tmp/src && DEB_OUT=/tmp/out bash tests/deb/build.sh' || rc=$?
		mkdir -p "$out"
		cp "$root"/tmp/out/*.deb "$root"/tmp/out/lintian.txt "$root"/tmp/out/build.log "$out/" 2>/dev/null || true
		exit $rc
	fi
	cp "$deb" "$root/tmp/"
	pass=0 fail=0 n=0
	check() { # check DESCRIPTION COMMAND...: one line per check, output on failure
		local what=$1 o
		shift
		n=$((n + 1))
		if o=$("$@" 2>&1); then
			pass=$((pass + 1)); echo "ok $n - $what"
		else
			fail=$((fail + 1)); echo "not ok $n - $what"; printf '%s\n' "$o" | sed 's/^/#   /' | tail -30
		fi
	}
	debname=${deb##*/}
	check "apt install ./$debname (Depends from $suite)" \
		in_root sh -c "apt-get install -y -q --no-install-recommends ./tmp/$debname"
	check "package installed: $(in_root dpkg-query -W -f='${Package} ${Version} ${Architecture}' acud 2>&1)" \
		in_root sh -c "dpkg-query -W -f='\${Status}' acud | grep -qx 'install ok installed'"
	check "conffiles /etc/acud/acud.conf and profiles.d/clinic.conf" \
		in_root sh -c "dpkg-query -W -f='\${Conffiles}' acud | grep -q ' /etc/acud/acud.conf ' &&
			dpkg-query -W -f='\${Conffiles}' acud | grep -q ' /etc/acud/profiles.d/clinic.conf '"
	for f in /usr/sbin/acud /usr/bin/acuctl /usr/lib/sysusers.d/acud.conf /usr/lib/tmpfiles.d/acud.conf \
		/usr/share/man/man8/acud.8.gz /usr/share/man/man5/acud.conf.5.gz /usr/share/man/man1/acuctl.1.gz \
		/usr/share/bash-completion/completions/acuctl; do
		check "installs $f" in_root test -f "$f"
	done
	unit=$(in_root dpkg -L acud | grep '/systemd/system/acud.service$' || true)
	rules=$(in_root dpkg -L acud | grep '/udev/rules.d/60-acud-gpio.rules$' || true)
	check "installs the unit ($unit) and the udev rule ($rules)" test -n "$unit" -a -n "$rules"
	check "sysusers.d applied: user acud in groups acu and gpio; groups acu-desk, acu-practitioner, acu-tech" \
		in_root sh -c 'id acud && id -nG acud | grep -qw acu && id -nG acud | grep -qw gpio &&
			getent group acu-desk acu-practitioner acu-tech | wc -l | grep -qx 3'
	check "tmpfiles.d applied: /var/lib/acud 0750 acud:acud" \
		in_root sh -c 'test "$(stat -c "%a %U:%G" /var/lib/acud)" = "750 acud:acud"'
	check "acud --check-config (the example /etc/acud/acud.conf)" \
		in_root sh -c 'acud --check-config | tee /dev/stderr | grep -q "configuration OK"'
	# man-db, as on a board, so that verify also finds the Documentation= pages.
	check "systemd-analyze verify $unit (with man-db: Documentation= pages too)" \
		in_root sh -c "apt-get install -y -q --no-install-recommends man-db >/dev/null &&
			o=\$(systemd-analyze verify $unit 2>&1); rc=\$?; echo \"\$o\";
			[ \$rc = 0 ] && ! echo \"\$o\" | grep -q 'acud.service'"
	check "the unit is installed disabled (configure first, then enable)" \
		in_root sh -c 'test "$(systemctl is-enabled acud.service 2>/dev/null)" = disabled'
	# The daemon itself, as its user, on the simulated lines with the example's
	# rooms: it starts, answers acuctl, and stops cleanly on SIGTERM.
	check "acud starts as user acud (backend = sim) and acuctl status answers" \
		in_root sh -c '
		mkdir -p /tmp/t && chown acud:acud /tmp/t &&
		sed -e "s|^backend *=.*|backend = sim|" -e "s|^socket *=.*|socket = /tmp/t/acud.sock|" \
			/etc/acud/acud.conf > /tmp/t/acud.conf &&
		setpriv --reuid acud --regid acud --init-groups acud -f -c /tmp/t/acud.conf > /tmp/t/log 2>&1 &
		pid=$!
		i=0; while [ ! -S /tmp/t/acud.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		acuctl -s /tmp/t/acud.sock status; rc=$?
		kill -TERM $pid; wait $pid; rc2=$?
		cat /tmp/t/log; [ $rc = 0 ] && [ $rc2 = 0 ]'
	check "apt-get purge acud leaves no file of it (state and users stay, as sysusers.d has it)" \
		in_root sh -c 'apt-get purge -y -q acud && ! dpkg -L acud 2>/dev/null | grep -q . &&
			test ! -e /etc/acud/acud.conf && test ! -e /usr/sbin/acud'
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
fi

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): run it with sudo"
host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
command -v debootstrap >/dev/null || {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends debootstrap >&2; } || die "apt-get install debootstrap failed"
}
mkdir -p "$cache"
exec 9>"$cache/$suite-$arch.lock"
flock -w 1800 9 || die "cannot lock $cache/$suite-$arch.lock"
t0=$(date +%s)
if [ ! -f "$base/.acud-base" ]; then
	say "debootstrap $suite $arch (minbase) into $base"
	rm -rf "$base"
	debootstrap --variant=minbase "$suite" "$base" "$mirror" >&2 || die "debootstrap $suite failed"
	cp -L /etc/resolv.conf "$base/etc/resolv.conf" 2>/dev/null || true
	printf '#!/bin/sh\nexit 101\n' > "$base/usr/sbin/policy-rc.d"
	chmod 0755 "$base/usr/sbin/policy-rc.d"
	touch "$base/.acud-base"
	say "root file system ready ($(($(date +%s) - t0)) s)"
fi
# The package lists, once a day (the overlay's apt-get install reads them).
if [ -z "$(find "$base/var/lib/apt/lists" -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null)" ]; then
	say "apt-get update in the $suite root"
	unshare --mount --propagation private sh -c "mount -t proc proc '$base/proc' &&
		chroot '$base' apt-get update -q" >&2 || die "apt-get update in the $suite root failed"
fi
run=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$run" "$run.b"' EXIT
export ACUD_DEB_CACHE=$cache ACUD_DEB_SUITE=$suite DEB_OUT=$out
if [ "$suite" = "$host_suite" ]; then
	say "building the package here ($host_suite)"
	bash "$top/tests/deb/build.sh" || die "make deb failed"
else
	out=$out/$suite
	export DEB_OUT=$out
	rm -rf "$out"
	say "building the package in a $suite overlay (into $out)"
	mkdir -p "$run.b"
	unshare --mount --propagation private "$0" --inside "$run.b" --build ||
		die "building the package in $suite failed (log: $out/build.log)"
fi
deb=$(ls -t "$out"/acud_*_"$arch".deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] || die "no acud_*_$arch.deb in $out"
say "installing $(basename "$deb") into a $suite overlay"
rc=0
unshare --mount --propagation private "$0" --inside "$run" "$deb" || rc=$?
say "$suite: $([ $rc = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - t0)) s"
exit $rc
