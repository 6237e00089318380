# SPDX-License-Identifier: GPL-2.0-only
#
# Helpers for guest test scripts of the qaic-rs guest bench (busybox sh inside the VM).
# The bench installs this file as /qaic/lib.sh; a guest script starts with
#
#   . /qaic/lib.sh
#
# Results: every `pass NAME` / `fail NAME [why]` prints one line
#   QAIC-TEST: PASS NAME            QAIC-TEST: FAIL NAME - why
# which the host counts (scripts/guest.sh: guest_record). /init prints the overall verdict:
# FAIL when the script exits non-zero or any `fail` was reported. Test names are one word
# (no blanks); prefix them by area, e.g. "insmod", "kunit-suite", "accel-node".
#
# Environment (set by /init from the host's options): QAIC_NAME, QAIC_CARDS, QAIC_IOMMU,
# QAIC_CONTROL (1 with --control: emu_ctl works), QAIC_TEST_ARGS.

QAIC_RESULTS=/tmp/qaic-results
QAIC_KREL=$(uname -r)

info() { echo "qaic-test: $*"; }

pass() {
	echo "QAIC-TEST: PASS $1"
	echo "PASS $1" >>"$QAIC_RESULTS"
}

# fail NAME [WHY...]
fail() {
	_n=$1
	shift
	echo "QAIC-TEST: FAIL $_n${1:+ - $*}"
	echo "FAIL $_n" >>"$QAIC_RESULTS"
}

# skip NAME WHY...: reported, counted neither way
skip() {
	_n=$1
	shift
	echo "QAIC-TEST: SKIP $_n - $*"
}

# check NAME CMD...: pass if CMD succeeds, else fail; returns CMD's verdict
check() {
	_n=$1
	shift
	if "$@"; then
		pass "$_n"
	else
		fail "$_n" "failed: $*"
		return 1
	fi
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; non-zero on timeout
wait_for() {
	_end=$(($(cut -d. -f1 /proc/uptime) + $1))
	shift
	while ! "$@"; do
		[ "$(cut -d. -f1 /proc/uptime)" -lt "$_end" ] || return 1
		sleep 0.1
	done
}

# ---- kernel modules -------------------------------------------------------------------------

# module_file NAME: path of NAME.ko inside the initramfs
module_file() {
	find "/lib/modules/$QAIC_KREL" -name "$1.ko" | head -n 1
}

# load_module NAME [PARAMS...]: modprobe (dependencies come from the host's depmod), or insmod
load_module() {
	_m=$1
	shift
	if [ -f "/lib/modules/$QAIC_KREL/modules.dep" ]; then
		modprobe "$_m" "$@"
	else
		insmod "$(module_file "$_m")" "$@"
	fi
}

# module_live NAME: NAME is listed as Live in /proc/modules
module_live() {
	grep -q "^$1 .* Live " /proc/modules
}

# ---- kernel log -----------------------------------------------------------------------------

# dmesg_mark: remember the current end of the kernel log; dmesg_since prints what came after
dmesg_mark() {
	QAIC_DMESG_MARK=$(dmesg | wc -l)
}
dmesg_since() {
	dmesg | tail -n "+$((${QAIC_DMESG_MARK:-0} + 1))"
}

# Kernel log lines that mean something went wrong in the kernel, whatever the test.
QAIC_KERNEL_PROBLEMS='WARNING:|BUG:|Oops|KASAN|UBSAN|Call Trace|general protection fault|Kernel panic|refcount_t:|list_add corruption|list_del corruption'

# kernel_problems: print such lines from the whole kernel log; non-zero when there are none.
# The upstream C driver's known findings (known-splats.awk, Documentation/reliability.rst) are
# taken out first; kernel_known names them.
kernel_problems() {
	dmesg | awk -f /qaic/known-splats.awk | grep -E "$QAIC_KERNEL_PROBLEMS"
}
kernel_known() {
	dmesg | awk -f /qaic/known-splats.awk | sed -n 's/^QAIC-KNOWN: //p' | sort | uniq -c |
		while read -r _n _name; do info "known C driver finding, not a failure: $_name ($_n)"; done
}

# check_kernel_clean NAME: pass when the kernel log has none of the lines above
check_kernel_clean() {
	kernel_known
	if kernel_problems >/tmp/qaic-kproblems; then
		fail "$1" "kernel log has: $(head -n 3 /tmp/qaic-kproblems | tr '\n' '|')"
		return 1
	fi
	pass "$1"
}

# qaic_run_verified [N]: a `qaic run` of N inferences (default 20) passes with every output
# checked against the CPU reference; prints the end of its output
qaic_run_verified() {
	_n=${1:-20}
	qaic run -n "$_n" >/tmp/qaic-run.out 2>&1
	_s=$?
	tail -n 3 /tmp/qaic-run.out
	[ $_s = 0 ] && grep -q "^$_n requests, $_n verified against the CPU reference, 0 mismatches" /tmp/qaic-run.out
}

# ---- uevents --------------------------------------------------------------------------------

# uevent_listen PROGRAM: from now on PROGRAM runs for every kernel uevent, the event's variables
# (ACTION, DEVPATH, MODALIAS, ...) in its environment. Through the kernel's uevent helper where
# there is one (CONFIG_UEVENT_HELPER: the test kernel, whose guest has no networking), else
# through busybox's netlink listener (the packaged kernel, like Debian's, has no helper but has
# netlink); returns once the listener's socket is bound.
uevent_listen() {
	uevent_stop
	if [ -e /sys/kernel/uevent_helper ]; then
		echo "$1" >/sys/kernel/uevent_helper
		return
	fi
	busybox uevent "$1" </dev/null >/dev/null 2>&1 &
	QAIC_UEVENT_PID=$!
	# /proc/net/netlink: protocol 15 is NETLINK_KOBJECT_UEVENT, the port id is the pid
	wait_for 5 sh -c "awk '\$2 == 15 && \$3 == $QAIC_UEVENT_PID { f = 1 } END { exit !f }' /proc/net/netlink"
}

# uevent_stop: PROGRAM of uevent_listen runs no more
uevent_stop() {
	if [ -n "${QAIC_UEVENT_PID:-}" ]; then
		kill "$QAIC_UEVENT_PID" 2>/dev/null
		wait "$QAIC_UEVENT_PID" 2>/dev/null
		QAIC_UEVENT_PID=
	fi
	[ -e /sys/kernel/uevent_helper ] && echo >/sys/kernel/uevent_helper
	return 0
}

# ---- KUnit ----------------------------------------------------------------------------------

# kunit_suites: names of the KUnit suites the kernel knows now (built-in + loaded modules)
kunit_suites() {
	ls /sys/kernel/debug/kunit 2>/dev/null
}

# kunit_skip_module_suites: modules loaded from now on do not run their KUnit suites. qaic_rs's
# take a few hundred ms under TCG at insmod, while the card it probes boots: its SBL finishes
# before the SBL channel clients (boot log, boot timesync) bind, and their messages are lost.
# 20-smoke runs the suites; boot-time behaviour is tested without them.
kunit_skip_module_suites() {
	[ -e /sys/module/kunit/parameters/filter_glob ] || return 0   # a kernel without KUnit
	echo 'qaic_rs_no_suite.*' >/sys/module/kunit/parameters/filter_glob
}

# kunit_mark / kunit_new_suites: suites that appeared since the mark (e.g. by an insmod)
kunit_mark() {
	QAIC_KUNIT_MARK=$(kunit_suites | tr '\n' ' ')
}
kunit_new_suites() {
	for _s in $(kunit_suites); do
		case " $QAIC_KUNIT_MARK " in
		*" $_s "*) ;;
		*) echo "$_s" ;;
		esac
	done
}

