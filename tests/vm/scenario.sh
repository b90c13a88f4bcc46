#!/bin/sh
# The vmtest scenario, run as root inside the VM by tests/vm/init: acud with
# backend = gpiod on a gpio-sim chip with named lines. The test reads what acud
# drives in sysfs (sim_gpioN/value), sets what it reads (sim_gpioN/pull, which
# raises a real edge) and reads the kernel's gpio_value trace events to see
# every level acud wrote, even ones too brief to sample.
# One line per check ("ok N - ..." / "not ok N - ..."), "# ..." for details,
# then "N passed, N failed". A failed step never skips the checks after it.

PASS=0
FAIL=0
N=0
ok() { N=$((N + 1)); PASS=$((PASS + 1)); echo "ok $N - $*"; }
notok() { N=$((N + 1)); FAIL=$((FAIL + 1)); echo "not ok $N - $*"; }
diag() { echo "# $*"; }
# check DESCRIPTION EXPRESSION: one check from a shell expression's status.
check() {
	if eval "$2"; then ok "$1"; else notok "$1"; fi
}

W=/tmp/acud
mkdir -p $W/profiles.d $W/bad
SOCK=$W/run/acud.sock
ctl() { timeout 10 acuctl -s $SOCK "$@"; }
ctlq() { ctl "$@" >/dev/null 2>&1; }

# --- the chip: 16 lines, some named ---------------------------------------------
G=/sys/kernel/config/gpio-sim/acu
T=/sys/kernel/tracing
mkdir $G $G/bank0
echo 16 >$G/bank0/num_lines
echo acud-vmtest >$G/bank0/label
name_line() { mkdir $G/bank0/line$1 && echo "$2" >$G/bank0/line$1/name; }
name_line 0 r1-gate
name_line 1 r1-pulse
name_line 2 r1-alarm
name_line 3 r1-stop
name_line 4 r2-gate
name_line 5 r2-alarm
name_line 6 heartbeat
name_line 8 spare
name_line 9 r1-call
echo 1 >$G/live
CHIP=$(cat $G/bank0/chip_name)
SYS=/sys/devices/platform/$(cat $G/dev_name)/$CHIP
BASE=
for c in /sys/class/gpio/gpiochip*; do
	[ "$(cat $c/label 2>/dev/null)" = acud-vmtest ] && BASE=$(cat $c/base)
done
check "gpio-sim chip $CHIP is live: 16 lines, 8 named, global base ${BASE:-?}" \
	'[ -n "$BASE" ] && [ -e $SYS/sim_gpio15/value ] && [ "$(cat $G/bank0/line6/name)" = heartbeat ]'

