# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Guest side of the qaic_rs boot test (scripts/check.d/60-rs-boot.sh): qaic_rs against the
# emulated AIC100 card(s), as far as the driver boots the card today.
#
# What it checks, per card:
#   insmod              qaic_rs.ko loads (without its KUnit suites: 20-smoke runs them)
#   pci-bound-N         the qaic_rs PCI driver bound card N
#   msi-topology-N      no IOMMU: the single shared vector; IOMMU: 17 vectors
#   accel-node-N        /dev/accel/accelN exists
#   mission-mode-N      the MHI core downloaded the SBL over BHI, the driver's Sahara client
#                       served the firmware images, and the card entered mission mode: the AMSS
#                       channel devices (mhiN_QAIC_RS_CONTROL) appeared and the driver said so
#   emu-amss-N          (bench --control) the emulator agrees: EE AMSS (2), MHI M0, and it
#                       verified every image it received
#   online-N            the control channel client sent STATUS and accepted the card's protocol
#                       version: "control protocol 5.0...: card online" (with EXPECT=refused:
#                       the card speaks another version and the driver refuses it, "card refused")
#   bootlog-N           debugfs bootlog holds the emulated SBL's six log lines, NULs stripped
#   dbc-states-idle-N   /sys/class/accel/accelN/dbc{0..15}_state all read 0 (idle)
#   ras-*-N             (online) the RAS counters in sysfs start at 0; with --control each kind
#                       of report is counted and logged, and an uncorrectable one makes the
#                       driver ask for a SoC reset
#   no-c-client-N       only qaic_rs's own MHI clients are bound to our channels
#   rmmod, accel-node-gone, mhi-gone, kernel-clean
#
# Args: [TIMEOUT-SECONDS [online|refused]]  how long to wait for each card to reach mission mode
#       (default 60), and what the control-protocol handshake must end in (default online)
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

wait_s=${1:-60}
expect=${2:-online}

# counter_is FILE N: the RAS counter FILE reads N
counter_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }

# counters_are PCIDEV CE UE UE_NONFATAL
counters_are() {
	counter_is "$1/ce_count" "$2" && counter_is "$1/ue_count" "$3" &&
		counter_is "$1/ue_nonfatal_count" "$4"
}

# ras_checks CARD PCIDEV BDF MHI: the RAS counters (sysfs) of a card just online, and with the
# emulator's control socket each kind of report: counted and logged, and an uncorrectable error
# makes the driver ask for a SoC reset.
ras_checks() {
	_d=$2
	check "ras-counters-zero-$1" counters_are "$_d" 0 0 0
	[ "$QAIC_CONTROL" = 1 ] || return 0
	emu_ctl "$1" ras ce 2 >/dev/null
	check "ras-ce-counted-$1" wait_for 10 counter_is "$_d/ce_count" 1
	check "ras-ce-logged-$1" sh -c "dmesg | grep -q '$3: RAS: correctable error from DDR'"
	emu_ctl "$1" ras uenf 6 >/dev/null
	check "ras-uenf-counted-$1" wait_for 10 counter_is "$_d/ue_nonfatal_count" 1
	check "ras-uenf-logged-$1" sh -c "dmesg | grep -q '$3: RAS: uncorrectable non-fatal error from temperature sensor'"
	emu_ctl "$1" ras ue 1 >/dev/null
	check "ras-ue-counted-$1" wait_for 10 counter_is "$_d/ue_count" 1
	check "ras-ue-reset-$1" sh -c "dmesg | grep -q '$3: RAS: uncorrectable error, resetting the card'"
	check "ras-counters-kept-$1" counters_are "$_d" 1 1 1
}

devs=$(aic_devices)
kunit_skip_module_suites
dmesg_mark
if ! check insmod load_module qaic_rs; then
	dmesg_since
	exit 1
fi

