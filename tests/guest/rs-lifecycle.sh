# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of the qaic_rs lifecycle tests (scripts/check.d/65-rs-lifecycle.sh): loading and
# unloading qaic_rs, next to the C qaic, over and over, with missing firmware and with faults the
# emulator injects during the boot. One mode per run, the first argument:
#
# coexist (2 cards, --control)
#   seq-*     card 0 alone (card 1 held by driver_override "none"): qaic_rs from a cold card to
#             mission mode, rmmod; the C qaic takes the card over (warm, ONLINE), rmmod; qaic_rs
#             again (warm) to mission mode, rmmod. After each rmmod: nothing left behind.
#   both-*    both cards reset to PBL, qaic_rs bound to card 0 and qaic to card 1
#             (driver_override), both loaded at once and booting at the same time: while they
#             boot and once both are up, no MHI channel device named *_QAIC_RS_* is bound to a
#             driver of another module and no other channel device to a qaic_rs driver
#             (/sys/bus/mhi/devices/*/driver); then each module unloads without touching the
#             card of the other.
# cycles N (1 card, --control)
#   two warm-up cycles (cold, then warm), then N insmod/rmmod cycles (odd ones from a cold card,
#   so Sahara runs too), each to mission mode, each followed by the left-behind checks; then the
#   memory counters (after drop_caches) against the baseline taken after the warm-up, with the
#   bounds below, kmemleak if the kernel has it (the default config does not), and the PCI
#   enable count.
# firmware (1 card, --control; the bench's firmware dir lacks sbl.bin and fw4.bin, both are in
#   /qaic/spare/)
#   nosbl-*   no SBL image: qaic_rs warns, naming sbl.bin, the firmware directory and the remedy
#             (reload); the power-up fails (MHI core message), the card stays in PBL, rmmod is
#             clean
#   noimg-*   SBL restored, fw4.bin missing: the card asks for image 4, qaic_rs logs the file, the
#             loader's error, the firmware directory and the remedy, the card halts in SBL, no
#             mission mode
#   sblerr-*  SYS_ERR injected while the card sits in SBL: reported, the MHI core reboots the card
#             (it halts at image 4 again); with fw4.bin restored a second SYS_ERR brings it to
#             mission mode; rmmod clean
#   badimg-*  card reset to PBL, fw6.bin corrupted (one payload byte): the card rejects the image
#             (Sahara END_OF_IMAGE status 6), qaic_rs logs the file, the status and the remedy, no
#             mission mode, rmmod clean
#   sblreset-* fw6.bin restored, the card still halted in SBL: insmod resets it and boots it to
#             mission mode, with none of the firmware messages
# syserr (1 card, --control; the emulator is told to enter SYS_ERR as it starts loading Sahara
#   image 1: sys-err-at-image)
#   boot-syserr-*  the SYS_ERR during the boot is reported, the MHI core reboots the card through
#                  BHI and Sahara to mission mode
#   amss-syserr-*  a SYS_ERR in mission mode: reported, back to mission mode
#   rmmod-early-*  card reset to PBL, insmod, rmmod as soon as the SBL channels appear (removal
#                  during the boot)
#   bhi-fail-*     card reset to PBL, emulator fail-next-bhi: the SBL download fails (MHI core
#                  message), no mission mode, rmmod clean; bhi-retry-*: the next insmod boots
# Every mode ends with the kernel log check (no WARNING/BUG/Oops/...).
#
# "Reset to PBL" / "cold": with no driver bound, the guest writes SOC_RESET_REQ (BAR0 + 0xb0)
# with devmem, as a host reboot would leave the card; otherwise an insmod after an rmmod is a
# warm start straight into mission mode. After every rmmod (`unloaded`): the module is gone, no
# driver, MHI controller, channel device or accel node is left on the card, and the PCI enable
# count is back to its value before the insmod with bus mastering off (the C qaic gets that
# from pcim_enable_device; a driver that never calls pci_disable_device leaves the card able to
# DMA after unbind and the count growing by one per bind).
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

mode=${1:-}
FW=/lib/firmware/qcom/aic100
# unloaded checks the PCI enable count after every rmmod (cycles: once, over all cycles)
pci_check=1

