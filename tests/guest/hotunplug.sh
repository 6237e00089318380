# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/check.d/75-hotunplug.sh: the card is removed under the driver and its
# users, then plugged in again. One emulated card behind a pcie-root-port, the bench run with
# --control --hotplug (scripts/guest.sh: host_ctl reaches QEMU's QMP).
#
# The test and debug kernels have no PCI hotplug driver (CONFIG_HOTPLUG_PCI is not set: neither
# pciehp nor acpiphp), so there this script does pciehp's part for the port's slot:
#
#   orderly removal (QMP device_del, then what pciehp does after the attention button):
#       host_ctl unplug -> the driver is unbound (PCI remove) with the card still answering ->
#       slot powered off -> QEMU completes the device_del, the emulator exits
#   surprise removal (the card vanishes first, the kernel finds out afterwards):
#       host_ctl unplug (announce) -> [emulator surprise-remove: all-ones reads, no MSI, no DMA]
#       -> slot powered off: QEMU drops the device at once -> the driver is unbound
#       (remove_card below does both)
#   plug again: host_ctl plug (new emulator, QMP device_add) -> slot powered on -> PCI rescan
#
# The packaged kernel (make check-deb) has pciehp built in, as distributions do, and pciehp
# owns the slot: the script then uses the slot's sysfs "power" file, the operator's interface,
# and pciehp does the unbinding, the PCI remove and the slot power:
#
#   orderly removal: host_ctl unplug (attention button: pciehp would wait 5 s) -> power 0:
#       pciehp unbinds the driver with the card still answering, removes the function, powers
#       the slot off -> QEMU completes the device_del
#   surprise removal: host_ctl unplug -> [emulator surprise-remove] ->
#       power 0: pciehp unbinds the driver from the dead card and powers the slot off -> QEMU
#       completes the device_del
#   plug again: host_ctl plug -> pciehp sees the presence change, powers the slot on and
#       enumerates the card (power 1 if it has not within 15 s)
#
# Cases (args after DRIVER, default all, in this order):
#   boot      surprise removal during the bring-up: the emulator's SBL stalls when the Sahara
#             transfer reaches image 5 (emu_ctl stall-at-image), the card goes while the driver
#             waits for it (the emulator's last EE must be 1, SBL)
#   manage    orderly removal while MANAGE calls are in flight (emulator delay-response 4000:
#             each takes 4 s), from 2 threads of `qaic-fuzz unplug --mode manage`
#   execute   surprise removal (dead link, then gone) during `qaic-fuzz unplug --mode execute`:
#             3 threads of inferences, 4 spare 64 KiB objects mapped and filled
#   orderly   orderly removal during the same execute workload
# Each case checks: every worker's call fails (errno recorded and compared with the driver's
# expected set below), no worker hangs, the mappings made before still read what was written and
# take writes (no SIGBUS, no foreign data), new calls fail, the files close, the PCI remove ends,
# rmmod works, the card comes back (plug, rescan, insmod, ONLINE) and a verified `qaic run`
# passes. The kernel log is checked for splats at the end.
#
# Args: DRIVER [CASES...]   DRIVER = qaic | qaic_rs
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

set -- $QAIC_TEST_ARGS
QAIC_DRIVER=${1:-qaic_rs}
shift
cases=${*:-boot manage execute orderly}

# Expected errnos, per driver: "CALL:ERRNO" of the workers' failing calls, and of new calls after
# the removal. Measured; Documentation/reliability.rst, "Hot unplug", explains each.
case $QAIC_DRIVER in
qaic)
	# surprise removal: the C driver releases the channels at the unbind, WAIT_BO says EPERM
	exp_exec_fail="EXECUTE_BO:ENODEV WAIT_BO:ENODEV WAIT_BO:EPERM"
	exp_manage_fail="MANAGE:EIO MANAGE:ENODEV"
	exp_after="ENODEV"
	;;
qaic_rs)
	exp_exec_fail="EXECUTE_BO:ENODEV WAIT_BO:ENODEV"
	exp_manage_fail="MANAGE:EIO MANAGE:ENODEV"
	exp_after="ENODEV"
	;;