v() { cat $SYS/sim_gpio$1/value; }
pull() { echo pull-$2 >$SYS/sim_gpio$1/pull; }
# levels LINE...: "0=1 1=0 ..." for the diagnostics
levels() {
	s=
	for l in "$@"; do s="$s $l=$(v $l)"; done
	echo "${s# }"
}
# wait_val LINE VALUE TENTHS: until the line reads VALUE, at most TENTHS/10 s.
wait_val() {
	i=0
	while [ "$(v $1)" != "$2" ]; do
		[ $i -ge $3 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}
# sample LINE COUNT [DELAY]: sets Z (reads of 0), O (reads of 1), X (changes).
sample() {
	f=$SYS/sim_gpio$1/value
	Z=0 O=0 X=0 last= i=0
	while [ $i -lt $2 ]; do
		read x <$f
		if [ "$x" = 1 ]; then O=$((O + 1)); else Z=$((Z + 1)); fi
		[ -n "$last" ] && [ "$x" != "$last" ] && X=$((X + 1))
		last=$x
		[ -n "${3:-}" ] && sleep $3
		i=$((i + 1))
	done
}

# Outputs as OFFSET:INACTIVE-PHYSICAL-LEVEL; active-low lines are inactive at 1.
OUTPUTS="0:0 1:0 2:0 4:1 5:1 6:0"
# pull_all active|inactive: every output pulled to that level.
pull_all() {
	for o in $OUTPUTS; do
		off=${o%:*} inact=${o#*:}
		if [ "$1" = active ]; then lvl=$((1 - inact)); else lvl=$inact; fi
		if [ $lvl = 1 ]; then pull $off up; else pull $off down; fi
	done
}
outputs_inactive() {
	for o in $OUTPUTS; do
		[ "$(v ${o%:*})" = "${o#*:}" ] || return 1
	done
}
out_levels() { levels 0 1 2 4 5 6; }

trace_start() {
	echo 0 >$T/tracing_on
	echo >$T/trace
	echo 1 >$T/events/gpio/gpio_value/enable
	echo 1 >$T/tracing_on
}
trace_stop() { echo 0 >$T/tracing_on; }
# trace_sets: "OFFSET VALUE" for every level written on this chip, in order.
trace_sets() {
	sed -n 's/.*gpio_value: *\([0-9]*\) set \([01]\).*/\1 \2/p' $T/trace |
		while read g val; do echo "$((g - BASE)) $val"; done
}
# traced_safe: every output was written, and only ever to its inactive level.
traced_safe() {
	trace_sets >$W/sets
	for o in $OUTPUTS; do
		off=${o%:*} inact=${o#*:}
		grep -q "^$off $inact\$" $W/sets || { diag "line $off was never driven to $inact"; return 1; }
		grep -q "^$off $((1 - inact))\$" $W/sets && { diag "line $off was driven active"; return 1; }
	done
	return 0
}
# traced_last_inactive: the last level written on each output is its inactive one.
traced_last_inactive() {
	trace_sets >$W/sets
	for o in $OUTPUTS; do
		off=${o%:*} inact=${o#*:}
		last=$(grep "^$off " $W/sets | tail -n 1)
		[ "$last" = "$off $inact" ] || { diag "line $off: last write '${last:-none}'"; return 1; }
	done
	return 0
}

# --- configuration ------------------------------------------------------------------
# write_conf FILE ROOM-SECTIONS [NAME]: a complete config around the room
# sections; with NAME, its own socket and state and no heartbeat line.
write_conf() {
	if [ -n "${3:-}" ]; then
		sock=$W/bad/$3.sock state=$W/bad/$3.state hb=
	else
		sock=$W/run/acud.sock state=$W/state hb="heartbeat = heartbeat"
	fi
	cat >$1 <<EOF
[daemon]
socket = $sock
state_dir = $state
profiles_dir = $W/profiles.d
log_level = info

[gpio]
backend = gpiod
chip = $CHIP
$hb
heartbeat_hz = 10

[limits]
session_min = 1s
session_max = 60m
stim_max = 30m

$2

[profile ea-200hz]
description = 200 Hz continuous, 1 ms pulses: easy to see in sysfs
mode = continuous
frequency_hz = 200
pulse_width_us = 1000
EOF
}
ROOMS='[room 1]
name = Room 1 (pulse lines, names)
gate = r1-gate
pulse = 1
alarm = r1-alarm
interlock = !r1-stop
call = !r1-call
presence = 10

[room 2]
name = Room 2 (active-low)
gate = !4
alarm = !r2-alarm
call = 11'
CONF=$W/acud.conf
write_conf $CONF "$ROOMS"

PID=
start_acud() {
	acud -f -c $CONF 2>>$W/acud.log &
	PID=$!
	i=0
	while [ $i -lt 100 ]; do
		ctlq version && return 0
		kill -0 $PID 2>/dev/null || { wait $PID; PID=; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
acud_log() { tail -n ${1:-5} $W/acud.log | sed 's/^/#   acud: /'; }
# session ROOM DURATION: a session armed with the 200 Hz profile.
session() { ctlq start $1 $2 --needles 4 --profile ea-200hz --patient VM-1 --stim; }
end_session() {
	ctlq stop $1
	ctlq finish $1 --removed 4
}
state_of() { ctl --json status $1 | grep -o '"state":"[a-z]*"' | head -n 1 | cut -d'"' -f4; }

# --- 1. start: every output inactive, no glitch ---------------------------------
# Worst case: every output pulled to its ACTIVE level before acud starts, and
# the interlock (active low) pulled clear.
pull_all active
pull 3 up
pull 9 up # r1-call is active low: a closed (normally closed) cord reads 1
diag "before acud: $(out_levels) (outputs pulled active; unrequested lines read their pull)"
trace_start
if start_acud; then
	ok "acud starts with backend = gpiod on $CHIP, lines named by name and by offset"
else
	notok "acud starts with backend = gpiod on $CHIP"
	acud_log 10
fi
trace_stop
check "every output inactive after start though pulled active ($(out_levels))" outputs_inactive
check "no output glitched active during start: each written only at its inactive level (trace)" \
	traced_safe

# --- 2. arming: gate active, pulse line toggles ---------------------------------
session 1 10m
check "arming room 1 drives its gate r1-gate (named in the config) active" 'wait_val 0 1 30'
sample 1 600
diag "pulse line over 600 reads: $Z low, $O high, $X changes"
check "the pulse line toggles while the gate is on" '[ $Z -gt 0 ] && [ $O -gt 0 ] && [ $X -ge 2 ]'
sample 6 40 0.02
diag "heartbeat over 40 reads: $Z low, $O high, $X changes"
check "the heartbeat line toggles while a gate is on" '[ $X -ge 2 ]'
check "room 2 stays inactive meanwhile ($(levels 4 5))" '[ "$(v 4)$(v 5)" = 11 ]'

# --- 3. busy and missing lines: clear errors, nothing disturbed ------------------
# try_conf NAME ROOM-SECTIONS: a second acud on its own socket and state, while
# the first one stimulates room 1; sets RC (exit status or "running") and ERR.
try_conf() {
	f=$W/bad/$1.conf
	write_conf $f "$2" $1
	timeout 10 acud -f -c $f >/dev/null 2>$W/bad/$1.err &
	bp=$!
	i=0
	while kill -0 $bp 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $bp 2>/dev/null; then
		kill -TERM $bp
		wait $bp
		RC=running
	else
		wait $bp
		RC=$?
	fi
	ERR=$(tr '\n' ' ' <$W/bad/$1.err)
	diag "$1: exit $RC: $(grep -v '^<[4-7]>' $W/bad/$1.err | tr '\n' ' ')"
}
refused() { [ "$RC" != running ] && [ "$RC" != 0 ] && echo "$ERR" | grep -q "$1"; }
try_conf busy "[room 9]
gate = r1-gate"
check "a line held by another program (the running acud) is refused as busy, naming it" \
	'refused "r1-gate.*busy"'
check "and the holder is named by its consumer, as gpioinfo shows it: acud:1:gate1" \
	'refused "busy: in use by acud:1:gate1"'
try_conf missing-name "[room 9]
gate = no-such-line"
check "a line name the chip does not have is refused with a clear error" \
	'refused "no-such-line.*no such line"'
try_conf missing-offset "[room 9]
gate = 40"
check "a line offset beyond the chip (40 of 16 lines) is refused with a clear error" \
	'refused "line 40.*no such line"'
try_conf twice "[room 9]
gate = spare
pulse = 8"
check "one line named twice, by name and offset (spare = 8), is refused as the same line" \
	'refused "spare and 8 are the same line"'
acud --check-config -c $W/bad/twice.conf >/dev/null 2>$W/bad/twice-check.err
rc=$?
diag "acud --check-config (spare = 8): exit $rc: $(tr '\n' ' ' <$W/bad/twice-check.err)"
check "--check-config finds it too, on the chip (exit $rc)" \
	'[ $rc = 1 ] && grep -q "same line" $W/bad/twice-check.err'
# [gpio] chip by its label and by its path, as a Pi 5's header is found by
# pinctrl-rp1 whichever gpiochipN it is: --check-config opens the chip and
# looks the names up; a chip it cannot find is a note naming it.
write_conf $W/bad/chip.conf "[room 9]
gate = spare" chip
chip_check() {
	sed -i "s#^chip = .*#chip = $1#" $W/bad/chip.conf
	acud --check-config -c $W/bad/chip.conf >/dev/null 2>$W/bad/chip.err
	diag "--check-config with chip = $1: exit $?: $(tr '\n' ' ' <$W/bad/chip.err)"
}
chip_check acud-vmtest
check "[gpio] chip = acud-vmtest, the chip's label, finds it" \
	'! grep -q "not checked against the chip" $W/bad/chip.err'
chip_check /dev/$CHIP
check "[gpio] chip = /dev/$CHIP, its path, finds it" \
	'! grep -q "not checked against the chip" $W/bad/chip.err'
chip_check no-such-chip
check "[gpio] chip = no-such-chip is not found, and the note names it" \
	'grep -q "not checked against the chip: gpio chip no-such-chip" $W/bad/chip.err'
sample 1 300
check "the refused instances did not disturb the running session (gate $(v 0), pulse $Z/$O)" \
	'[ "$(v 0)" = 1 ] && [ $Z -gt 0 ] && [ $O -gt 0 ]'

# --- 4. stop, pause, expiry each drop the gate ----------------------------------
ctlq stop 1
g=$(v 0) p=$(v 1)
check "stop drops the gate before acuctl returns (gate $g, pulse $p)" '[ "$g$p" = 00 ]'
ctlq finish 1 --removed 4
sleep 0.3
check "no pulse or heartbeat after stop ($(levels 1 6))" '[ "$(v 1)$(v 6)" = 00 ]'

session 1 10m
wait_val 0 1 30 || diag "gate did not go active for the pause check"
ctlq pause 1
g=$(v 0)
check "pause drops the gate before acuctl returns (gate $g)" '[ "$g" = 0 ]'
end_session 1

session 1 3s
t_on=$(cut -d' ' -f1 /proc/uptime)
wait_val 0 1 30 || diag "gate did not go active for the expiry check"
if wait_val 0 0 80; then
	dt=$(echo "$t_on $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.1f", $2 - $1}')
	st=$(state_of 1)
	check "expiry of a 3 s session drops the gate (after $dt s; state $st)" \
		'[ "$st" = due ] && awk "BEGIN { exit !($dt >= 2.5) }"'
else
	notok "expiry of a 3 s session drops the gate (still $(v 0) after 8 s)"
fi
ctlq finish 1 --removed 4

# --- 5. pacemaker flag mid-session ------------------------------------------------
session 1 10m
wait_val 0 1 30 || diag "gate did not go active for the flag check"
ctlq flag 1 pacemaker
g=$(v 0)
check "a pacemaker flag mid-session drops the gate before acuctl returns (gate $g)" '[ "$g" = 0 ]'
ctl stim 1 on >/dev/null 2>$W/err
rc=$?
diag "acuctl stim 1 on: exit $rc: $(cat $W/err)"
check "arming is then refused: acuctl exits 1, contraindicated; the gate stays off" \
	'[ $rc = 1 ] && grep -q contraindicated $W/err && [ "$(v 0)" = 0 ]'
end_session 1

# --- 6. interlock -------------------------------------------------------------------
session 1 10m
wait_val 0 1 30 || diag "gate did not go active for the interlock check"
pull 3 down # r1-stop is active low: reading 0 trips it
check "the interlock pulled to its active level drops the gate" 'wait_val 0 0 30'
sample 2 40 0.05
diag "alarm line over 2 s: $Z low, $O high, $X changes"
check "and raises the room's alarm line: it flashes (high alarm, 2 Hz)" \
	'[ $Z -gt 0 ] && [ $O -gt 0 ] && [ $X -ge 2 ]'
check "status shows the interlock alarm, high" \
	'ctl --json status 1 | grep -q "\"kind\":\"interlock\",\"priority\":\"high\""'
ctl stim 1 on >/dev/null 2>$W/err
rc=$?
diag "acuctl stim 1 on: exit $rc: $(cat $W/err)"
check "arming is refused while the interlock is tripped" \
	'[ $rc = 1 ] && grep -q interlock $W/err && [ "$(v 0)" = 0 ]'
pull 3 up
sleep 0.3
ctlq stim 1 on
check "cleared and re-armed, the gate comes back" 'wait_val 0 1 30'
# A blip: tripped and clear again at once, likely before acud reads the line.
# The kernel queues both edges; acud reads the queue, not only the level now.
pull 3 down
pull 3 up
check "an interlock blip (down and up at once) drops the gate all the same" 'wait_val 0 0 30'
check "and disarms the room with the interlock alarm" \
	'ctl --json status 1 | grep -q "\"kind\":\"interlock\"" &&
	 ctl --json status 1 | grep -q "\"armed\":false"'
ctlq stim 1 on
check "the line clear, a new stim on arms again" 'wait_val 0 1 30'
end_session 1
check "finish clears the alarm: the alarm line goes inactive" 'wait_val 2 0 30'
# The check before every request reads the interlock's line request in one
# epoll set; a set refused (epoll_ctl on the chip's fd) would be logged.
check "the input lines are in one epoll set (no fallback to polling each)" \
	'! grep -q "input lines:" $W/acud.log'

# --- 7. active-low lines -------------------------------------------------------------
a=$(v 4)
session 2 10m
check "an active-low gate (!4) reads 1 when inactive ($a) and is driven to 0 when on" \
	'[ "$a" = 1 ] && wait_val 4 0 30'
ctlq stim 2 off
check "and goes back to 1 on stim off" 'wait_val 4 1 30'
end_session 2

# --- 8. reload onto a line that is not there --------------------------------------
# SPEC §5: a bad config is rejected on reload and the running one kept.
pull_all active # as if the board pulled every output active (bias set by acud or not)
cp $CONF $W/acud.conf.good
printf '\n[room 9]\ngate = no-such-line\n' >>$CONF
ctl reload >/dev/null 2>$W/err
rc=$?
diag "acuctl reload (new room on a missing line): exit $rc: $(cat $W/err)"
cp $W/acud.conf.good $CONF
check "reload onto a missing line is refused: acuctl exits 1, code config" \
	'[ $rc = 1 ] && grep -q config $W/err'
check "and every output is still held inactive though pulled active ($(out_levels))" outputs_inactive
ctl start 1 10m --needles 4 --profile ea-200hz --patient VM-1 --stim >/dev/null 2>$W/err
rc=$?
check "and the running wiring is kept: room 1 arms and drives its gate (acuctl exit $rc)" \
	'[ $rc = 0 ] && wait_val 0 1 30 && ctl --json status 1 | grep -q "\"on\":true"'
end_session 1
ctlq reload || diag "reload of the good config failed: $(ctl reload 2>&1)"

# --- 8b. room buttons: call and presence through real edges (SPEC §11) ---------
# lines: every configured line; the call line as the chip and gpioinfo see it.
ctl --json lines | sed 's/},{/}\n{/g' >$W/lines
callobj=$(grep '"consumer":"acud:1:call"' $W/lines)
diag "lines, room 1 call: $callobj"
check "lines lists room 1's call line: offset 9 (named r1-call), active-low, level 0" \
	'echo "$callobj" | grep -q "\"offset\":9" && echo "$callobj" | grep -q "\"name\":\"r1-call\"" &&
	 echo "$callobj" | grep -q "\"polarity\":\"active-low\"" && echo "$callobj" | grep -q "\"level\":0"'
check "lines lists every configured line (10 here, the heartbeat too)" \
	'[ "$(grep -c "\"consumer\":\"acud:" $W/lines)" = 10 ]'
# Who debounces: the kernel with libgpiod 2 (the v2 uAPI's debounce), acud
# with libgpiod 1.6.
by=acud
for f in /lib/*/libgpiod.so.3* /usr/lib/*/libgpiod.so.3* /lib64/libgpiod.so.3* /usr/lib64/libgpiod.so.3*; do
	[ -e "$f" ] && by=kernel
done
check "the call line is debounced 20 ms by the $by" \
	'echo "$callobj" | grep -q "\"debounce\":{\"ms\":20,\"by\":\"$by\"}"'
call_alarm() { ctl --json status $1 | grep -o '"kind":"call","priority":"[a-z]*"' | cut -d'"' -f8; }
# wait_call ROOM PRIORITY|none TENTHS
wait_call() {
	i=0
	while [ "$(call_alarm $1)" != "$2" ] && ! { [ "$2" = none ] && [ -z "$(call_alarm $1)" ]; }; do
		[ $i -ge $3 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}
# An edge watcher, for the debounce check below.
acuctl -s $SOCK --json lines --watch >$W/edges 2>&1 &
WATCH=$!
sleep 0.5
pull 9 down # the cord pulled out: the circuit opens and calls
check "the call cord opened (r1-call reads 0) raises room 1's call alarm, medium, no session" \
	'wait_call 1 medium 30 && [ "$(state_of 1)" = idle ]'
t1=$(cut -d' ' -f1 /proc/uptime)
sample 2 50 0.05
el=$(echo "$t1 $(cut -d' ' -f1 /proc/uptime)" | awk '{ printf "%.1f", $2 - $1 }')
diag "alarm line over $el s: $Z low, $O high, $X changes"
# Medium: a change a second (high would be four).
check "and flashes the room's alarm line (medium, 0.5 Hz), the gate untouched" \
	'[ $X -ge 1 ] && awk "BEGIN { exit !($X <= $el + 2) }" && [ "$(v 0)" = 0 ]'
pull 9 up
pull 10 up # the presence button pressed, held longer than the debounce ...
sleep 0.2
pull 10 down # ... and released
check "a presence press answers the call" 'wait_call 1 none 30'
check "and is in the history" \
	'ctl --json history --room 1 | grep -q "\"type\":\"presence\",\"call\":true"'
# A bouncing contact: five edges much closer together than 20 ms, then held.
pull 11 up; pull 11 down; pull 11 up; pull 11 down; pull 11 up
check "a bouncing call button (5 edges at once, then held) raises room 2's call" \
	'wait_call 2 medium 30'
sleep 0.5
presses=$(ctl --json history --room 2 | grep -o '"type":"call"' | wc -l)
raised=$(ctl --json history --room 2 | grep -o '"kind":"call","priority":"medium","active":true,"change":"raised"' | wc -l)
diag "room 2: $presses call press(es) in the history, $raised call alarm(s) raised"
check "one press, one call alarm" '[ "$presses" = 1 ] && [ "$raised" = 1 ]'
kill $WATCH 2>/dev/null
wait $WATCH 2>/dev/null
r2edges=$(grep '"room":"2","function":"call"' $W/edges | grep -o '"edges":[0-9]*' | cut -d: -f2 |
	awk '{ s += $1 } END { print s + 0 }')
diag "room 2's call line: $r2edges edge(s) reached acud ($(grep -c '"function":"call"' $W/edges) line events in all)"
if [ $by = kernel ]; then
	check "the kernel debounced the burst: one edge reached acud" '[ "$r2edges" = 1 ]'
else
	check "acud saw the burst's edges and debounced them itself" '[ "${r2edges:-0}" -ge 1 ]'
fi
pull 11 down
ctlq checkin 2
# The lamp test: the alarm line's patterns, never a gate.
trace_start
ctl test 1 alarm 3s >/dev/null 2>$W/err
rc=$?
sample 2 35 0.1
trace_stop
diag "acuctl test 1 alarm 3s: exit $rc $(cat $W/err); alarm line over 3.5 s: $Z low, $O high, $X changes"
check "acuctl test 1 alarm runs the lamp through its patterns, and never a gate (trace)" \
	'[ $rc = 0 ] && [ $X -ge 4 ] && ! trace_sets | grep -q "^0 1$" && ! trace_sets | grep -q "^4 0$"'
check "and leaves the lamp off after it" 'wait_val 2 0 20'

# --- 9. SIGTERM: outputs off before exit, no re-arming on restart ---------------
session 1 10m
wait_val 0 1 30 || diag "gate did not go active for the SIGTERM check"
trace_start
kill -TERM $PID
wait $PID
rc=$?
trace_stop
PID=
check "SIGTERM: acud drives every output inactive, then exits 0 (exit $rc; trace)" \
	'[ $rc = 0 ] && traced_last_inactive'
start_acud || { diag "acud did not restart"; acud_log 10; }
st=$(state_of 1)
check "after a restart the session is back ($st), not re-armed, its gate inactive" \
	'[ "$st" = running ] && [ "$(v 0)" = 0 ] && ! ctl --json status 1 | grep -q "\"armed\":true"'

# --- 10. kill -9, then acud --all-off, outputs pulled active ------------------------
ctlq stim 1 on
wait_val 0 1 30 || diag "gate did not go active for the kill -9 check"
# The worst case: every output pulled to its active level while acud holds it;
# gpio-sim returns a released line to its pull.
pull_all active
kill -9 $PID
wait $PID 2>/dev/null
PID=
sleep 0.2
check "kill -9 with the gate pulled active leaves it active: the hazard is real ($(out_levels))" \
	'[ "$(v 0)" = 1 ]'
trace_start
acud --all-off -c $CONF 2>$W/alloff.err
rc=$?
trace_stop
diag "acud --all-off: exit $rc: $(tr '\n' ' ' <$W/alloff.err)"
check "acud --all-off drives every output inactive and exits 0 (trace)" \
	'[ $rc = 0 ] && traced_last_inactive'
check "after acud --all-off every output reads inactive though pulled active ($(out_levels))" \
	outputs_inactive
pull_all inactive

# acud's whole log goes to the console log only (run.sh shows "#" lines).
sed 's/^/acud-log: /' $W/acud.log
[ $FAIL = 0 ] || { diag "acud's log, last lines (all of it in the console log):"; acud_log 15; }
echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ]
