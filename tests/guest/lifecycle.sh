# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/check.d/70-lifecycle.sh: the card's side channels and recovery paths
# with a workload running, on one emulated card started with --control and --reset-syserr
# (Documentation/emulator.rst). In order:
#
#   bootlog   debugfs bootlog equals what the emulator sent (size and CRC-32, bootlog-status)
#   timesync  the emulator receives a periodic timesync every timesync_delay_ms (250 here), and
#             offset + QTimer is close to the wall clock (timesync-status)
#   ras       one CE per source 0..6 and two UE non-fatal: ce_count / ue_nonfatal_count count
#             each; malformed reports (magic, version, type, len, err_type) are not counted
#   ssr       two `qaic bench` workloads (several threads) on two DBCs; `ssr DBC dump 300` on
#             the first: dbc<i>_state goes 1 -> 2 -> 3 -> 4 -> (5) -> 0, the crashed workload
#             ends with an error, the other passes, the crash dump shows up in devcoredump with
#             the layout of uapi.md §11.2 and the emulator's regions (CRC-32 of the file) — a
#             driver expected without dump support must decline it, and none appears — and a
#             fresh workload passes
#   syserr    SYS_ERR with a workload running: the workload fails, the card comes back ONLINE,
#             a fresh workload passes, the boot log is there again
#   ue        a RAS UE: the host resets the SoC, counts it, the card comes back (PBL reports the
#             reset with SYS_ERR, --reset-syserr), counters persist, a fresh workload passes
#   reset     the user-triggered reset (the MHI core's mhiN/soc_reset) during a workload: the
#             workload fails, the card comes back, a fresh workload passes
#
# Args: DRIVER [FEATURES]   DRIVER = qaic | qaic_rs; FEATURES = the features DRIVER is expected
# to have, comma separated, among bootlog,timesync,ras,ssr,dump,syserr,ue,reset (default: all for
# both drivers). A check of a feature the driver does not have is reported as SKIP.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

set -- $QAIC_TEST_ARGS
QAIC_DRIVER=${1:-qaic}
case $QAIC_DRIVER in
qaic) feats=${2:-bootlog,timesync,ras,ssr,dump,syserr,ue,reset} ;;
qaic_rs) feats=${2:-bootlog,timesync,ras,ssr,dump,syserr,ue,reset} ;;
*)
	fail args "unknown driver $QAIC_DRIVER"
	exit 1
	;;
esac
info "driver $QAIC_DRIVER, expected features: $feats"

# has FEATURE: the driver is expected to have FEATURE
has() {
	case ",$feats," in *",$1,"*) return 0 ;; esac
	return 1
}

# want FEATURE NAME: true if the checks of FEATURE run; else reports NAME as skipped
want() {
	has "$1" && return 0
	skip "$2" "$QAIC_DRIVER: no $1 support expected"
	return 1
}