*)
	fail args "unknown driver $QAIC_DRIVER"
	exit 1
	;;
esac
info "driver $QAIC_DRIVER, cases: $cases"

field() {
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

now() { cut -d' ' -f1 /proc/uptime; }

# secs_since T0: seconds since T0 (/proc/uptime), two decimals
secs_since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}

wait_pid() {
	hu_end=$(($(cut -d. -f1 /proc/uptime) + $2))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(cut -d. -f1 /proc/uptime)" -ge "$hu_end" ]; then
			return 124
		fi
		sleep 0.1
	done
	wait "$1"
}

ctl=QAIC_CONTROL
[ "$QAIC_DRIVER" = qaic_rs ] && ctl=QAIC_RS_CONTROL

dev=$(aic_devices | head -n 1)
[ -n "$dev" ] || {
	fail card "no AIC100 at start"
	exit 1
}
bdf=${dev##*/}
port=$(pci_port_of "$dev")
info "card $bdf behind port ${port##*/}"
# the slot's hotplug driver, if any (see the top of this file)
hp_slot=$(hotplug_slot "$bdf")
if [ -n "$hp_slot" ]; then
	info "slot ${hp_slot##*/} is managed by the kernel's hotplug driver (pciehp): removals go through its power file"
else
	info "no hotplug driver for the slot: this script switches the slot's power itself"
fi

online() {
	for hu_m in "$dev"/mhi*; do
		[ -e "/sys/bus/mhi/devices/${hu_m##*/}_$ctl/driver" ] && qaic list >/dev/null 2>&1 && return 0
	done
	return 1
}

# in_set WORD SET: WORD is one of the blank-separated words of SET
in_set() {
	case " $2 " in *" $1 "*) return 0 ;; esac
	return 1
}

# all_in LIST SET: every comma-separated item of LIST is in SET
all_in() {
	for hu_w in $(echo "$1" | tr ',' ' '); do
		in_set "$hu_w" "$2" || return 1
	done
}

# pci_remove NAME: unbind and delete the PCI function, as pciehp does (bounded: 60 s); with
# pciehp it has done so already and this checks that the function is gone
pci_remove() {
	if [ -n "$hp_slot" ]; then
		check "$1-pci-remove-done" test ! -e "$dev"
		return
	fi
	hu_t=$(now)
	echo 1 >"$dev/remove" &
	hu_p=$!
	if ! wait_pid "$hu_p" 60; then
		fail "$1-pci-remove" "the PCI remove did not end in 60 s"
		return 1
	fi
	info "$1: PCI remove took $(secs_since "$hu_t") s"
	check "$1-pci-remove-done" test ! -e "$dev"
}

# slot_off NAME: the card's slot powered off. With pciehp, through its power file: pciehp
# unbinds the driver, removes the function and powers the slot off before the write returns
# (bounded: 60 s); without, the Slot Control register (QEMU then drops the device at once).
slot_off() {
	if [ -z "$hp_slot" ]; then
		slot_power "$port" off
		return
	fi
	hu_t=$(now)
	echo 0 >"$hp_slot/power" &
	wait_pid $! 60
	hu_rc=$?
	case $hu_rc in
	0) info "$1: pciehp removed the card and powered the slot off in $(secs_since "$hu_t") s" ;;
	124) fail "$1-slot-off" "writing 0 to ${hp_slot##*/}/power did not return in 60 s" ;;
	*) fail "$1-slot-off" "writing 0 to ${hp_slot##*/}/power failed (status $hu_rc)" ;;
	esac
}

# remove_card NAME orderly|surprise: the card goes. Orderly: the driver is unbound while the
# card still answers, then the slot is powered off. Surprise: the link goes dead first (no MSI,
# no DMA, all-ones reads) and hu_dead_ee is the EE the card died in (the emulator's state when
# QEMU lets it go is not that one with pciehp: it reads EE 0), then the slot is powered off.
# With pciehp its power file does both orders' unbind, remove and power-off.
remove_card() {
	hu_dead_ee=
	if [ "$2" = surprise ]; then
		check "$1-dead-link" emu_ctl 0 surprise-remove
		hu_dead_ee=$(emu_ctl 0 status | sed -n 's/.* ee=\([0-9]*\) .*/\1/p')
		sleep 0.5
	fi
	if [ "$2" = surprise ] || [ -n "$hp_slot" ]; then
		slot_off "$1"
		gone "$1"
		pci_remove "$1"
	else
		pci_remove "$1"
		slot_power "$port" off
		gone "$1"
	fi
}

