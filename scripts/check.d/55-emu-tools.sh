#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 55-emu-tools.sh - the emulator's own end-to-end probes against the upstream C qaic.ko
# (emulator/tools): MANAGE through the uapi (STATUS, NNC STATUS passthrough, unknown NNC command,
# 1 MiB and 40 MiB DMA transfers whose CRC-32 the guest and the emulator must agree on, ACTIVATE,
# TERMINATE on close), then fault injection (garbled, delayed and dropped control responses,
# SYS_ERR with a full re-boot). Each guest check is recorded.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

rc=0
for tool in probe faults; do
	"$REPO/emulator/tools/run-emu-$tool.sh" || rc=1
	dir=$(guest_dir "emu-$tool")
	guest_record "$dir" "emulator $tool (C driver)"
	guest_record_kernel_clean "$dir" "emulator $tool (C driver)" || rc=1
done
exit "$rc"
