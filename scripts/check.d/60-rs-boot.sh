#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 60-rs-boot.sh - qaic_rs boots the emulated AIC100 to mission mode: probe (BARs, MSI topology,
# accel node), MHI controller registration and power-up, SBL download over BHI, the Sahara client
# serving the firmware images, mission mode (AMSS channel devices), then a clean unload. Both interrupt topologies: no IOMMU (one shared
# vector) and an emulated IOMMU with interrupt remapping (17 vectors). Guest side:
# tests/guest/rs-boot.sh.
#
# RS_BOOT_CASES="1 1-iommu 1-badversion" selects cases (CARDS[-iommu|-badversion]); that is the
# default. -badversion: the emulated card speaks control protocol 6.0 and must be refused.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko
[[ -f $ko ]] || { record 0 1 "rs-boot: qaic_rs.ko built"; die "$ko does not exist"; }

rc=0
for c in ${RS_BOOT_CASES:-1 1-iommu 1-badversion}; do
	cards=${c%%-*}
	opts=()
	expect=online
	t="qaic_rs boot (no IOMMU, 1 MSI)"
	case $c in
	*-iommu) opts+=(--iommu); t="qaic_rs boot (IOMMU, 17 MSI)" ;;
	*-badversion) opts+=(--emu-arg=--control-version=6.0); expect=refused
		t="qaic_rs boot (card with control protocol 6.0)" ;;
	esac
	name=rs-boot-$c
	guest_run --name "$name" --cards "$cards" "${opts[@]}" --control --module qaic_rs \
		--script "$REPO/tests/guest/rs-boot.sh" --args "60 $expect" --timeout 300 || rc=1
	dir=$(guest_dir "$name")
	guest_record "$dir" "$t"
	guest_record_qemu_clean "$dir" "$t" || rc=1
	((rc == 0)) || warn "$name failed; logs in $dir (guest.log, emu*.log, dmesg.log)"
done
exit "$rc"
