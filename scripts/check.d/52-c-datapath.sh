#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 52-c-datapath.sh - the emulated card's data path (DMA bridge, NNC program management, compute
# stand-in) proven by the upstream C qaic.ko: tests/guest/c-datapath.c, built statically against
# uapi/qaic_accel.h, loads constants and a network, activates it, executes and partially executes
# inferences and checks every output against a CPU reference, in three interrupt modes:
#   irq   emulated IOMMU, one MSI per DBC
#   poll  emulated IOMMU, qaic datapath_polling=1
#   msi1  no IOMMU and the emulator's --single-msi: every DBC on vector 0
# C_DATAPATH_CASES="irq poll msi1" selects cases; C_DATAPATH_ROUNDS (default 20) rounds of 4.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

ko=$KBUILD/drivers/accel/qaic/qaic.ko
if [[ ! -f $ko ]]; then
	record 0 1 "c-datapath: qaic.ko built"
	die "$ko does not exist: build the kernel first (scripts/build-kernel.sh)"
fi

bin=$QAIC_CACHE/c-datapath
if gcc -static -O2 -Wall -Werror -D__EXPORTED_HEADERS__ -D__user= -I "$REPO/uapi" -I "$KSRC/include/uapi/drm" \
	-I "$KSRC/include/uapi" -o "$bin" "$REPO/tests/guest/c-datapath.c"; then
	record 1 0 "c-datapath: builds against uapi/qaic_accel.h"
else
	record 0 1 "c-datapath: builds against uapi/qaic_accel.h"
	exit 1
fi

rc=0
for mod in ${C_DATAPATH_MODULES:-qaic qaic_rs}; do
	for mode in ${C_DATAPATH_CASES:-irq poll msi1}; do
		opts=()
		case $mode in
		irq | poll) opts+=(--iommu) ;;
		msi1) opts+=(--emu-arg=--single-msi) ;;
		esac
		name=c-datapath-$mode
		[[ $mod == qaic ]] || name=rs-datapath-$mode
		guest_run --name "$name" --cards 1 "${opts[@]}" --module "$mod" --emu-log nnc,dbc \
			--file "$bin:/bin/c-datapath" --script "$REPO/tests/guest/c-datapath.sh" \
			--args "$mode ${C_DATAPATH_ROUNDS:-20} $mod" --timeout 420 || rc=1
		dir=$(guest_dir "$name")
		t="datapath $mod ($mode)"
		[[ $mod == qaic ]] && t="c-datapath ($mode)"
		guest_record "$dir" "$t"
		guest_record_kernel_clean "$dir" "$t" || rc=1
		guest_record_qemu_clean "$dir" "$t" || rc=1
		grep -a TIMING "$dir/guest.log" || true
		((rc == 0)) || warn "$name failed; logs in $dir (guest.log, emu0.log, dmesg.log)"
	done
done
exit "$rc"
