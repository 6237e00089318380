# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Guest side of scripts/check.d/52-c-datapath.sh: the upstream qaic.ko (or qaic_rs) runs
# inferences on the emulated card's compute stand-in through /bin/c-datapath
# (tests/guest/c-datapath.c). Each PASS/FAIL line of the program becomes a check named MODE-NAME.
#
# Args: MODE [ROUNDS [MODULE]]   MODULE: qaic (default) or qaic_rs
#   irq     interrupts, one MSI per DBC (the bench adds the emulated IOMMU: 17 vectors)
#   poll    qaic datapath_polling=1 (the driver polls RSP_TAIL, DBC interrupts disabled)
#   msi1    single MSI (no IOMMU, or the emulator's --single-msi): every DBC on vector 0
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

mode=${1:-irq}
rounds=${2:-20}
mod=${3:-qaic}
params=
[ "$mode" = poll ] && params=datapath_polling=1
# what differs between the drivers: the control channel's and the DBC interrupts' names, and
# how the single-MSI fallback is logged
case $mod in
qaic) ctl=QAIC_CONTROL dbcirq=qaic_dbc msi1log='operating in 1 MSI mode' ;;
*) ctl=QAIC_RS_CONTROL dbcirq=qaic_rs-dbc msi1log='sharing one vector' ;;
esac

dbc_irqs() { awk -v pat="$dbcirq" '$0 ~ pat { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i } END { print n + 0 }' /proc/interrupts; }

dmesg_mark
# shellcheck disable=SC2086
check "$mode-insmod" load_module "$mod" $params || exit 1
check "$mode-online" wait_for 120 sh -c "test -e /sys/bus/mhi/devices/mhi*_$ctl/driver" || exit 1
# qaic_rs accepts open() once the control protocol check passed, a moment after the bind
wait_for 10 sh -c 'exec 3</dev/accel/accel0'
case $mode in
msi1) check "$mode-single-msi" sh -c "dmesg | grep -q '$msi1log'" ;;
poll) [ "$mod" = qaic ] && check "$mode-param" grep -qx Y /sys/module/qaic/parameters/datapath_polling ;;
*) n=$(grep -c "$dbcirq" /proc/interrupts)
	if [ "$n" -ge 16 ]; then pass "$mode-dbc-vectors"; else fail "$mode-dbc-vectors" "$n $dbcirq lines"; fi ;;
esac

before=$(dbc_irqs)
/bin/c-datapath "$rounds" >/tmp/c-datapath.out 2>&1
rc=$?
after=$(dbc_irqs)
cat /tmp/c-datapath.out
n=0
while read -r verdict name rest; do
	case $verdict in
	PASS) pass "$mode-${name%:}"; n=$((n + 1)) ;;
	FAIL) fail "$mode-${name%:}" "$rest"; n=$((n + 1)) ;;
	esac
done </tmp/c-datapath.out
if [ "$rc" -eq 0 ] && [ "$n" -ge 10 ]; then pass "$mode-program"; else fail "$mode-program" "exit $rc, $n checks"; fi
info "$mode: $dbcirq interrupts $before -> $after"
case $mode in
irq) if [ "$after" -gt "$before" ]; then pass "$mode-dbc-interrupts"; else fail "$mode-dbc-interrupts" "$before -> $after"; fi ;;
poll) if [ "$after" -eq "$before" ]; then pass "$mode-no-dbc-interrupts"; else fail "$mode-no-dbc-interrupts" "$before -> $after"; fi ;;
esac

check "$mode-rmmod" rmmod "$mod"
check_kernel_clean "$mode-kernel-clean"
