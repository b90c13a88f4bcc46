#!/bin/bash
# make vmtest: acud's gpiod backend against the kernel's gpio-sim chip, in a VM.
#
# Boots Debian's own kernel under qemu (TCG, no KVM needed) with an initramfs of
# static busybox, the configfs and gpio-sim modules (gpio-sim built out of tree
# from Debian's kernel source), acud and acuctl; tests/vm/init runs
# tests/vm/scenario.sh inside it. Prints one line per check and a final
# "N passed, N failed"; exits 1 on any failure, on a VM that does not come up or
# does not finish within ACUD_VMTEST_TIMEOUT seconds. Never skips.
#
# Environment:
#   ACUD_VMTEST_CACHE    downloads and built module (default /var/cache/acud-vmtest
#                        as root, else ${XDG_CACHE_HOME:-~/.cache}/acud-vmtest)
#   ACUD_VMTEST_KVER     kernel ABI, e.g. 6.1.0-56-amd64 (default: what
#                        linux-image-amd64 depends on)
#   ACUD_VMTEST_TIMEOUT  wall-clock bound of the VM in seconds (default 240)
#   ACUD_VMTEST_LOG      console log (default build/vmtest/console.log)
#   ACUD_VMTEST_ROOT     a Debian root file system (tests/arch/run.sh ARCH=amd64,
#                        trixie) whose apt picks the kernel and downloads it, in
#                        which gpio-sim is built, and from which acud, acuctl
#                        (ACUD_VMTEST_BIN, a directory inside it) and their
#                        libraries are taken: the trixie kernel with acud on
#                        libgpiod 2. Unset: this host's apt, kernel and binaries.
#   ACUD_VMTEST_BIN      where acud and acuctl are (default: the checkout)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/vm
if [ "$(id -u)" = 0 ]; then
	cache=${ACUD_VMTEST_CACHE:-/var/cache/acud-vmtest}
else
	cache=${ACUD_VMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/acud-vmtest}
fi
vm_timeout=${ACUD_VMTEST_TIMEOUT:-240}
vroot=${ACUD_VMTEST_ROOT:-}
bin=${ACUD_VMTEST_BIN:-$top}
log=${ACUD_VMTEST_LOG:-$top/build/vmtest/console.log}
t0=$(date +%s)

say() { echo "vmtest: $*" >&2; }
# The VM never came up or the set-up failed: still a counted failure, never a skip.
die() {
	echo "not ok - $*"
	echo "0 passed, 1 failed"
	exit 1
}

[ -z "$vroot" ] || [ -x "$vroot/usr/bin/apt-get" ] || die "ACUD_VMTEST_ROOT=$vroot is not a Debian root"
[ -z "$vroot" ] || [ "$(id -u)" = 0 ] || die "ACUD_VMTEST_ROOT needs root (chroot)"
for b in acud acuctl; do
	[ -x "$vroot$bin/$b" ] || die "$vroot$bin/$b is not built (run make all)"
done
# in_root CMD...: CMD in the root file system, or on this host without one.
in_root() {
	if [ -n "$vroot" ]; then
		chroot "$vroot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			DEBIAN_FRONTEND=noninteractive "$@"
	else
		"$@"
	fi
}