# ktap_dump NAME SUITE...: print the KTAP results of the suites (from debugfs; a module's
# suites vanish at rmmod, so dump before) between markers the host extracts into
# <run dir>/ktap-NAME.log:  QAIC-KTAP-BEGIN NAME ... QAIC-KTAP-END NAME
ktap_dump() {
	_n=$1
	shift
	echo "QAIC-KTAP-BEGIN $_n"
	for _s in "$@"; do
		cat "/sys/kernel/debug/kunit/$_s/results"
	done
	echo "QAIC-KTAP-END $_n"
}

# ---- emulator control (fault injection) -----------------------------------------------------

# emu_ctl CARD COMMAND...: send COMMAND (emulator.rst, "Fault injection": delay-response MS,
# sys-err, surprise-remove, status, ...) to the emulator of card CARD. Needs the bench's
# --control: it relays the "QAIC-CTL:" line and writes the emulator's answer back to the serial
# line (the request goes to the serial line itself, so `$(emu_ctl ...)` works). Prints the
# answer; succeeds when it starts with "ok".
emu_ctl() {
	_c=$1
	shift
	qaic_ask 15 "QAIC-CTL: $_c $*"
}

# qaic_ask SECONDS LINE: write LINE (a request the bench relays) to the serial console, read the
# bench's "QAIC-CTL-ANSWER: ..." within SECONDS; prints the answer, succeeds when it is "ok..."
qaic_ask() {
	stty -F /dev/ttyS0 -echo 2>/dev/null
	echo "$2" >/dev/ttyS0
	# shellcheck disable=SC3045  # busybox ash has read -t
	if ! IFS= read -r -t "$1" _a </dev/ttyS0; then
		echo "error: no answer from the host in $1 s (was the bench run with --control?)"
		return 1
	fi
	_a=$(printf %s "${_a#QAIC-CTL-ANSWER: }" | tr -d "\r")
	echo "$_a"
	case $_a in
	ok*) return 0 ;;
	*) return 1 ;;
	esac
}