# ---- helpers ------------------------------------------------------------------------------

# mhi_of DEV: the MHI controller (mhiN) of a PCI function, empty if it has none
mhi_of() {
	for _m in "$1"/mhi*; do
		[ -e "$_m" ] && echo "${_m##*/}" && return 0
	done
	return 0
}

# rs_mission DEV: qaic_rs has the card in mission mode (channel devices present and the driver
# said so since the last dmesg_mark)
rs_mission() {
	_mh=$(mhi_of "$1")
	[ -n "$_mh" ] && [ -e "/sys/bus/mhi/devices/${_mh}_QAIC_RS_CONTROL" ] &&
		dmesg_since | grep -q "${1##*/}: card in mission mode"
}

# c_online DEV: the C driver has the card ONLINE (qaic_mhi bound to QAIC_CONTROL)
c_online() {
	_mh=$(mhi_of "$1")
	[ -n "$_mh" ] && [ -e "/sys/bus/mhi/devices/${_mh}_QAIC_CONTROL/driver" ]
}

# logged PATTERN: the kernel log has an extended regexp match since the last dmesg_mark
logged() {
	dmesg_since | grep -q -E "$1"
}

# emu_ee CARD EE: the emulator reports execution environment EE (0 PBL, 1 SBL, 2 AMSS)
emu_ee() {
	_st=$(emu_ctl "$1" status)
	case $_st in
	*" ee=$2 "*) return 0 ;;
	esac
	info "emulator $1: $_st"
	return 1
}

# soc_reset DEV CARD: with no driver bound, write SOC_RESET_REQ (BAR0 + 0xb0) like a host reboot
# that leaves the card in PBL; succeeds when the emulator is in PBL afterwards
soc_reset() {
	_bar0=$(head -n 1 "$1/resource" | cut -d' ' -f1)
	devmem $((_bar0 + 0xb0)) 32 1 && wait_for 5 emu_ee "$2" 0
}


# cross_bound: print every MHI channel device bound across the module boundary: a *_QAIC_RS_*
# device bound to a driver that is not qaic_rs's, or another device bound to a qaic_rs driver
cross_bound() {
	for _l in /sys/bus/mhi/devices/*/driver; do
		[ -e "$_l" ] || continue
		_dev=${_l%/driver}
		_dev=${_dev##*/}
		_drv=$(readlink "$_l") || continue # unbound meanwhile
		_drv=${_drv##*/}
		# the driver's own module link: unlike $_l/module it does not vanish when the
		# device is unbound between the two readlinks (built-in drivers have none)
		_mod=$(readlink "/sys/bus/mhi/drivers/$_drv/module")
		_mod=${_mod##*/}
		case $_dev in
		*_QAIC_RS_*) [ "$_mod" = qaic_rs ] || echo "$_dev bound to $_drv (module '${_mod}')" ;;
		*) [ "$_mod" != qaic_rs ] || echo "$_dev bound to $_drv (module qaic_rs)" ;;
		esac
	done
	return 0
}

# bindings: every bound MHI channel device as "DEVICE=DRIVER(MODULE)"
bindings() {
	for _l in /sys/bus/mhi/devices/*/driver; do
		[ -e "$_l" ] || continue
		_dev=${_l%/driver}
		_drv=$(readlink "$_l") || continue
		_drv=${_drv##*/}
		_mod=$(readlink "/sys/bus/mhi/drivers/$_drv/module")
		echo "${_dev##*/}=$_drv(${_mod##*/})"
	done
	return 0
}

# left_behind DEV: print what of a driver is still attached to a PCI function
left_behind() {
	[ -e "$1/driver" ] && echo "driver $(pci_driver_of "$1")"
	[ -n "$(mhi_of "$1")" ] && echo "MHI controller $(mhi_of "$1")"
	for _a in "$1"/accel/accel*; do
		[ -e "$_a" ] && echo "accel node ${_a##*/}"
	done
	return 0
}

# pci_mark: remember the PCI enable count of every card (before an insmod)
pci_mark() {
	for _d in $(aic_devices); do
		cat "$_d/enable" >"/tmp/enable-${_d##*/}"
	done
}

