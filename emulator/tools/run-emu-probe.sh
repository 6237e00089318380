#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# run-emu-probe.sh [guest.sh options]: build emu-probe statically, run emu-probe-guest.sh on the
# bench with one emulated card and the upstream qaic.ko, then check on the host that the
# emulator received every DMA-transferred buffer intact (the CRC-32 the guest printed equals
# the one the emulator logged for the same tag). Timings: grep TIMING in the guest log.
# The control log area is enabled for the CRC check; for timing runs use
# `RUN_EMU_PROBE_LOG= run-emu-probe.sh` (the DMA check is then skipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${QAIC_CACHE:-/var/tmp/qaic-rs}
log_areas=${RUN_EMU_PROBE_LOG-control}
out=${TMPDIR:-/tmp}/emu-probe.$$
trap 'rm -f "$out"' EXIT
gcc -static -O2 -Wall -o "$out" "$here/emu-probe.c"
# EMU_TOOLS_MODULE selects the driver under test: qaic (default, the upstream C driver) or qaic_rs
mod=${EMU_TOOLS_MODULE:-qaic}
name=emu-probe
[[ $mod == qaic ]] || name=emu-probe-$mod
args=(--name "$name" --cards 1 --module "$mod" --file "$out:/bin/emu-probe" --script "$here/emu-probe-guest.sh" --args "$mod")
[[ -n $log_areas ]] && args+=(--emu-log "$log_areas")
rc=0
"$repo/scripts/guest.sh" "${args[@]}" "$@" || rc=$?
run=${QAIC_RUNS:-$cache/runs}/$name
grep TIMING "$run/guest.log" || true
if [[ -n $log_areas ]]; then
	n=0
	while read -r _ _ tag _ size _ crc; do
		got=$(grep -E "DMA_XFER handle [0-9]+ tag $tag:" "$run/emu0.log" | tail -n 1 | sed -n 's/.*buffer CRC-32 \(0x[0-9a-f]*\).*/\1/p')
		if [[ $got == "$crc" ]]; then
			echo "PASS dma-content tag $tag: $size bytes, CRC-32 $crc on both sides"
		else
			echo "FAIL dma-content tag $tag: guest CRC-32 $crc, emulator ${got:-nothing}"
			rc=1
		fi
		n=$((n + 1))
	done < <(grep -a '^DMA-CRC' "$run/guest.log")
	((n > 0)) || { echo "FAIL dma-content: the guest reported no DMA transfer"; rc=1; }
fi
exit "$rc"