# field KEY LINE: the value of KEY=... in an emulator answer line
field() {
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

params=
has timesync && params="timesync_delay_ms=250"
kunit_skip_module_suites
# shellcheck disable=SC2086
check insmod load_module "$QAIC_DRIVER" $params || exit 1
check accel-node wait_for 10 test -c /dev/accel/accel0 || exit 1
pdev=$(aic_devices | head -n 1)
bdf=${pdev##*/}
accel=/sys/class/accel/accel0
ctl=QAIC_CONTROL
# debugfs: the C driver's files are in the DRM accel directory, qaic_rs has its own
bootlog=/sys/kernel/debug/accel/$bdf/bootlog
if [ "$QAIC_DRIVER" = qaic_rs ]; then
	ctl=QAIC_RS_CONTROL
	bootlog=/sys/kernel/debug/qaic_rs/$bdf/bootlog
fi
mhi=
for m in "$pdev"/mhi*; do [ -e "$m" ] && mhi=${m##*/}; done

online() {
	test -e "/sys/bus/mhi/devices/${mhi}_$ctl/driver" && qaic list >/dev/null 2>&1
}
check online wait_for 120 online || exit 1

# ---- boot log ---------------------------------------------------------------------------------

# bootlog_matches: debugfs bootlog has the size and CRC-32 the emulator reports
bootlog_matches() {
	lc_b=$bootlog
	lc_st=$(emu_ctl 0 bootlog-status) || return 1
	lc_want="$(field bytes "$lc_st") $(field crc32 "$lc_st")"
	lc_got="$(wc -c <"$lc_b" | tr -d ' ') $(crc32 <"$lc_b")"
	echo "bootlog: emulator '$lc_want', debugfs '$lc_got'"
	[ "$lc_want" = "$lc_got" ] && [ "$(field messages "$lc_st")" -ge 5 ]
}
if want bootlog bootlog; then
	check bootlog bootlog_matches
	check bootlog-text grep -q '^SBL: DDR training done' "$bootlog"
fi

# ---- periodic timesync ----------------------------------------------------------------------

timesync_ok() {
	# the two samples are emulator status requests through the serial relay, which take a while
	# on a loaded guest: the messages between them are counted against the time between the
	# answer of the first and the request of the second (at least) and between the request of
	# the first and the answer of the second (at most)
	lc_t0=$(cut -d' ' -f1 /proc/uptime)
	lc_a=$(emu_ctl 0 timesync-status) || return 1
	lc_t1=$(cut -d' ' -f1 /proc/uptime)
	sleep 4
	lc_t2=$(cut -d' ' -f1 /proc/uptime)
	lc_b=$(emu_ctl 0 timesync-status) || return 1
	lc_t3=$(cut -d' ' -f1 /proc/uptime)
	echo "timesync: before '$lc_a'"
	echo "timesync: after  '$lc_b' (samples $lc_t0..$lc_t1 and $lc_t2..$lc_t3 s)"
	lc_n=$(($(field periodic "$lc_b") - $(field periodic "$lc_a")))
	lc_skew=$(field skew_ms "$lc_b")
	lc_skew=${lc_skew#-}
	lc_iv=$(field interval_ms "$lc_b")
	# one every 250 ms; TCG timers are coarse, so half to one and a half times that many
	awk -v n="$lc_n" -v lo="$(awk "BEGIN { print $lc_t2 - $lc_t1 }")" \
		-v hi="$(awk "BEGIN { print $lc_t3 - $lc_t0 }")" \
		'BEGIN { exit !(n >= lo / 0.25 * 0.5 && n <= hi / 0.25 * 1.5) }' &&
		[ "$lc_iv" -ge 150 ] && [ "$lc_iv" -le 600 ] &&
		[ "$lc_skew" -lt 10000 ] && [ "$(field bad "$lc_b")" = 0 ]
}
want timesync timesync && check timesync timesync_ok

# ---- RAS ------------------------------------------------------------------------------------

cnt() { cat "$pdev/$1" 2>/dev/null; }
# cnt_is FILE VALUE: the counter FILE reads VALUE now (for wait_for)
cnt_is() { [ "$(cnt "$1")" = "$2" ]; }

# ras_counts TYPE FILE SOURCES...: each report increments FILE by one
ras_counts() {
	lc_t=$1
	lc_f=$2
	shift 2
	for lc_s in "$@"; do
		lc_c=$(cnt "$lc_f")
		emu_ctl 0 ras "$lc_t" "$lc_s" >/dev/null || return 1
		if ! wait_for 10 cnt_is "$lc_f" $((lc_c + 1)); then
			echo "ras $lc_t $lc_s: $lc_f stays $(cnt "$lc_f") (was $lc_c)"
			return 1
		fi
	done
}

# malformed reports are dropped: a valid CE sent after them is the only one counted
ras_malformed_dropped() {
	lc_ce=$(cnt ce_count)
	lc_ue=$(cnt ue_count)
	lc_nf=$(cnt ue_nonfatal_count)
	for lc_f in magic version type len errtype; do
		emu_ctl 0 ras-bad "$lc_f" 2 >/dev/null || return 1
	done
	emu_ctl 0 ras ce 3 >/dev/null || return 1
	wait_for 10 cnt_is ce_count $((lc_ce + 1)) || return 1
	sleep 0.5
	echo "after malformed + 1 CE: ce $(cnt ce_count) ue $(cnt ue_count) uenf $(cnt ue_nonfatal_count) (were $lc_ce $lc_ue $lc_nf)"
	[ "$(cnt ce_count)" = $((lc_ce + 1)) ] && [ "$(cnt ue_count)" = "$lc_ue" ] &&
		[ "$(cnt ue_nonfatal_count)" = "$lc_nf" ]
}

if want ras ras; then
	check ras-sysfs test -r "$pdev/ce_count" -a -r "$pdev/ue_count" -a -r "$pdev/ue_nonfatal_count"
	check ras-ce-all-sources ras_counts ce ce_count 0 1 2 3 4 5 6
	check ras-uenf ras_counts uenf ue_nonfatal_count 1 6
	check ras-malformed-dropped ras_malformed_dropped
	check ras-no-ue ras_counts ce ce_count 2 # a fence: still counting
	[ "$(cnt ue_count)" = 0 ] && pass ras-ue-zero || fail ras-ue-zero "ue_count $(cnt ue_count)"
fi

# ---- SSR with two workloads -----------------------------------------------------------------

# assigned_dbcs: ids of the DBCs in state 1 (ASSIGNED)
assigned_dbcs() {
	for lc_i in $(seq 0 15); do
		[ "$(cat "$accel/dbc${lc_i}_state" 2>/dev/null)" = 1 ] && echo "$lc_i"
	done
	return 0
}

# new_dbc OLD: wait until a DBC other than those in OLD is assigned; print it
new_dbc() {
	lc_end=$(($(cut -d. -f1 /proc/uptime) + 60))
	while [ "$(cut -d. -f1 /proc/uptime)" -lt "$lc_end" ]; do
		for lc_i in $(assigned_dbcs); do
			case " $1 " in *" $lc_i "*) ;; *)
				echo "$lc_i"
				return 0
				;;
			esac
		done
		sleep 0.1
	done
	return 1
}

# watch_state I OUT: record the changes of dbc<I>_state into OUT until it is back to 0 (60 s)
watch_state() {
	lc_end=$(($(cut -d. -f1 /proc/uptime) + 60))
	lc_last=
	: >"$2"
	while [ "$(cut -d. -f1 /proc/uptime)" -lt "$lc_end" ]; do
		lc_v=$(cat "$accel/dbc$1_state")
		if [ "$lc_v" != "$lc_last" ]; then
			echo "$lc_v" >>"$2"
			lc_last=$lc_v
		fi
		[ "$lc_v" = 0 ] && return 0
	done
	return 1
}

# wait_pid PID SECONDS: wait for a background job with a bound; prints nothing, returns its status
# uevents_start: from now on the kernel's uevents are appended to /tmp/uevents
# (SEQNUM ACTION DEVPATH DBC_ID DBC_STATE)
uevents_start() {
	: >/tmp/uevents
	printf '#!/bin/sh\necho "$SEQNUM $ACTION $DEVPATH $DBC_ID $DBC_STATE" >>/tmp/uevents\n' >/tmp/uevent-log
	chmod +x /tmp/uevent-log
	uevent_listen /tmp/uevent-log
}

# uevent_states DBC: the DBC_STATE values of the accel node's change uevents for DBC, in order
uevent_states() {
	# in the kernel's order: helpers run as separate processes and may append out of order
	sort -n /tmp/uevents |
		awk -v d="$1" '$2 == "change" && $3 ~ /\/accel\/accel0$/ && $4 == d { printf "%s ", $5 }'
}

wait_pid() {
	lc_end=$(($(cut -d. -f1 /proc/uptime) + $2))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(cut -d. -f1 /proc/uptime)" -ge "$lc_end" ]; then
			kill "$1"
			wait "$1"
			return 124
		fi
		sleep 0.2
	done
	wait "$1"
}

devcd_of_card() {
	for lc_d in /sys/class/devcoredump/devcd*; do
		[ -e "$lc_d/failing_device" ] || continue
		[ "$(basename "$(readlink "$lc_d/failing_device")")" = "$bdf" ] && echo "$lc_d" && return 0
	done
	return 1
}

if want ssr ssr; then
	qaic bench -n 200000 --threads 3 --queue-depth 2 --json >/tmp/wa 2>&1 &
	pa=$!
	da=$(new_dbc "") && pass ssr-workload-a-assigned || fail ssr-workload-a-assigned "no DBC assigned"
	# B must outlast the SSR (about 2 s with the pauses, more on a loaded guest). The same count
	# for both drivers: on a kernel without high-resolution timers (the test kernel) the C
	# driver's short sleeps last a whole tick and it is several times slower, on one with them
	# (the packaged kernel) it did 12000 of these requests in 5.2 s, too fast
	nb=15000
	qaic bench -n "$nb" --threads 2 --queue-depth 2 --json >/tmp/wb 2>&1 &
	pb=$!
	db=$(new_dbc "$da") && pass ssr-workload-b-assigned || fail ssr-workload-b-assigned "no second DBC"
	info "workload A on DBC $da (pid $pa), B on DBC $db (pid $pb)"
	sleep 1
	# the card always offers its crash dump: a driver without dump support declines it
	mode=dump
	dmesg_mark
	uevents_start
	watch_state "$da" /tmp/states &
	pw=$!
	# the watcher has read the state before the SSR (it records each value it reads first)
	wait_for 10 test -s /tmp/states
	check ssr-inject emu_ctl 0 ssr "$da" "$mode" 300
	wait_pid "$pw" 70
	wrc=$?
	states=$(tr '\n' ' ' </tmp/states)
	info "DBC $da states: $states"
	# Polling reads what the file says when the watcher runs: the states in their order, from 1
	# to 0, but a loaded guest may not run it during a short one (2, 3: one was missed on the
	# debug kernel) and 5 (AFTER_POWER_UP) lasts only until the host's answer. The uevents below
	# are the check of every transition.
	case "$states" in
	"1 2 3 4 0 " | "1 2 3 4 5 0 ") pass ssr-dbc-states ;;
	"1 "*"0 ")
		if echo "$states" | awk '{ for (i = 2; i <= NF; i++) if (rank[$i] <= rank[$(i - 1)]) exit 1 }
			BEGIN { rank[1] = 1; rank[2] = 2; rank[3] = 3; rank[4] = 4; rank[5] = 5; rank[0] = 6 }'; then
			info "DBC $da: the watcher missed some states: $states"
			pass ssr-dbc-states
		else
			fail ssr-dbc-states "DBC $da went through '$states' (out of order)"
		fi
		;;
	*) fail ssr-dbc-states "DBC $da went through '$states' (watcher status $wrc)" ;;
	esac
	# the uevents of the accel node for that channel: every state but 5 (which lasts only
	# until the host answers, and may be announced or not); the helper runs asynchronously
	sleep 1
	ev=$(uevent_states "$da" | tr ' ' '\n' | grep -vx 5 | tr '\n' ' ')
	info "DBC $da uevents (DBC_STATE): $(uevent_states "$da")"
	[ "$ev" = "2 3 4 0 " ] && pass ssr-uevents || fail ssr-uevents "DBC_STATE uevents of DBC $da: '$ev'"
	st=$(emu_ctl 0 ssr-status)
	info "emulator: $st"
	[ "$(field outcome "$st")" = complete ] && [ "$(field events_acked "$st")" = 4 ] &&
		pass ssr-complete || fail ssr-complete "$st"
	[ "$(cat "$accel/dbc${db}_state")" = 1 ] && pass ssr-other-dbc-assigned ||
		fail ssr-other-dbc-assigned "DBC $db state $(cat "$accel/dbc${db}_state")"
	# the crashed workload ends with an error, within bounds
	wait_pid "$pa" 60
	ra=$?
	info "workload A exit status $ra: $(tail -n 2 /tmp/wa | tr '\n' ' ')"
	[ "$ra" != 0 ] && [ "$ra" != 124 ] && pass ssr-workload-a-fails ||
		fail ssr-workload-a-fails "exit status $ra"
	b_running=0
	kill -0 "$pb" 2>/dev/null && b_running=1
	wait_pid "$pb" $((240 * ${QAIC_TIMEOUT_SCALE:-1}))
	rb=$?
	info "workload B exit status $rb (running after the SSR: $b_running): $(tail -n 1 /tmp/wb)"
	[ "$rb" = 0 ] && grep -q "\"requests\":$((2 * nb)),.*\"verified\":true" /tmp/wb &&
		pass ssr-workload-b-passes || fail ssr-workload-b-passes "exit status $rb"
	[ "$b_running" = 1 ] && pass ssr-workload-b-overlapped ||
		fail ssr-workload-b-overlapped "B was done before the SSR ended: make it longer"
	if ! has dump; then
		# declined (DEBUG_TRANSFER_INFO answered with a NACK), and no devcoredump appears
		[ "$(field info "$st")" = nack ] && [ -z "$(devcd_of_card)" ] && pass ssr-dump-declined ||
			fail ssr-dump-declined "emulator: $st; devcoredump: '$(devcd_of_card)'"
	else
		d=$(devcd_of_card)
		if [ -n "$d" ]; then
			got="$(wc -c <"$d/data" | tr -d ' ') $(crc32 <"$d/data")"
			want_="$(field dump_size "$st") $(field dump_crc32 "$st")"
			info "devcoredump $d: $got, emulator: $want_"
			check ssr-dump-magic test "$(dd if="$d/data" bs=8 count=1 2>/dev/null | xxd -p)" = efcdab9078563412
			check ssr-dump-text grep -q 'DBC '"$da"': workload stopped by an injected subsystem restart' "$d/data"
			[ "$got" = "$want_" ] && pass ssr-dump-contents || fail ssr-dump-contents "$got != $want_"
			echo 1 >"$d/data"
		else
			fail ssr-dump-present "no devcoredump of $bdf"
		fi
	fi
	check ssr-fresh-workload qaic_run_verified
	check ssr-dbc-idle test "$(cat "$accel/dbc${da}_state")" = 0