# unloaded PREFIX MODULE DEV...: rmmod MODULE and check that it left nothing behind on the PCI
# functions it had: no driver, no MHI controller or channel devices, no accel node, and the
# PCI enable count back where it was at the last pci_mark (bus mastering off if that was 0)
unloaded() {
	_p=$1
	_mod=$2
	shift 2
	check "$_p-rmmod" rmmod "$_mod" || return 1
	check "$_p-module-gone" sh -c "! grep -q '^$_mod ' /proc/modules"
	_left=
	for _d in "$@"; do
		_lb=$(left_behind "$_d")
		[ -n "$_lb" ] && _left="$_left ${_d##*/}: $(echo "$_lb" | tr '\n' ' ')"
	done
	if [ -z "$_left" ]; then pass "$_p-nothing-left"; else fail "$_p-nothing-left" "$_left"; fi
	[ "$pci_check" = 1 ] || return 0
	_left=
	for _d in "$@"; do
		_en0=$(cat "/tmp/enable-${_d##*/}" 2>/dev/null || echo 0)
		_en=$(cat "$_d/enable")
		_cmd=$(od -An -tx2 -j4 -N2 "$_d/config" | tr -d ' ')
		if [ "$_en" != "$_en0" ] || { [ "$_en0" = 0 ] && [ $((0x$_cmd & 4)) != 0 ]; }; then
			_left="$_left ${_d##*/}: enable count $_en0 before insmod, $_en after rmmod, command 0x$_cmd"
		fi
	done
	if [ -z "$_left" ]; then pass "$_p-pci-disabled"; else fail "$_p-pci-disabled" "$_left"; fi
}

# all_gone NAME: no MHI device and no accel node at all (no driver loaded any more)
all_gone() {
	_left=
	for _x in /sys/bus/mhi/devices/* /dev/accel/*; do
		[ -e "$_x" ] && _left="$_left ${_x##*/}"
	done
	if [ -z "$_left" ]; then pass "$1"; else fail "$1" "left: $_left"; fi
}

# ---- coexist ------------------------------------------------------------------------------

