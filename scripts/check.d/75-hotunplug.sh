#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 75-hotunplug.sh - hot unplug (tests/guest/hotunplug.sh, Documentation/reliability.rst "Hot
# unplug"): the emulated card is removed during the driver's bring-up of the card, during MANAGE
# calls in flight and during an execute workload of several threads with mapped buffer objects
# (surprise and orderly removal), and plugged in again each time. Per case: the users' calls fail
# with the driver's expected errnos, the mappings stay usable, the files close, the PCI remove
# ends, rmmod works, the card comes back ONLINE and a verified `qaic run` passes; the guest kernel
# log is clean. One card behind a pcie-root-port with native hotplug (guest.sh --hotplug) and the
# control socket (--control: emu_ctl and host_ctl); the runtime's static qaic and qaic-fuzz.
#
# HOTUNPLUG_DRIVERS selects the drivers (default: both, the upstream C driver qaic first).
# HOTUNPLUG_CASES_<driver> the cases per driver: qaic_rs all four (boot manage execute orderly);
# qaic only boot, because the C driver oopses when a file that was open during the removal is
# closed (Documentation/reliability.rst, "Hot unplug": HOTUNPLUG_CASES_qaic=execute reproduces
# it). HOTUNPLUG_CASES sets the cases of every driver.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

bin=$RUNTIME_BIN
log "hotunplug: static qaic-fuzz and qaic binaries"
if ! runtime_static_build -p qaic-fuzz -p qaic-cli; then
	record 0 1 "hotunplug: static qaic-fuzz and qaic binaries"
	exit 1
fi

rc=0
for drv in ${HOTUNPLUG_DRIVERS:-qaic qaic_rs}; do
	name=hotunplug-$drv
	t="hotunplug ($drv)"
	cv=HOTUNPLUG_CASES_$drv
	case $drv in
	qaic) cases=${!cv:-boot} ;;
	*) cases=${!cv:-boot manage execute orderly} ;;
	esac
	cases=${HOTUNPLUG_CASES:-$cases}
	guest_run --name "$name" --cards 1 --control --hotplug --module "$drv" \
		--file "$bin/qaic-fuzz:/bin/qaic-fuzz" --file "$bin/qaic:/bin/qaic" \
		--script "$REPO/tests/guest/hotunplug.sh" --args "$drv $cases" \
		--timeout 600 || rc=1
	dir=$(guest_dir "$name")
	guest_record_run "$dir" "$t" || rc=1
	# what each driver returned, for Documentation/reliability.rst
	grep -a 'qaic-test: RESULT ' "$dir/guest.log" | sed 's/^qaic-test: /  /'
	((rc == 0)) || warn "$name: failures; logs in $dir (guest.log, emu0.log, ctl.log, dmesg.log)"
done
exit "$rc"
