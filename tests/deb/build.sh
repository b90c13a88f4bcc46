#!/bin/bash
# make deb: the Debian package, built from a copy of the checkout in build/deb/
# with `dpkg-buildpackage -us -uc -b` (the checkout's own build tree is left
# alone), then checked with lintian; fails on any lintian error. As root it
# installs what is missing (dpkg-dev, debhelper, lintian and the
# Build-Depends) from Debian's archive.
#   DEB_OUT   where the .deb ends up (default build/deb)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${DEB_OUT:-$top/build/deb}
say() { echo "deb: $*" >&2; }
die() { echo "deb: $*" >&2; exit 1; }

apt_install() {
	[ "$(id -u)" = 0 ] || die "missing: run sudo apt-get install --no-install-recommends $*"
	say "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "$@" >&2 ||
		{ apt-get update >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; } ||
		die "apt-get install $* failed"
}
need=()
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v lintian >/dev/null || need+=(lintian)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

ver=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
srcdir=$out/acud-$ver
rm -rf "$out"
mkdir -p "$srcdir"
"$top/tests/checkout-copy.sh" "$top" "$srcdir"

cd "$srcdir"
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
	missing=$(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
		sed 's/([^)]*)//g; s/|[^ ]*//g')
	# shellcheck disable=SC2086
	apt_install $missing
fi
t0=$(date +%s)
dpkg-buildpackage -us -uc -b > "$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; die "dpkg-buildpackage failed (log: $out/build.log)"; }
say "built in $(($(date +%s) - t0)) s: $(cd "$out" && ls ./*.deb | tr '\n' ' ')"
changes=$(ls "$out"/acud_*.changes)
# lintian's verdict: every tag it prints, the errors fail the build.
lintian --info --display-info --pedantic "$changes" > "$out/lintian.txt" 2>&1 || true
grep -E '^[EWIPXOC]: ' "$out/lintian.txt" || true   # the tags; explanations stay in the file
e=$(grep -c '^E: ' "$out/lintian.txt" || true)
w=$(grep -c '^W: ' "$out/lintian.txt" || true)
o=$(grep -cE '^[IPXOC]: ' "$out/lintian.txt" || true)
say "lintian: $e errors, $w warnings, $o info/pedantic/other tags ($out/lintian.txt)"
[ "$e" = 0 ]