mode_coexist() {
	# shellcheck disable=SC2046  # one word per device
	set -- $(aic_devices)
	d0=$1
	d1=${2:-}
	check coexist-two-cards test -n "$d1" || return 1
	echo none >"$d1/driver_override"

	# sequential, card 0 alone: qaic_rs (cold) -> qaic (warm takeover) -> qaic_rs (warm)
	dmesg_mark
	pci_mark
	check seq-rs1-insmod load_module qaic_rs || return 1
	check seq-rs1-bound test "$(pci_driver_of "$d0")" = qaic_rs
	check seq-rs1-mission wait_for 60 rs_mission "$d0"
	check seq-rs1-emu-amss emu_ee 0 2
	unloaded seq-rs1 qaic_rs "$d0"

	dmesg_mark
	pci_mark
	check seq-c-insmod load_module qaic || return 1
	check seq-c-bound test "$(pci_driver_of "$d0")" = qaic
	check seq-c-online wait_for 60 c_online "$d0"
	check seq-c-no-cross-binding test -z "$(cross_bound)"
	unloaded seq-c qaic "$d0"

	dmesg_mark
	pci_mark
	check seq-rs2-insmod load_module qaic_rs || return 1
	check seq-rs2-mission wait_for 60 rs_mission "$d0"
	check seq-rs2-no-cross-binding test -z "$(cross_bound)"
	unloaded seq-rs2 qaic_rs "$d0"
	all_gone seq-all-gone

	# both at once, both cards cold: qaic_rs on card 0, qaic on card 1
	check both-reset-0 soc_reset "$d0" 0
	check both-reset-1 soc_reset "$d1" 1
	echo qaic_rs >"$d0/driver_override"
	echo qaic >"$d1/driver_override"
	dmesg_mark
	pci_mark
	: >/tmp/cross
	: >/tmp/seen
	rm -f /tmp/stop-sampling
	# sample the bindings in the background, without pause, while both cards boot (in SBL the
	# Sahara clients of both drivers are bound, for some 50 ms)
	(
		while [ ! -e /tmp/stop-sampling ]; do
			cross_bound >>/tmp/cross
			bindings >>/tmp/seen
		done
	) &
	sampler=$!
	check both-rs-insmod load_module qaic_rs || return 1
	check both-c-insmod load_module qaic || return 1
	wait_for 60 rs_mission "$d0"
	wait_for 60 c_online "$d1"
	touch /tmp/stop-sampling
	wait "$sampler"
	cross_bound >>/tmp/cross
	bindings >>/tmp/seen
	check both-rs-bound-0 test "$(pci_driver_of "$d0")" = qaic_rs
	check both-c-bound-1 test "$(pci_driver_of "$d1")" = qaic
	check both-rs-mission-0 rs_mission "$d0"
	check both-c-online-1 c_online "$d1"
	info "bindings seen while booting and after: $(sort -u /tmp/seen | tr '\n' ' ')"
	if [ -s /tmp/cross ]; then
		fail both-no-cross-binding "$(sort -u /tmp/cross | tr '\n' ';')"
	else
		pass both-no-cross-binding
	fi
	# the check above is not vacuous: C clients are bound on card 1, qaic_rs channels on card 0
	# exist, and card 0's controller has only QAIC_RS_ channel devices, card 1's none
	m0=$(mhi_of "$d0")
	m1=$(mhi_of "$d1")
	check both-c-clients-bound grep -q "^${m1}_QAIC_CONTROL=qaic_mhi(qaic)" /tmp/seen
	check both-rs-channel-names sh -c "ls -d /sys/bus/mhi/devices/${m0}_* >/dev/null &&
		! ls -d /sys/bus/mhi/devices/${m0}_* | grep -v '/${m0}_QAIC_RS_'"
	check both-c-channel-names sh -c "! ls -d /sys/bus/mhi/devices/${m1}_* | grep '_QAIC_RS_'"
	ls /sys/bus/mhi/devices/

	# a buffer of one driver's card imported on the other's: both refuse to map it (offset 0)
	if [ -x /bin/prime-foreign ]; then
		a0=$(ls "$d0/accel" 2>/dev/null | head -n 1)
		a1=$(ls "$d1/accel" 2>/dev/null | head -n 1)
		if check both-accel-nodes test -n "$a0" -a -n "$a1" &&
			check both-rs-online wait_for 10 sh -c "exec 3</dev/accel/$a0"; then
			for dir in "$a1 $a0 c-to-rs" "$a0 $a1 rs-to-c"; do
				# shellcheck disable=SC2086  # three words
				set -- $dir
				/bin/prime-foreign "/dev/accel/$1" "/dev/accel/$2" >/tmp/pf.out 2>&1
				cat /tmp/pf.out
				while read -r verdict name _; do
					case $verdict in
					PASS) pass "prime-$3-$name" ;;
					FAIL) fail "prime-$3-$name" "$(grep "^FAIL $name" /tmp/pf.out)" ;;
					esac
				done </tmp/pf.out
			done
		fi
	fi

	# each module leaves the other's card alone
	unloaded both-c qaic "$d1"
	check both-rs-survives rs_mission "$d0"
	check both-rs-survives-emu emu_ee 0 2
	unloaded both-rs qaic_rs "$d0"
	all_gone both-all-gone
	echo >"$d0/driver_override"
	echo >"$d1/driver_override"
}

# ---- cycles -------------------------------------------------------------------------------