i=0
for d in $devs; do
	bdf=$(basename "$d")
	check "pci-bound-$i" test "$(pci_driver_of "$d")" = qaic_rs
	if [ "$QAIC_IOMMU" = 1 ]; then
		check "msi-topology-$i" sh -c "dmesg | grep -q '$bdf: AIC100 bound: 17 interrupt vector(s), PerChannel mode'"
	else
		check "msi-topology-$i" sh -c "dmesg | grep -q '$bdf: AIC100 bound: 1 interrupt vector(s), Shared mode'"
	fi
	check "accel-node-$i" wait_for 10 test -c "/dev/accel/accel$i"
	mhi=
	for m in "$d"/mhi*; do [ -e "$m" ] && mhi=${m##*/} && break; done
	if [ -z "$mhi" ]; then
		fail "sbl-$i" "no MHI controller under $d"
	else
		check "mission-mode-$i" wait_for "$wait_s" sh -c \
			"test -e /sys/bus/mhi/devices/${mhi}_QAIC_RS_CONTROL && dmesg | grep -q '$bdf: card in mission mode'"
		if [ "$QAIC_CONTROL" = 1 ]; then
			st=$(emu_ctl "$i" status)
			case $st in
			*" ee=2 mhi_state=2 "*) pass "emu-amss-$i" ;;
			*) fail "emu-amss-$i" "emulator status: $st" ;;
			esac
		fi
		if [ "$expect" = online ]; then
			check "online-$i" wait_for 10 sh -c "dmesg | grep -q '${mhi}_QAIC_RS_CONTROL: control protocol 5\.0.*: card online'"
			check "debugfs-state-online-$i" sh -c "grep -q '^online' /sys/kernel/debug/qaic_rs/$bdf/state"
		else
			check "refused-$i" wait_for 10 sh -c "dmesg | grep -q '${mhi}_QAIC_RS_CONTROL: card refused, unusable until reset: Version'"
			check "debugfs-state-refused-$i" grep -qx refused "/sys/kernel/debug/qaic_rs/$bdf/state"
		fi
		cat "/sys/kernel/debug/qaic_rs/$bdf/state" "/sys/kernel/debug/qaic_rs/$bdf/channels"
		od -c "/sys/kernel/debug/qaic_rs/$bdf/bootlog" | tail -n 4
		check "bootlog-$i" sh -c "head -n 1 /sys/kernel/debug/qaic_rs/$bdf/bootlog | grep -qx 'aic100-emu SBL: boot log start' &&
			grep -qx 'SBL: PCIe link up, MHI ready in EE SBL' /sys/kernel/debug/qaic_rs/$bdf/bootlog &&
			test \$(wc -l </sys/kernel/debug/qaic_rs/$bdf/bootlog) = 6"
		check "dbc-states-idle-$i" sh -c "for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
			test \"\$(cat /sys/class/accel/accel$i/dbc\${n}_state)\" = 0 || exit 1; done"
		[ "$expect" = online ] && ras_checks "$i" "$d" "$bdf" "$mhi"
		# Only our own clients (qaic_rs_sahara, qaic_rs_control, ...) may be bound.
		foreign=
		for l in /sys/bus/mhi/devices/"${mhi}"_*/driver; do
			[ -e "$l" ] || continue
			drv=$(basename "$(readlink "$l")")
			case $drv in qaic_rs_*) ;; *) foreign="$foreign $drv" ;; esac
		done
		check "no-c-client-$i" test -z "$foreign"
		ls /sys/bus/mhi/devices/
	fi
	i=$((i + 1))
done

dmesg_since | grep -E 'qaic_rs|mhi' | head -40
check rmmod rmmod qaic_rs
check debugfs-gone sh -c '! test -e /sys/kernel/debug/qaic_rs'
check accel-node-gone sh -c '! ls /dev/accel/accel* >/dev/null 2>&1'
check mhi-gone sh -c '! ls /sys/bus/mhi/devices/mhi* >/dev/null 2>&1'
check_kernel_clean kernel-clean