# --- host tools ---------------------------------------------------------------
apt_updated=0
apt_install() {
	[ "$(id -u)" = 0 ] || die "missing Debian packages; run: sudo apt-get install --no-install-recommends $*"
	say "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "$@" >&2; then
		apt-get update >&2 && apt_updated=1
		apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
	fi
}
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
have qemu-system-x86_64 || need_pkgs+=(qemu-system-x86)
have gcc-12 || need_pkgs+=(gcc-12)
have make || need_pkgs+=(make)
have xz || need_pkgs+=(xz-utils)
# What linux-kbuild-6.1's fixdep, modpost and objtool link against.
for p in libelf1 libssl3; do installed "$p" || need_pkgs+=("$p"); done
[ ${#need_pkgs[@]} -eq 0 ] || apt_install "${need_pkgs[@]}"

# --- which kernel --------------------------------------------------------------
# apt-cache only reads the local package lists; they may be missing on a fresh
# container, in which case they are fetched once.
apt_lists() {
	if [ $apt_updated = 0 ] && [ "$(id -u)" = 0 ]; then
		say "apt-get update"
		in_root apt-get update >&2 && apt_updated=1
	fi
}
# resolve: kver (6.1.0-56-amd64), kpkg, kvers (6.1.192-2) and kdir, its cache.
resolve() {
	kver=${ACUD_VMTEST_KVER:-$(in_root apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n 1)}
	[ -n "$kver" ] || return 1
	kpkg=linux-image-$kver
	kvers=$(in_root apt-cache show --no-all-versions "$kpkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
	[ -n "$kvers" ] || return 1
	kdir=$cache/$kver-$kvers
}
resolve || { apt_lists; resolve; } ||
	die "cannot tell which kernel to boot: linux-image-amd64 / linux-image-${kver:-?} not in the apt lists (apt-get update?)"
mkdir -p "$cache" || die "cannot create cache directory $cache"
# One run at a time fills the cache.
exec 9>"$cache/.lock"
flock -w 900 9 || die "cannot lock $cache/.lock"

# --- kernel, busybox and gpio-sim, cached ---------------------------------------
# dl PKG[=VERSION]...: apt-get download into the cache, once; debs[PKG] = its file.
declare -A debs
dl() {
	mkdir -p "$cache/debs"
	local p name ver pat f tmp
	for p in "$@"; do
		name=${p%%=*}
		ver=
		[ "$name" = "$p" ] || ver=${p#*=}
		if [ -n "$ver" ]; then pat="${name}_${ver//:/%3a}_*.deb"; else pat="${name}_*.deb"; fi
		f=$(cd "$cache/debs" && ls -t $pat 2>/dev/null | head -1 || true)
		if [ -z "$f" ]; then
			say "downloading $p"
			# apt's sandbox user may not write into the cache: download in
			# a scratch directory it can write and move the file in.
			tmp=$(mktemp -d -p "$vroot/tmp")
			chmod 0777 "$tmp"
			in_root sh -c "cd '${tmp#"$vroot"}' && apt-get download '$p'" >&2 ||
				{ rm -rf "$tmp"; say "apt-get download $p failed"; return 1; }
			f=$(cd "$tmp" && ls *.deb | head -1)
			mv "$tmp/$f" "$cache/debs/"
			rm -rf "$tmp"
		fi
		debs[$name]=$cache/debs/$f
	done
}
debfile() { echo "${debs[$1]}"; }

# fetch: every package kdir is made from, into the cache; 1 when a download fails.
fetch() {
	flavour=${kver##*-}                     # amd64
	abi=${kver%-"$flavour"}                 # 6.1.0-56
	series=$(echo "$kvers" | cut -d. -f1-2) # 6.1
	# linux-source, headers and kbuild of the very version the image has,
	# else (an archive caught between updates) the candidate.
	local pkgs=("$kpkg=$kvers" "linux-headers-$kver=$kvers" "linux-headers-$abi-common=$kvers") p
	# kbuild is linux-kbuild-6.1 on bookworm, linux-kbuild-6.12.117+deb13 on
	# trixie: the one the headers depend on.
	kbuild=$(in_root apt-cache depends "linux-headers-$kver" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-kbuild-[^ ]*\)$/\1/p' | head -n 1)
	kbuild=${kbuild:-linux-kbuild-$series}
	for p in "$kbuild" "linux-source-$series"; do
		if in_root apt-cache show "$p=$kvers" >/dev/null 2>&1; then pkgs+=("$p=$kvers"); else pkgs+=("$p"); fi
	done
	dl "${pkgs[@]}" busybox-static
}
if [ ! -f "$kdir/.complete" ] && ! fetch; then
	# Stale package lists name versions the archive no longer has.
	[ $apt_updated = 0 ] && [ "$(id -u)" = 0 ] || die "downloading the kernel packages failed"
	apt_lists
	resolve || die "linux-image-amd64 is not in the apt lists"
	[ -f "$kdir/.complete" ] || fetch || die "downloading the kernel packages failed"
fi
if [ ! -f "$kdir/.complete" ]; then
	t1=$(date +%s)
	rm -rf "$kdir"
	mkdir -p "$kdir"
	x=$kdir/x
	mkdir -p "$x"
	# Only what is needed: boot/, configfs.ko, the headers tree and kbuild.
	dpkg-deb --fsys-tarfile "$(debfile "$kpkg")" |
		tar -x -C "$x" --wildcards './boot/vmlinuz-*' './boot/config-*' "./*lib/modules/$kver/kernel/fs/configfs/configfs.ko*" ||
		die "cannot extract $kpkg"
	for p in "linux-headers-$kver" "linux-headers-$abi-common" "$kbuild" busybox-static; do
		dpkg-deb -x "$(debfile "$p")" "$x" || die "cannot extract $p"
	done
	dpkg-deb --fsys-tarfile "$(debfile "linux-source-$series")" |
		tar -xO "./usr/src/linux-source-$series.tar.xz" |
		tar -xJ -C "$x" --wildcards "linux-source-$series/drivers/gpio/gpio-sim.c" \
			"linux-source-$series/drivers/gpio/gpiolib.h" "linux-source-$series/kernel/irq/irq_sim.c" ||
		die "cannot extract gpio-sim from linux-source-$series"
	[ -n "$vroot" ] || grep -q '^CONFIG_GPIO_CDEV_V1=y' "$x"/boot/config-* ||
		die "$kver lacks the GPIO v1 uAPI libgpiod 1.6 needs"
	grep -q '^# CONFIG_GPIO_SIM is not set' "$x"/boot/config-* || say "note: $kver may have its own gpio-sim"

	# gpio-sim + irq_sim as one out-of-tree module. irq_to_desc() is not
	# exported to modules; generic_handle_domain_irq() does the same there.
	src=$x/linux-source-$series
	m=$kdir/mod
	mkdir -p "$m"
	cp "$src/drivers/gpio/gpiolib.h" "$m/"
	cp "$src/drivers/gpio/gpio-sim.c" "$m/gpio-sim-main.c"
	sed 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_domain_irq(work_ctx->domain, offset);/' \
		"$src/kernel/irq/irq_sim.c" >"$m/irq_sim.c"
	grep -q 'generic_handle_domain_irq(work_ctx->domain, offset);' "$m/irq_sim.c" ||
		die "irq_sim.c of linux-source-$series changed: the irq_to_desc() patch no longer applies"
	printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$m/Kbuild"
	# The headers' Makefile includes the common tree by absolute path.
	hdr=$x/usr/src/linux-headers-$kver
	sed -i "s#/usr/src/#$x/usr/src/#" "$hdr/Makefile"
	say "building gpio-sim.ko for $kver"
	if [ -n "$vroot" ]; then
		# The kernel's own compiler (gcc-14 for trixie) is the root's: built
		# there, in a copy of the trees under its /tmp.
		# What kbuild's fixdep, modpost and objtool link against (libelf1t64...).
		kdeps=$(in_root apt-cache depends "$kbuild" | sed -n 's/^ *Depends: \([a-z0-9][^ <]*\)$/\1/p' | sort -u)
		# shellcheck disable=SC2086
		in_root apt-get install -y -q --no-install-recommends $kdeps >&2 ||
			die "apt-get install $kdeps in $vroot failed"
		b=$(mktemp -d -p "$vroot/tmp")
		cp -a "$x/usr" "$m" "$b/"
		sed -i "s#$x/usr/src/#${b#"$vroot"}/usr/src/#" "$b/usr/src/linux-headers-$kver/Makefile"
		in_root make -s -C "${b#"$vroot"}/usr/src/linux-headers-$kver" M="${b#"$vroot"}/mod" modules \
			>"$kdir/build.log" 2>&1 || { cat "$kdir/build.log" >&2; rm -rf "$b"; die "gpio-sim module build failed (log above)"; }
		cp "$b/mod/gpio-sim.ko" "$m/"
		rm -rf "$b"
	else
		make -s -C "$hdr" M="$m" modules >"$kdir/build.log" 2>&1 ||
			{ cat "$kdir/build.log" >&2; die "gpio-sim module build failed (log above)"; }
	fi

	cp "$x"/boot/vmlinuz-"$kver" "$kdir/vmlinuz"
	# /lib/modules on bookworm, /usr/lib/modules and xz-compressed on trixie;
	# busybox's insmod takes it plain.
	ko=$(find "$x" -path "*/modules/$kver/kernel/fs/configfs/configfs.ko*" | head -n 1)
	case "$ko" in
	*.xz) xz -dc "$ko" >"$kdir/configfs.ko" ;;
	*) cp "$ko" "$kdir/configfs.ko" ;;
	esac
	cp "$m/gpio-sim.ko" "$kdir/gpio-sim.ko"
	cp "$x/bin/busybox" "$kdir/busybox"
	rm -rf "$x" "$m"
	touch "$kdir/.complete"
	say "kernel $kver ($kvers), modules and busybox cached in $kdir ($(($(date +%s) - t1)) s)"
fi
exec 9>&-

# --- initramfs: rebuilt every run from the current binaries ----------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,lib/modules,vmtest}
cp "$kdir/busybox" "$r/bin/busybox"
cp "$kdir/configfs.ko" "$kdir/gpio-sim.ko" "$r/lib/modules/"
cp "$vroot$bin/acud" "$vroot$bin/acuctl" "$r/usr/bin/"
for lib in $(for b in acud acuctl; do in_root ldd "$bin/$b"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do
	mkdir -p "$r$(dirname "$lib")"
	cp -L "$vroot$lib" "$r$lib"
done
cp "$here/init" "$r/init"
cp "$here/scenario.sh" "$r/vmtest/scenario.sh"
chmod 0755 "$r/init" "$r/vmtest/scenario.sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
(cd "$r" && find . | "$kdir/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/initrd.gz" ||
	die "cannot build the initramfs"
say "initramfs $(($(stat -c %s "$work/initrd.gz") / 1024)) KiB; booting $kver under qemu (TCG), bound ${vm_timeout}s"

# --- boot ------------------------------------------------------------------------
mkdir -p "$(dirname "$log")"
# A kernel panic under TCG (seen once in CI: an int3 oops in sched_clock_cpu
# while an -smp 2 guest without RDRAND waited for entropy) is the emulator's,
# not a check's: boot once more, keep the first log and say so. A panic on the
# second boot fails the run.
for attempt in 1 2; do
	tb=$(date +%s)
	set +e
	timeout -k 5 "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -nodefaults -no-reboot \
		-display none -serial stdio -monitor none \
		-kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 quiet loglevel=1 panic=-1 oops=panic" </dev/null 2>&1 |
		tr -d '\r' | tee "$log" | grep --line-buffered -E '^(ok|not ok|#|vmtest:|[0-9]+ passed, [0-9]+ failed$)' |
		grep --line-buffered -v -E '^[0-9]+ passed, [0-9]+ failed$'
	qrc=${PIPESTATUS[0]}
	set -e
	say "VM ran $(($(date +%s) - tb)) s (total $(($(date +%s) - t0)) s); console log: $log"
	if [ $attempt = 1 ] && grep -q 'Kernel panic' "$log"; then
		cp "$log" "$log.panic"
		echo "# the kernel panicked (console log kept: $log.panic); booting once more"
		continue
	fi
	break
done

# --- verdict -----------------------------------------------------------------------
pass=$(grep -c '^ok [0-9]' "$log" || true)
fail=$(grep -c '^not ok [0-9]' "$log" || true)
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
extra=0
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "not ok - the VM did not finish within ${vm_timeout}s (last console lines below)"
	extra=1
elif ! grep -q '^vmtest: done' "$log"; then
	echo "not ok - the VM did not come up or stopped early (qemu exit $qrc; last console lines below)"
	extra=1
elif [ -z "$summary" ] || [ "$summary" != "$pass passed, $fail failed" ]; then
	echo "not ok - the scenario's summary '$summary' does not match its $pass ok / $fail not ok lines"
	extra=1
elif [ "$pass" -eq 0 ]; then
	echo "not ok - no check ran"
	extra=1
fi
if [ $extra = 1 ]; then
	echo "# --- last console lines ---"
	tail -n 40 "$log" | sed 's/^/# /'
fi
echo "$pass passed, $((fail + extra)) failed"
[ $((fail + extra)) -eq 0 ]
