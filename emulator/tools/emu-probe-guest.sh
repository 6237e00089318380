# SPDX-License-Identifier: MIT OR Apache-2.0
# shellcheck shell=sh
#
# Guest script for scripts/guest.sh: time BAR0 reads before any driver binds, load the
# upstream qaic.ko, wait for ONLINE (QAIC_CONTROL bound), then run emu-probe (MANAGE checks
# and control round-trip time). Run with emulator/tools/run-emu-probe.sh.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

# Args: MODULE (qaic or qaic_rs). Their control channels have different names on the host side.
set -- $QAIC_TEST_ARGS
mod=${1:-qaic}
ctl=QAIC_CONTROL
[ "$mod" = qaic_rs ] && ctl=QAIC_RS_CONTROL

d=$(aic_devices | head -n 1)
bdf=$(basename "$d")
echo 1 >"$d/enable"
check emu-bar0-timing /bin/emu-probe bar "$bdf"
echo 0 >"$d/enable"
t0=$(cut -d' ' -f1 /proc/uptime)
check insmod load_module "$mod"
if check online wait_for 120 sh -c "test -e /sys/bus/mhi/devices/mhi*_$ctl/driver"; then
	t1=$(cut -d' ' -f1 /proc/uptime)
	info "TIMING insmod-to-online-s $(awk "BEGIN {print $t1 - $t0}")"
	check emu-probe /bin/emu-probe
fi
check rmmod rmmod "$mod"
