#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 65-rs-lifecycle.sh - qaic_rs over its whole life on the emulated AIC100, beyond the one boot of
# 60-rs-boot: coexistence with the C qaic (one after the other on the same card, and both loaded
# at once on two cards without any MHI client binding across), insmod/rmmod cycles that leave
# nothing behind and do not grow memory, missing firmware (no SBL, a missing Sahara image), a
# corrupted image, SYS_ERR while the card is halted in SBL, during the Sahara transfer and in
# mission mode, removal during the boot. Guest side: tests/guest/rs-lifecycle.sh (one mode per
# run; what each checks is described there).
#
# RS_LIFECYCLE_CASES="coexist cycles firmware syserr" selects cases; that is the default.
# RS_LIFECYCLE_CYCLES=10 sets the number of insmod/rmmod cycles.
# RS_LIFECYCLE_COEXIST_CLEAN=scan (make check-debug): the coexist run's kernel log is not judged
# here, line by line, but by check-debug's splat scan, which attributes each report to a module
# and knows the upstream C driver's lockdep report (its wrappers->lock, taken in softirq and
# with softirqs on) that the debug kernel prints whenever qaic.ko talks to a card.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko
[[ -f $ko ]] || { record 0 1 "rs-lifecycle: qaic_rs.ko built"; die "$ko does not exist"; }

tmp=$(mktemp -d) || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

export LC_SYSERR_HOOK

# check_run NAME TITLE [scan]: record the guest's checks and the host-side ones of a finished
# run (with "scan", not the kernel log: see RS_LIFECYCLE_COEXIST_CLEAN)
check_run() {
	local dir t=$2 bad=0
	dir=$(guest_dir "$1")
	guest_record "$dir" "$t"
	[[ ${3:-} == scan ]] || guest_record_kernel_clean "$dir" "$t" || bad=1
	guest_record_qemu_clean "$dir" "$t" || bad=1
	((bad == 0))
}

rc=0
n=${RS_LIFECYCLE_CYCLES:-10}
for c in ${RS_LIFECYCLE_CASES:-coexist cycles firmware syserr}; do
	name=rs-lifecycle-$c
	# kunit.enable=0: qaic_rs's KUnit suites (their verdict is 20-smoke's) would run at every
	# insmod, which then returns only after them, when the boot is long over (the syserr case
	# removes the driver during the boot) and with their allocations in the memory counters
	opts=(--name "$name" --control --module qaic_rs --script "$REPO/tests/guest/rs-lifecycle.sh"
		--cmdline kunit.enable=0 --timeout 300)
	case $c in
	coexist)
		t="rs-lifecycle coexist (qaic_rs and qaic, 2 cards)"
		opts+=(--cards 2 --module qaic --args coexist)
		if [[ ${RS_LIFECYCLE_COEXIST_CLEAN:-} == scan ]]; then
			echo scan >"$tmp/kernel-clean"
			opts+=(--file "$tmp/kernel-clean:/qaic/kernel-clean")
		fi
		# buffers shared between the two drivers' cards (PRIME)
		if gcc -static -O2 -Wall -Werror -o "$tmp/prime-foreign" "$REPO/tests/guest/prime-foreign.c"; then
			opts+=(--file "$tmp/prime-foreign:/bin/prime-foreign")
		else
			record 0 1 "$t: prime-foreign builds"
			rc=1
		fi
		;;
	cycles)
		t="rs-lifecycle $n insmod/rmmod cycles"
		opts+=(--cards 1 --args "cycles $n" --timeout 600)
		;;
	firmware)
		t="rs-lifecycle missing and bad firmware"
		g_build_emulator
		rm -rf "$tmp/all" "$tmp/fw"
		if ! "$AIC100_EMU" gen-firmware --out "$tmp/all" >"$tmp/gen.log" 2>&1; then
			record 0 1 "$t: aic100-emu gen-firmware"
			cat "$tmp/gen.log" >&2
			rc=1
			continue
		fi
		mkdir "$tmp/fw"
		for f in "$tmp"/all/*; do
			case ${f##*/} in sbl.bin | fw4.bin) ;; *) cp "$f" "$tmp/fw/" ;; esac
		done
		opts+=(--cards 1 --args firmware --firmware "$tmp/fw"
			--file "$tmp/all/sbl.bin:/qaic/spare/sbl.bin" --file "$tmp/all/fw4.bin:/qaic/spare/fw4.bin")
		;;
	syserr)
		t="rs-lifecycle SYS_ERR during boot and in mission mode"
		opts+=(--cards 1 --args syserr --emu-log sahara)
		;;
	*)
		record 0 1 "rs-lifecycle: unknown case $c"
		rc=1
		continue
		;;
	esac
	guest_run "${opts[@]}" || rc=1
	dir=$(guest_dir "$name")
	clean=
	[[ $c == coexist && ${RS_LIFECYCLE_COEXIST_CLEAN:-} == scan ]] && clean=scan
	check_run "$name" "$t" $clean || rc=1
	case $c in
	cycles)
		sed -n 's/^QAIC-MEM: /memory growth: /p' "$dir/guest.log" >&2
		;;
	syserr)
		# the injected SYS_ERR must have hit the card during the Sahara transfer (EE 1 = SBL)
		first=$(grep -m 1 'entering SYS_ERR' "$dir/emu0.log")
		if [[ $first == *"(EE 1)"* ]] && grep -q 'SYS_ERR injected as image 1 starts loading' "$dir/emu0.log"; then
			record 1 0 "$t: SYS_ERR injected while the card was in SBL, loading image 1"
		else
			record 0 1 "$t: SYS_ERR injected while the card was in SBL, loading image 1 (emulator: '${first:-no SYS_ERR}')"
		fi
		;;
	esac
	[[ $(guest_verdict "$dir") == PASS ]] || rc=1
	((rc == 0)) || warn "$name: failures; logs in $dir (guest.log, emu*.log, dmesg.log)"
done
exit "$rc"