# host_ctl VERB CARD [ARG]: ask the bench (scripts/guest.sh, needs --control) to act on QEMU:
#   unplug CARD [WAIT_S]  QMP device_del of the card (skipped when QEMU has already dropped it),
#                         then wait up to WAIT_S s until QEMU no longer has it ("ok gone ...");
#                         without WAIT_S: "ok requested" (QEMU waits for the guest: with
#                         --hotplug, slot_power off below completes the removal)
#   plug CARD             a fresh emulator and QMP device_add of the card (then slot_power on
#                         and a PCI rescan make the guest find it)
#   present CARD          "ok present" / "ok absent"
# Prints the answer, succeeds when it starts with "ok".
host_ctl() {
	qaic_ask $((20 + ${3:-0})) "QAIC-HOST: $*"
}

# ---- PCI / accel ----------------------------------------------------------------------------

# pci_cfg_read DEV OFFSET SIZE: config space bytes of a sysfs PCI device, little endian, as a
# decimal number (SIZE 1, 2 or 4)
pci_cfg_read() {
	_v=0
	_sh=0
	for _b in $(od -An -t u1 -j "$2" -N "$3" "$1/config"); do
		_v=$((_v | (_b << _sh)))
		_sh=$((_sh + 8))
	done
	echo "$_v"
}

# pci_cfg_write16 DEV OFFSET VALUE: one 16-bit config write (a single 2-byte write() at an even
# offset, which the kernel turns into one word access)
pci_cfg_write16() {
	# shellcheck disable=SC2059  # the format is the two bytes as octal escapes
	printf "$(printf '\\%03o\\%03o' $(($3 & 255)) $((($3 >> 8) & 255)))" |
		dd of="$1/config" bs=2 seek=$(($2 / 2)) count=1 conv=notrunc 2>/dev/null
}

# pcie_cap DEV: offset of the PCI Express capability in DEV's config space; non-zero if none
pcie_cap() {
	_p=$(pci_cfg_read "$1" 52 1)
	while [ "$_p" -ne 0 ]; do
		[ "$(pci_cfg_read "$1" "$_p" 1)" = 16 ] && echo "$_p" && return 0
		_p=$(pci_cfg_read "$1" $((_p + 1)) 1)
	done
	return 1
}

# slot_power PORT on|off: switch the slot of a PCIe port (root or downstream, sysfs path) on or
# off with its Slot Control register (power controller and power indicator), as the kernel's
# PCIe hotplug driver does around a removal, for guest kernels that have none (the test and
# debug kernels; see hotplug_slot for the others). QEMU detaches the device when its slot is
# powered off (with or without a pending device_del).
slot_power() {
	_cap=$(pcie_cap "$1") || return 1
	_ctl=$(pci_cfg_read "$1" $((_cap + 24)) 2)
	# power controller control: bit 10 (1 = off); power indicator: bits 9:8 (01 on, 11 off)
	case $2 in
	off) _ctl=$(((_ctl & ~0x700) | 0x700)) ;;
	on) _ctl=$(((_ctl & ~0x700) | 0x100)) ;;
	*) return 1 ;;
	esac
	pci_cfg_write16 "$1" $((_cap + 24)) "$_ctl"
}

# hotplug_slot BDF: the /sys/bus/pci/slots directory of the slot holding PCI function BDF when
# a hotplug driver (pciehp) manages it: its "address" is BDF without the function and it has a
# "power" file (slots registered only for naming have none). Fails when there is none.
hotplug_slot() {
	for _s in /sys/bus/pci/slots/*; do
		[ -e "$_s/power" ] && [ "$(cat "$_s/address")" = "${1%.*}" ] && echo "$_s" && return 0
	done
	return 1
}

# pci_port_of DEV: the sysfs path of the PCI bridge (port) DEV sits behind
pci_port_of() {
	_r=$(readlink -f "$1")
	dirname "$_r"
}

# aic_devices: sysfs paths of the PCI functions with vendor 0x17cb (Qualcomm)
aic_devices() {
	for _d in /sys/bus/pci/devices/*; do
		[ "$(cat "$_d/vendor")" = 0x17cb ] && echo "$_d"
	done
	return 0
}

# pci_driver_of DEV: name of the driver bound to a sysfs PCI device, empty if none
pci_driver_of() {
	[ -e "$1/driver" ] && basename "$(readlink "$1/driver")"
	return 0
}

# alternate N FUNC: run FUNC DRIVER I for both drivers, I = 1..N, the C driver first when I is
# odd and qaic_rs first when it is even (the benchmarks compare them in one guest)
alternate() {
	_alt_i=1
	while [ "$_alt_i" -le "$1" ]; do
		if [ $((_alt_i % 2)) = 1 ]; then
			"$2" qaic "$_alt_i"
			"$2" qaic_rs "$_alt_i"
		else
			"$2" qaic_rs "$_alt_i"
			"$2" qaic "$_alt_i"
		fi
		_alt_i=$((_alt_i + 1))
	done
}
