# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of the C-driver validation (scripts/check.d/50-c-driver.sh): the upstream qaic.ko
# against the emulated AIC100 card(s). Every check is a separate `check`/`pass`/`fail` line,
# so extend it by adding steps before the "unload" section.
#
# What it checks, per card (QAIC_CARDS of them):
#   pci-enumerated      17cb:a100 functions visible in sysfs
#   insmod              qaic.ko loads
#   pci-bound-N         the qaic PCI driver bound card N
#   msi-topology-N      no IOMMU: "operating in 1 MSI mode"; IOMMU: >= 17 vectors requested
#   accel-node-N        /dev/accel/accelN exists (the DRM accel device, registered at probe)
#   mission-mode-N      MHI reached mission mode: the QAIC_CONTROL channel device appeared
#                       (BHI loaded SBL, Sahara served the images, AMSS running)
#   online-N            qaic_mhi bound to QAIC_CONTROL, i.e. the control-protocol version check
#                       passed and the device went ONLINE
#   emu-amss-N          (bench --control) the emulator's own status agrees: EE AMSS (2), MHI M0
#   rmmod, accel-node-gone, mhi-gone
#
# Args: [TIMEOUT-SECONDS]  how long to wait for each card to reach mission mode (default 120)
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

wait_s=${1:-120}

devs=$(aic_devices)
ndev=$(echo "$devs" | grep -c .)
info "$ndev AIC100 function(s): $(echo "$devs" | tr '\n' ' ')"
check pci-enumerated test "$ndev" -eq "$QAIC_CARDS" || exit 1
[ -f /lib/firmware/qcom/aic100/sbl.bin ] || info "note: no /lib/firmware/qcom/aic100/sbl.bin"

dmesg_mark
if ! check insmod load_module qaic; then
	dmesg_since
	exit 1
fi

# ---- per card -----------------------------------------------------------------------------
i=0
for d in $devs; do
	bdf=$(basename "$d")
	check "pci-bound-$i" test "$(pci_driver_of "$d")" = qaic
	if [ "$QAIC_IOMMU" = 1 ]; then
		n=$(grep -c "$bdf" /proc/interrupts)
		if [ "$n" -ge 17 ]; then pass "msi-topology-$i"; else fail "msi-topology-$i" "$n vectors for $bdf, want >= 17"; fi
	else
		check "msi-topology-$i" sh -c "dmesg | grep -q '$bdf: Allocating .* MSIs failed, operating in 1 MSI mode'"
	fi
	# accel minors are numbered in probe order, which is the PCI order of $devs
	check "accel-node-$i" wait_for 10 test -c "/dev/accel/accel$i"
	mhi=
	for m in "$d"/mhi*; do [ -e "$m" ] && mhi=${m##*/} && break; done
	if [ -z "$mhi" ]; then
		fail "mission-mode-$i" "no MHI controller under $d"
		fail "online-$i" "no MHI controller"
	elif check "mission-mode-$i" wait_for "$wait_s" test -e "/sys/bus/mhi/devices/${mhi}_QAIC_CONTROL"; then
		check "online-$i" wait_for 10 test -e "/sys/bus/mhi/devices/${mhi}_QAIC_CONTROL/driver"
		if [ "$QAIC_CONTROL" = 1 ]; then
			st=$(emu_ctl "$i" status)
			case $st in
			*" ee=2 mhi_state=2 "*) pass "emu-amss-$i" ;;
			*) fail "emu-amss-$i" "emulator status: $st" ;;
			esac
		fi
	else
		fail "online-$i" "never reached mission mode"
	fi
	i=$((i + 1))
done

# ---- more bring-up checks go here (e.g. a uapi test program added with --file) --------------

info "kernel log since insmod (qaic / mhi):"
dmesg_since | grep -i -E 'qaic|mhi|accel|firmware'

# ---- unload -------------------------------------------------------------------------------
check rmmod rmmod qaic
check accel-node-gone sh -c '! ls /dev/accel/accel* 2>/dev/null'
check mhi-gone sh -c '! ls /sys/bus/mhi/devices/* 2>/dev/null'