# replug NAME: the card back: plug, slot on, rescan, driver, ONLINE, a verified run
replug() {
	check "$1-plug" host_ctl plug 0 || return 1
	if [ -n "$hp_slot" ]; then
		# pciehp powers the slot on at the presence change and enumerates the card
		wait_for 15 test -e "$dev" || echo 1 >"$hp_slot/power"
	else
		slot_power "$port" on
		sleep 0.5
		echo 1 >/sys/bus/pci/rescan
	fi
	check "$1-rescan" wait_for 10 test -e "$dev" || return 1
	module_live "$QAIC_DRIVER" || check "$1-insmod" load_module "$QAIC_DRIVER"
	hu_t=$(now)
	check "$1-online-again" wait_for 120 online || return 1
	info "$1: ONLINE $(secs_since "$hu_t") s after the driver got the new card"
	check "$1-fresh-workload" qaic_run_verified
}

# rmmod_ok NAME: the module unloads (users closed their files)
rmmod_ok() {
	hu_t=$(now)
	check "$1-rmmod" rmmod "$QAIC_DRIVER" && info "$1: rmmod took $(secs_since "$hu_t") s"
}

# gone NAME: QEMU has dropped the card and the emulator is gone; prints the emulator's last state
gone() {
	hu_a=$(host_ctl unplug 0 15)
	hu_rc=$?
	info "$1: host: $hu_a"
	[ $hu_rc = 0 ] && pass "$1-device-deleted" || fail "$1-device-deleted" "$hu_a"
}

# ---- unplug during boot ---------------------------------------------------------------------

case_boot() {
	kunit_skip_module_suites
	# the card's SBL stops answering when the driver's Sahara transfer reaches image 5: the
	# removal then comes in the middle of the bring-up, whatever the guest's speed
	check boot-stall emu_ctl 0 stall-at-image 5 || return 1
	dmesg_mark
	hu_t=$(now)
	check boot-insmod load_module "$QAIC_DRIVER" || return 1
	# the Sahara channel's device appears once the card runs its SBL
	if ! wait_for 30 sahara_up; then
		fail boot-sahara "no Sahara channel device after 30 s"
		return 1
	fi
	info "boot: Sahara channel up $(secs_since "$hu_t") s after insmod started"
	sleep 1
	# the unplug is announced only now: pciehp acts on the attention button after 5 s
	check boot-announce host_ctl unplug 0 || return 1
	remove_card boot surprise
	# EE 1 is the SBL (Sahara); 2 (mission mode) would mean the stall did not hold
	[ "$hu_dead_ee" = 1 ] && pass boot-during-sahara || fail boot-during-sahara "the card was in EE '$hu_dead_ee'"
	dmesg_since | grep -E "$QAIC_DRIVER|mhi" | tail -n 8
	rmmod_ok boot
	replug boot
}

sahara_up() {
	for hu_s in /sys/bus/mhi/devices/mhi*_QAIC*SAHARA; do
		[ -e "$hu_s" ] && return 0
	done
	return 1
}

# ---- workload cases -------------------------------------------------------------------------