# mem_sample: "memfree slab sunreclaim vmalloc percpu slabbytes" in kB after dropping caches and
# shrinking every slab cache (flushes the per-CPU slabs, so /proc/slabinfo's active objects are
# the objects really in use: slabbytes is their size, to the object)
mem_sample() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for _s in /sys/kernel/slab/*/shrink; do
		echo 1 >"$_s" 2>/dev/null
	done
	sleep 0.3
	_mi=$(awk '/^(MemFree|Slab|SUnreclaim|VmallocUsed|Percpu):/ { v[$1] = $2 }
		END { print v["MemFree:"], v["Slab:"], v["SUnreclaim:"], v["VmallocUsed:"], v["Percpu:"] }' /proc/meminfo)
	_sb=$(awk 'NR > 2 { s += $2 * $4 } END { printf "%d", s / 1024 }' /proc/slabinfo)
	echo "$_mi $_sb"
}

# one_cycle PREFIX DEV COLD: insmod to mission mode, rmmod, nothing left
one_cycle() {
	if [ "$3" = 1 ]; then
		check "$1-reset" soc_reset "$2" 0
	fi
	dmesg_mark
	check "$1-insmod" load_module qaic_rs || return 1
	check "$1-mission" wait_for 60 rs_mission "$2"
	unloaded "$1" qaic_rs "$2"
	all_gone "$1-all-gone"
}

# Memory bounds (kB). Without KMEMLEAK in this kernel, leaks show only in counters. Measured on
# an idle guest doing insmod/rmmod cycles (the C qaic as well): a single MemFree sample moves by up
# to about +-900 kB from one cycle to the next (per-CPU page lists, kworker stacks), so MemFree is
# judged by its trend: sampled after every cycle, the least-squares slope over all cycles must stay
# under BOUND_MEMFREE_SLOPE_KB per cycle, and the total drop under a bound above the noise. Slab
# (whole slab pages) drifts by 100-250 kB over ten cycles, the object-exact slab-in-use figure
# (mem_sample) by -70..+70 kB, non-monotonically. What they catch: a leaked MHI controller (context
# arrays, 26 channel rings and the event ring in coherent DMA pages: > 200 kB per cycle), leaked
# Sahara images (1 MiB per cold cycle), slab leaks of more than ~16 kB per cycle. A leaked channel
# device (a few kB) needs kmemleak (debug config), which the cycles use when the kernel has it.
BOUND_MEMFREE_KB=1536
BOUND_MEMFREE_SLOPE_KB=160
BOUND_SLAB_KB=512
BOUND_SLAB_HALF_KB=384
BOUND_SLABBYTES_KB=160
BOUND_VMALLOC_KB=128

# mem_check NAME GROWTH BOUND: pass when GROWTH (kB) <= BOUND
mem_check() {
	if [ "$2" -le "$3" ]; then
		pass "$1"
	else
		fail "$1" "grew by $2 kB, bound $3 kB"
	fi
}

mode_cycles() {
	n=${1:-10}
	pci_check=0
	d=$(aic_devices | head -n 1)
	en0=$(cat "$d/enable")
	one_cycle warmup-cold "$d" 0
	one_cycle warmup-warm "$d" 0
	# shellcheck disable=SC2046  # six numbers
	set -- $(mem_sample)
	b_free=$1 b_slab=$2 b_vm=$4 b_pcpu=$5 b_sb=$6
	info "baseline after warm-up (kB): MemFree $1 Slab $2 SUnreclaim $3 VmallocUsed $4 Percpu $5 slab-in-use $6"
	kmemleak=/sys/kernel/debug/kmemleak
	[ -e "$kmemleak" ] && echo clear >"$kmemleak"
	i=1
	frees="0 $b_free"
	while [ "$i" -le "$n" ]; do
		one_cycle "cycle-$i" "$d" $((i % 2))
		# shellcheck disable=SC2046  # six numbers
		set -- $(mem_sample)
		frees="$frees $i $1"
		if [ "$i" = $((n / 2)) ]; then
			m_slab=$2 m_sb=$6
			info "after $i cycles (kB): MemFree $1 Slab $2 SUnreclaim $3 VmallocUsed $4 Percpu $5 slab-in-use $6"
		fi
		i=$((i + 1))
	done
	# least-squares slope of MemFree against the cycle number, as a drop in kB per cycle
	# shellcheck disable=SC2086  # pairs of numbers
	slope=$(echo $frees | awk '{ for (i = 1; i < NF; i += 2) { x = $i; y = $(i + 1); n++;
		sx += x; sy += y; sxx += x * x; sxy += x * y } printf "%d", -(n * sxy - sx * sy) / (n * sxx - sx * sx) }')
	info "MemFree by cycle (cycle kB ...): $frees; drop $slope kB per cycle"
	# shellcheck disable=SC2046  # six numbers
	set -- $(mem_sample)
	info "after $n cycles (kB): MemFree $1 Slab $2 SUnreclaim $3 VmallocUsed $4 Percpu $5 slab-in-use $6"
	echo "QAIC-MEM: cycles=$n memfree_drop_kb=$((b_free - $1)) slab_kb=$(($2 - b_slab)) slab_in_use_kb=$(($6 - b_sb)) vmalloc_kb=$(($4 - b_vm)) percpu_kb=$(($5 - b_pcpu)) memfree_slope_kb=$slope second_half: slab_kb=$(($2 - m_slab)) slab_in_use_kb=$(($6 - m_sb))"
	if dmesg | grep -q 'KernelAddressSanitizer initialized'; then
		# KASAN keeps freed memory in its quarantine (up to 1/32 of RAM, 16 MiB here) before
		# MemFree sees it again: one sample says nothing; the trend below and kmemleak judge
		# (no "KASAN" in the message: the kernel-log checks look for that word)
		info "mem-memfree-stable: not judged with the address sanitizer (drop $((b_free - $1)) kB)"
	else
		mem_check mem-memfree-stable $((b_free - $1)) "$BOUND_MEMFREE_KB"
	fi
	mem_check mem-memfree-trend "$slope" "$BOUND_MEMFREE_SLOPE_KB"
	mem_check mem-slab-stable $(($2 - b_slab)) "$BOUND_SLAB_KB"
	mem_check mem-slab-stable-2nd-half $(($2 - m_slab)) "$BOUND_SLAB_HALF_KB"
	mem_check mem-slab-in-use-stable $(($6 - b_sb)) "$BOUND_SLABBYTES_KB"
	mem_check mem-slab-in-use-stable-2nd-half $(($6 - m_sb)) "$BOUND_SLABBYTES_KB"
	mem_check mem-vmalloc-stable $(($4 - b_vm)) "$BOUND_VMALLOC_KB"
	mem_check mem-percpu-stable $(($5 - b_pcpu)) 0
	# with a kmemleak kernel (debug config): no unreferenced object allocated by qaic_rs, the MHI
	# core or the firmware loader during the cycles
	if [ -e "$kmemleak" ]; then
		echo scan >"$kmemleak"
		sleep 1
		echo scan >"$kmemleak"
		awk 'BEGIN { RS = "unreferenced object" } NR > 1 && /qaic|mhi|sahara|firmware/' "$kmemleak" \
			>/tmp/kmemleak
		if [ -s /tmp/kmemleak ]; then
			fail kmemleak-clean "$(grep -c . /tmp/kmemleak) lines of leak reports, see below"
			head -n 60 /tmp/kmemleak
		else
			pass kmemleak-clean
		fi
	else
		skip kmemleak-clean "kernel without CONFIG_DEBUG_KMEMLEAK"
	fi
	en=$(cat "$d/enable")
	if [ "$en" = "$en0" ]; then
		pass pci-enable-count-stable
	else
		fail pci-enable-count-stable "enable count $en0 before the first insmod, $en after $((n + 2)) cycles (not disabled at unbind)"
	fi
}

# ---- firmware -----------------------------------------------------------------------------

# no_firmware_message: none of qaic_rs's firmware messages since the last dmesg_mark
no_firmware_message() {
	! dmesg_since | grep -E 'firmware file .* not loaded|card (rejected|gave up) '
}

mode_firmware() {
	d=$(aic_devices | head -n 1)
	bdf=${d##*/}
	check fw-dir-lacks-sbl-and-fw4 sh -c "! test -e $FW/sbl.bin && ! test -e $FW/fw4.bin &&
		test -f /qaic/spare/sbl.bin && test -f /qaic/spare/fw4.bin" || return 1

	# no SBL at all
	dmesg_mark
	pci_mark
	if load_module qaic_rs; then
		pass nosbl-insmod
		check nosbl-message wait_for 30 logged \
			"qaic_rs $bdf: firmware file qcom/aic100/sbl\.bin not loaded \(ENOENT\).* install the Cloud AI 100 firmware under $FW/ and reload qaic_rs\$"
		check nosbl-mhi-load-fails wait_for 30 logged 'mhi mhi[0-9]+: Error loading firmware: -2'
		sleep 1
		info "kernel log: $(dmesg_since | grep -E 'qaic|mhi|firmware|sbl' | tr '\n' '|')"
		check nosbl-no-mission sh -c "! ls /sys/bus/mhi/devices/ | grep -q _QAIC_RS_CONTROL"
		check nosbl-emu-pbl emu_ee 0 0
		unloaded nosbl qaic_rs "$d"
	else
		fail nosbl-insmod "insmod failed (the probe must not block on the boot)"
	fi
	all_gone nosbl-all-gone
	check_kernel_clean nosbl-kernel-clean

	# SBL present, fw4.bin missing
	cp /qaic/spare/sbl.bin "$FW/"
	dmesg_mark
	pci_mark
	check noimg-insmod load_module qaic_rs || return 1
	noimg_msg="_QAIC_RS_SAHARA: firmware file qcom/aic100/fw4\.bin \(image 4\) not loaded \(ENOENT\): the card stops in its boot loader; install the Cloud AI 100 firmware under $FW/ and reload qaic_rs\$"
	check noimg-message wait_for 60 logged "$noimg_msg"
	check noimg-gave-up wait_for 10 logged "_QAIC_RS_SAHARA: card gave up image 4 \(qcom/aic100/fw4\.bin\), status [0-9]+\$"
	sleep 1
	dmesg_since | grep -E 'qaic_rs|mhi'
	check noimg-no-mission sh -c "! ls /sys/bus/mhi/devices/ | grep -q _QAIC_RS_CONTROL"
	check noimg-emu-sbl emu_ee 0 1

	# SYS_ERR while the card sits in SBL, image still missing: rebooted, halts again
	dmesg_mark
	check sblerr-inject emu_ctl 0 sys-err
	check sblerr-reported wait_for 30 logged "$bdf: card reported a system error"
	check sblerr-reboots-to-sbl wait_for 60 logged "$noimg_msg"
	# fw4.bin back, SYS_ERR again: this time the boot completes
	cp /qaic/spare/fw4.bin "$FW/"
	sleep 1
	dmesg_mark
	check sblerr-inject-2 emu_ctl 0 sys-err
	check sblerr-reported-2 wait_for 30 logged "$bdf: card reported a system error"
	check sblerr-recovers-mission wait_for 60 rs_mission "$d"
	check sblerr-emu-amss emu_ee 0 2
	dmesg_since | grep -E 'qaic_rs|mhi'
	unloaded sblerr qaic_rs "$d"

	# a corrupted image: the card refuses it
	check badimg-reset soc_reset "$d" 0
	cp "$FW/fw6.bin" /tmp/fw6.bin
	printf 'X' | dd of="$FW/fw6.bin" bs=1 seek=4096 conv=notrunc 2>/dev/null
	check badimg-corrupted sh -c "! cmp -s $FW/fw6.bin /tmp/fw6.bin"
	dmesg_mark
	pci_mark
	check badimg-insmod load_module qaic_rs || return 1
	check badimg-reported wait_for 60 logged \
		"_QAIC_RS_SAHARA: card rejected qcom/aic100/fw6\.bin \(image 6\), status 6: the file is damaged or not from the card's firmware release; reinstall the Cloud AI 100 firmware under $FW/ and reload qaic_rs\$"
	sleep 1
	dmesg_since | grep -E 'qaic_rs|mhi'
	check badimg-no-mission sh -c "! ls /sys/bus/mhi/devices/ | grep -q _QAIC_RS_CONTROL"
	check badimg-emu-sbl emu_ee 0 1
	unloaded badimg qaic_rs "$d"

	# the card is still halted in SBL: the next insmod resets it and boots it
	cp /tmp/fw6.bin "$FW/fw6.bin"
	dmesg_mark
	pci_mark
	check sblreset-insmod load_module qaic_rs || return 1
	check sblreset-logged wait_for 30 logged "$bdf: card left in its boot loader, resetting it"
	check sblreset-mission wait_for 90 rs_mission "$d"
	# with every file in place, none of the firmware messages
	check sblreset-no-firmware-message no_firmware_message
	unloaded sblreset qaic_rs "$d"
	all_gone fw-all-gone
}

