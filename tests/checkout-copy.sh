#!/bin/bash
# checkout-copy.sh TOP DEST: the checkout at TOP, as a developer has it, into
# DEST (which exists): in a git checkout the files git tracks and the new ones
# it does not ignore, else everything but the build's outputs. For the roots
# that build acud elsewhere (tests/arch/run.sh, tests/deb/build.sh).
set -euo pipefail
top=$1
dest=$2
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$dest"
else
	(cd "$top" && tar --exclude=./build --exclude=./acud --exclude=./acuctl --exclude=./demo \
		-cf - .) | tar -xf - -C "$dest"
fi