fi

# ---- SYS_ERR during a workload --------------------------------------------------------------

# reset_during_workload PREFIX INJECT-NAME WAIT-S CMD...: a long workload runs on a channel of its
# own, CMD resets the card under it: the workload fails within WAIT-S seconds, the card comes
# back ONLINE and a fresh workload passes (checks PREFIX-workload-fails, -online-again,
# -fresh-workload)
reset_during_workload() {
	lc_p=$1 lc_i=$2 lc_w=$3
	shift 3
	qaic bench -n 200000 --threads 2 --queue-depth 2 --json >/tmp/w-$lc_p 2>&1 &
	lc_pid=$!
	new_dbc "" >/dev/null || new_dbc "x" >/dev/null
	sleep 1
	check "$lc_i" "$@"
	wait_pid "$lc_pid" "$lc_w"
	lc_rc=$?
	info "workload during the $lc_p reset: exit status $lc_rc: $(tail -n 2 /tmp/w-$lc_p | tr '\n' ' ')"
	[ "$lc_rc" != 0 ] && [ "$lc_rc" != 124 ] && pass "$lc_p-workload-fails" ||
		fail "$lc_p-workload-fails" "exit status $lc_rc"
	check "$lc_p-online-again" wait_for 120 online
	check "$lc_p-fresh-workload" wait_for 60 qaic_run_verified
}

if want syserr syserr; then
	reset_during_workload syserr syserr-inject 60 emu_ctl 0 sys-err
	has bootlog && check syserr-bootlog bootlog_matches
fi

# ---- RAS UE: SoC reset and back -------------------------------------------------------------

if want ue ue; then
	ce=$(cnt ce_count)
	nf=$(cnt ue_nonfatal_count)
	check ue-inject emu_ctl 0 ras ue 2
	sleep 2
	check ue-online-again wait_for 120 online
	# the RAS files vanish while the card reboots; the counters live on in the device
	check ue-counted wait_for 20 cnt_is ue_count 1
	check ue-fresh-workload wait_for 60 qaic_run_verified
	check ue-counters-persist test "$(cnt ce_count) $(cnt ue_nonfatal_count)" = "$ce $nf"
fi

# ---- user-triggered reset: the MHI core's soc_reset file -------------------------------------

if want reset reset; then
	reset_during_workload reset reset-write 120 sh -c "echo 1 >'$pdev/$mhi/soc_reset'"
fi

check rmmod rmmod "$QAIC_DRIVER"
check_kernel_clean kernel-clean
