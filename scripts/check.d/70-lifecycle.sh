#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 70-lifecycle.sh - the card's side channels and recovery with workloads running
# (tests/guest/lifecycle.sh): boot log in debugfs, periodic timesync seen by the emulator, RAS
# counters for every source and malformed reports dropped, SSR of one workload's DBC with the
# other one running (DBC states, crash dump in devcoredump, fresh workload after), SYS_ERR and a
# RAS UE (SoC reset) during a workload with the card coming back. One emulated card with its
# control socket and --reset-syserr; the runtime's static `qaic` binary (40-runtime builds it).
#
# LIFECYCLE_DRIVERS selects the drivers (default: both, the upstream C driver qaic first).
# LIFECYCLE_FEATURES_<driver> overrides the features a driver is expected to have (comma
# separated, see tests/guest/lifecycle.sh; unset: all of them for both). The checks of a feature
# a driver is not expected to have are reported as SKIP.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

bin=$RUNTIME_BIN/qaic
log "lifecycle: the static qaic binary"
runtime_static_build -p qaic-cli || { record 0 1 "lifecycle: static qaic binary"; exit 1; }

rc=0
for drv in ${LIFECYCLE_DRIVERS:-qaic qaic_rs}; do
	name=lifecycle-$drv
	fv=LIFECYCLE_FEATURES_$drv
	args=$drv
	[[ -n ${!fv:-} ]] && args+=" ${!fv}"
	t="lifecycle ($drv)"
	guest_run --name "$name" --cards 1 --control --module "$drv" --emu-arg=--reset-syserr \
		--emu-log ssr --file "$bin:/bin/qaic" --script "$REPO/tests/guest/lifecycle.sh" \
		--args "$args" --timeout 600 || rc=1
	dir=$(guest_dir "$name")
	guest_record_run "$dir" "$t" || rc=1
	((rc == 0)) || warn "$name: failures; logs in $dir (guest.log, emu0.log, ctl.log, dmesg.log)"
done
exit "$rc"
