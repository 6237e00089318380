# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of `make demo` (scripts/demo.sh): load qaic_rs.ko, show what the driver did, unload.
# Output is meant for people; every "QAIC-TEST:" line is also counted by the host.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

say() { printf '\n== %s\n' "$*"; }

say "guest: Linux $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs; emulated AIC100 cards: $QAIC_CARDS, IOMMU: $QAIC_IOMMU"
for d in $(aic_devices); do
	echo "  PCI $(basename "$d")  [$(cut -c3- "$d/vendor"):$(cut -c3- "$d/device")]  class $(cat "$d/class")"
done

say "insmod qaic_rs.ko"
dmesg_mark
kunit_mark
check insmod load_module qaic_rs
sleep 1

say "kernel log lines of the driver (dmesg)"
dmesg_since | grep -v -E '^\[ *[0-9.]+\] +(KTAP|#|ok|not ok|[0-9]+\.\.)' | grep -i -E 'qaic|accel|kunit|taint|mhi'

say "KUnit suites run at insmod"
for s in $(kunit_new_suites); do
	echo "  $s: $(tail -n 1 "/sys/kernel/debug/kunit/$s/results")"
done

say "/sys/bus/pci/drivers/qaic_rs"
ls /sys/bus/pci/drivers/qaic_rs
check pci-driver-registered test -d /sys/bus/pci/drivers/qaic_rs
i=0
for d in $(aic_devices); do
	check "bound-card-$i" test "$(pci_driver_of "$d")" = qaic_rs
	i=$((i + 1))
done

say "/dev/accel"
ls -l /dev/accel 2>&1
if [ "$QAIC_CARDS" -gt 0 ]; then
	check accel-node test -c /dev/accel/accel0
fi

if [ "$QAIC_CARDS" -gt 0 ] && [ -x /bin/qaic ]; then
	say "the card comes online (mission mode, control protocol checked)"
	check online wait_for 60 sh -c 'qaic list 2>/dev/null | grep -q " online"'
	qaic list

	say "qaic info: what the card's firmware reports (NNC STATUS, through MANAGE)"
	qaic info

	say "qaic run: load the example network, run inferences, check each against the CPU reference"
	check qaic-run sh -c 'qaic run -n 20 >/tmp/run.out 2>&1; s=$?; cat /tmp/run.out; [ $s = 0 ]'

	say "qaic bench: execute+wait throughput and latency (2 threads, 4 requests in flight each)"
	check qaic-bench qaic bench -n 200 --threads 2 --queue-depth 4
fi

say "rmmod qaic_rs"
dmesg_mark
check rmmod rmmod qaic_rs
check unloaded sh -c '! grep -q "^qaic_rs " /proc/modules'
dmesg_since | grep -i -E 'qaic|accel'
check_kernel_clean kernel-log-clean
