#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 50-c-driver.sh - validate the emulated AIC100 with a driver nobody here wrote: the upstream C
# qaic.ko must probe the emulated card, boot it to mission mode and go ONLINE, with both interrupt
# topologies: no IOMMU (single-MSI fallback) and an emulated IOMMU with interrupt remapping
# (17 vectors). Guest side: tests/guest/c-driver-bringup.sh; bench: scripts/guest.sh. First a
# bench self-test with a card: QEMU failing before it connects must not leave the emulator behind.
#
# C_DRIVER_CASES="1 1-iommu 2" selects cases (CARDS[-iommu]); that is the default.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

if [[ ! -f $REPO/emulator/Cargo.toml ]]; then
	warn "SKIPPED: no emulator crate at $REPO/emulator yet, nothing to test the C driver against"
	exit 0
fi
ko=$KBUILD/drivers/accel/qaic/qaic.ko
if [[ ! -f $ko ]]; then
	record 0 1 "c-driver: qaic.ko built"
	die "$ko does not exist: build the kernel first (scripts/build-kernel.sh)"
fi

rc=0
# Bench self-test: QEMU failing before it connects leaves the emulator in accept(); the bench
# must report a bench error (3) and stop the emulator.
log "bench self-test: the next run must fail to start QEMU"
guest_run --name bench-qemu-fails --cards 1 --timeout 60 -- -device no-such-device
src=$?
dir=$(guest_dir bench-qemu-fails)
left=$(pgrep -f "$dir/emu0.sock" | tr '\n' ' ')
if ((src == 3)) && [[ -z $left ]]; then
	record 1 0 "bench: QEMU failing early stops the emulator"
else
	record 0 1 "bench: QEMU failing early stops the emulator (exit $src, left running: ${left:-none})"
	rc=1
fi

for c in ${C_DRIVER_CASES:-1 1-iommu 2}; do
	cards=${c%%-*}
	opts=()
	[[ $c == *-iommu ]] && opts+=(--iommu)
	name=c-driver-$c
	t="c-driver ($cards card$( ((cards > 1)) && echo s), $([[ $c == *-iommu ]] && echo "IOMMU, 17 MSI" || echo "no IOMMU, 1 MSI"))"
	guest_run --name "$name" --cards "$cards" "${opts[@]}" --control --module qaic \
		--script "$REPO/tests/guest/c-driver-bringup.sh" --args 120 --timeout 420 || rc=1
	dir=$(guest_dir "$name")
	guest_record "$dir" "$t"
	guest_record_kernel_clean "$dir" "$t" || rc=1
	guest_record_qemu_clean "$dir" "$t" || rc=1
	((rc == 0)) || warn "$name failed; logs in $dir (guest.log, emu*.log, dmesg.log)"
done
exit "$rc"
