# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Guest side of scripts/check.d/52-c-datapath.sh: the upstream qaic.ko runs inferences on the
# emulated card's compute stand-in through /bin/c-datapath (tests/guest/c-datapath.c). Each
# PASS/FAIL line of the program becomes a check named MODE-NAME.
#
# Args: MODE [ROUNDS]
#   irq     interrupts, one MSI per DBC (the bench adds the emulated IOMMU: 17 vectors)
#   poll    qaic datapath_polling=1 (the driver polls RSP_TAIL, DBC interrupts disabled)
#   msi1    single MSI (no IOMMU, or the emulator's --single-msi): every DBC on vector 0
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

mode=${1:-irq}
rounds=${2:-20}
params=
[ "$mode" = poll ] && params=datapath_polling=1

dbc_irqs() { awk '/qaic_dbc/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i } END { print n + 0 }' /proc/interrupts; }

dmesg_mark
# shellcheck disable=SC2086
check "$mode-insmod" load_module qaic $params || exit 1
check "$mode-online" wait_for 120 sh -c 'test -e /sys/bus/mhi/devices/mhi*_QAIC_CONTROL/driver' || exit 1
case $mode in
msi1) check "$mode-single-msi" sh -c "dmesg | grep -q 'operating in 1 MSI mode'" ;;
*) n=$(grep -c qaic_dbc /proc/interrupts)
	if [ "$n" -ge 16 ]; then pass "$mode-dbc-vectors"; else fail "$mode-dbc-vectors" "$n qaic_dbc lines"; fi ;;
esac
if [ "$mode" = poll ]; then
	check "$mode-param" grep -qx Y /sys/module/qaic/parameters/datapath_polling
fi

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
info "$mode: qaic_dbc interrupts $before -> $after"
case $mode in
irq) if [ "$after" -gt "$before" ]; then pass "$mode-dbc-interrupts"; else fail "$mode-dbc-interrupts" "$before -> $after"; fi ;;
poll) if [ "$after" -eq "$before" ]; then pass "$mode-no-dbc-interrupts"; else fail "$mode-no-dbc-interrupts" "$before -> $after"; fi ;;
esac

check "$mode-rmmod" rmmod qaic
check_kernel_clean "$mode-kernel-clean"