# ---- syserr -------------------------------------------------------------------------------

mode_syserr() {
	d=$(aic_devices | head -n 1)
	bdf=${d##*/}

	# the emulator enters SYS_ERR as its SBL starts loading Sahara image 1
	check boot-syserr-arm emu_ctl 0 sys-err-at-image 1
	dmesg_mark
	pci_mark
	check boot-syserr-insmod load_module qaic_rs || return 1
	check boot-syserr-reported wait_for 60 logged "$bdf: card reported a system error"
	check boot-syserr-recovers-mission wait_for 90 rs_mission "$d"
	check boot-syserr-emu-amss emu_ee 0 2
	dmesg_since | grep -E 'qaic_rs|mhi'

	# SYS_ERR in mission mode
	dmesg_mark
	check amss-syserr-inject emu_ctl 0 sys-err
	check amss-syserr-reported wait_for 30 logged "$bdf: card reported a system error"
	check amss-syserr-recovers-mission wait_for 90 rs_mission "$d"
	check amss-syserr-emu-amss emu_ee 0 2
	dmesg_since | grep -E 'qaic_rs|mhi'
	unloaded syserr qaic_rs "$d"

	# removal during the boot: rmmod as soon as the card is in SBL
	check rmmod-early-reset soc_reset "$d" 0
	dmesg_mark
	pci_mark
	# the SBL stops answering as it starts loading image 2 (until the next reset): the removal
	# meets the boot in the Sahara transfer however long insmod takes to return (the SBL stage
	# lasts ~50 ms on the test kernel, and may be over before insmod returns on a slow one)
	check rmmod-early-stall emu_ctl 0 stall-at-image 2
	check rmmod-early-insmod load_module qaic_rs || return 1
	check rmmod-early-in-sbl wait_for 60 test -e "/sys/bus/mhi/devices/$(mhi_of "$d")_QAIC_RS_SAHARA"
	check rmmod-early-emu-sbl wait_for 10 emu_ee 0 1
	unloaded rmmod-early qaic_rs "$d"
	dmesg_since | grep -E 'qaic_rs|mhi'

	# the card rejects the SBL download (BHI error status): no boot, clean rmmod; the next
	# insmod boots the card (still in PBL) normally
	check bhi-fail-reset soc_reset "$d" 0
	check bhi-fail-inject emu_ctl 0 fail-next-bhi
	dmesg_mark
	pci_mark
	check bhi-fail-insmod load_module qaic_rs || return 1
	check bhi-fail-reported wait_for 30 logged "mhi[0-9]+: (Image transfer failed|MHI did not load image over BHI)"
	sleep 1
	dmesg_since | grep -E 'qaic_rs|mhi'
	check bhi-fail-no-mission sh -c "! ls /sys/bus/mhi/devices/ | grep -q _QAIC_RS_CONTROL"
	check bhi-fail-emu-pbl emu_ee 0 0
	unloaded bhi-fail qaic_rs "$d"
	dmesg_mark
	pci_mark
	check bhi-retry-insmod load_module qaic_rs || return 1
	check bhi-retry-mission wait_for 60 rs_mission "$d"
	unloaded bhi-retry qaic_rs "$d"
	all_gone syserr-all-gone
}

case $mode in
coexist) mode_coexist ;;
cycles) mode_cycles "${2:-10}" ;;
firmware) mode_firmware ;;
syserr) mode_syserr ;;
*)
	fail lifecycle-mode "unknown mode '$mode'"
	exit 1
	;;
esac
# RS_LIFECYCLE_KERNEL_CLEAN=scan (from /qaic/kernel-clean, see 65-rs-lifecycle.sh): the kernel
# log is judged by make check-debug's splat scan instead, which tells known reports of the C
# driver from the others
if [ "$(cat /qaic/kernel-clean 2>/dev/null)" = scan ]; then
	info "$mode: kernel log left to the debug splat scan"
else
	check_kernel_clean "$mode-kernel-clean"
fi
