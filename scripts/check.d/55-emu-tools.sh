#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 55-emu-tools.sh - the emulator's own end-to-end probes against the upstream C qaic.ko and qaic_rs
# (emulator/tools): MANAGE through the uapi (STATUS, NNC STATUS passthrough, unknown NNC command,
# 1 MiB and 40 MiB DMA transfers whose CRC-32 the guest and the emulator must agree on, ACTIVATE,
# TERMINATE on close), then fault injection (garbled, delayed and dropped control responses,
# SYS_ERR with a full re-boot). Each guest check is recorded. Both drivers run the same probes:
# qaic_rs must give the same results and errnos as the C driver.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

rc=0
for mod in qaic qaic_rs; do
	for tool in probe faults; do
		name=emu-$tool
		[[ $mod == qaic ]] || name=emu-$tool-$mod
		EMU_TOOLS_MODULE=$mod "$REPO/emulator/tools/run-emu-$tool.sh" || rc=1
		dir=$(guest_dir "$name")
		guest_record "$dir" "emulator $tool ($mod)"
		guest_record_kernel_clean "$dir" "emulator $tool ($mod)" || rc=1
	done
done
exit "$rc"