# workload NAME MODE THREADS KIND: start `qaic-fuzz unplug`, wait until it runs, remove the card
# (KIND orderly or surprise), check the workload's outcome against EXPECTED (errno set)
workload() {
	hu_n=$1 hu_mode=$2 hu_thr=$3 hu_kind=$4 hu_exp=$5
	rm -f /tmp/unplug-ready
	# the card's node (a node whose file outlived an earlier removal keeps its minor number)
	hu_node=/dev/accel/$(basename "$(ls -d "$dev"/accel/accel* 2>/dev/null | head -n 1)")
	qaic-fuzz unplug --device "$hu_node" --mode "$hu_mode" --threads "$hu_thr" --deadline-s 90 \
		>/tmp/unplug-$hu_n.out 2>&1 &
	hu_pid=$!
	if ! wait_for 60 test -e /tmp/unplug-ready; then
		fail "$hu_n-workload-ready" "$(tail -n 3 /tmp/unplug-$hu_n.out | tr '\n' '|')"
		kill "$hu_pid"
		return 1
	fi
	pass "$hu_n-workload-ready"
	sleep 1
	check "$hu_n-announce" host_ctl unplug 0 || return 1
	dmesg_mark
	hu_t0=$(now)
	remove_card "$hu_n" "$hu_kind"
	wait_pid "$hu_pid" 100
	hu_rc=$?
	info "$hu_n: workload exit status $hu_rc, $(secs_since "$hu_t0") s after the removal began"
	cat /tmp/unplug-$hu_n.out
	hu_res=$(grep '^UNPLUG-RESULT' /tmp/unplug-$hu_n.out | tail -n 1)
	case $hu_rc in
	0) pass "$hu_n-workload-outcome" ;;
	124) fail "$hu_n-workload-outcome" "still running 100 s after the removal" ;;
	*) fail "$hu_n-workload-outcome" "exit status $hu_rc: $hu_res" ;;
	esac
	[ "$(field hang "$hu_res")" = 1 ] && fail "$hu_n-no-hang" "a worker never returned" || pass "$hu_n-no-hang"
	hu_errs=$(field errors "$hu_res")
	hu_sum=
	for hu_k in create_bo mmap_bo manage execute mmap_kept mmap_write; do
		hu_sum="$hu_sum $hu_k=$(field $hu_k "$hu_res")"
	done
	info "RESULT $QAIC_DRIVER $hu_n errors=$hu_errs$hu_sum"
	all_in "$hu_errs" "$hu_exp" && [ -n "$hu_errs" ] && pass "$hu_n-errnos" ||
		fail "$hu_n-errnos" "'$hu_errs', expected from '$hu_exp'"
	hu_bad=
	for hu_k in create_bo mmap_bo manage execute; do
		in_set "$(field $hu_k "$hu_res")" "$exp_after" || hu_bad="$hu_bad $hu_k=$(field $hu_k "$hu_res")"
	done
	[ -z "$hu_bad" ] && pass "$hu_n-new-calls-fail" || fail "$hu_n-new-calls-fail" "$hu_bad (expected $exp_after)"
	[ "$(field mmap_kept "$hu_res")" = ok ] && pass "$hu_n-mmap-read" ||
		fail "$hu_n-mmap-read" "mapped objects after the removal: $(field mmap_kept "$hu_res")"
	[ "$(field mmap_write "$hu_res")" = ok ] && pass "$hu_n-mmap-write" ||
		fail "$hu_n-mmap-write" "$(field mmap_write "$hu_res")"
	grep -q '^UNPLUG-CLOSED' /tmp/unplug-$hu_n.out && pass "$hu_n-files-closed" ||
		fail "$hu_n-files-closed" "closing the objects and the file did not return"
	dmesg_since | grep -E "$QAIC_DRIVER|mhi" | tail -n 8
	rmmod_ok "$hu_n"
	replug "$hu_n"
}

case_manage() {
	check manage-delay emu_ctl 0 delay-response 4000 || return 1
	workload manage manage 2 orderly "$exp_manage_fail"
}

case_execute() { workload execute execute 3 surprise "$exp_exec_fail"; }
case_orderly() { workload orderly execute 3 orderly "$exp_exec_fail"; }

# The first case that needs the driver loaded loads it (boot leaves it loaded after replug).
for c in $cases; do
	info "=== case $c"
	if [ "$c" != boot ] && ! module_live "$QAIC_DRIVER"; then
		kunit_skip_module_suites
		check "$c-insmod" load_module "$QAIC_DRIVER" || break
		check "$c-online" wait_for 120 online || break
	fi
	case $c in
	boot | manage | execute | orderly) "case_$c" ;;
	*) fail "case-$c" "unknown case" ;;
	esac
done

module_live "$QAIC_DRIVER" && check rmmod rmmod "$QAIC_DRIVER"
check_kernel_clean kernel-clean
