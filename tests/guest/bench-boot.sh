# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/bench-boot.sh: boot time of the emulated AIC100, C qaic against qaic_rs,
# in one guest with one card (bench --control, kernel command line kunit.enable=0). A benchmark,
# not a test: the only checks are that every boot got there.
#
# Args: [N]  repetitions per driver (default 5). Repetition i boots the card with both drivers,
# C first when i is odd, qaic_rs first when it is even. Every boot starts from a cold card:
# with no driver bound the card is reset to PBL (devmem write of SOC_RESET_REQ, BAR0 + 0xb0),
# so it goes through BHI (SBL), Sahara (8 images) and mission mode to ONLINE.
#
# Per boot it prints one line for the host:
#   QAIC-BENCH: driver=D rep=I online_ms=X mhi_ms=Y
# online_ms  from just before `modprobe D` to the card ONLINE (C: qaic_mhi bound to
#            QAIC_CONTROL, i.e. the control version check passed; qaic_rs: the control client
#            logged "card online"), polled every 2 ms; both ends are /dev/kmsg markers, so the
#            kernel log's clock measures it
# mhi_ms     MHI core: "Requested to power ON" to "Processing Mission Mode transition" (dynamic
#            debug of drivers/bus/mhi/host/pm.c): the same code path for both drivers, no polling
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

n=${1:-5}
d=$(aic_devices | head -n 1)
bar0=$(head -n 1 "$d/resource" | cut -d' ' -f1)
echo 'file drivers/bus/mhi/host/pm.c +p' >/sys/kernel/debug/dynamic_debug/control

# online DRIVER: the card is ONLINE under DRIVER
online() {
	_m=
	for _x in "$d"/mhi*; do [ -e "$_x" ] && _m=${_x##*/}; done
	case $1 in
	qaic) [ -e "/sys/bus/mhi/devices/${_m}_QAIC_CONTROL/driver" ] ;;
	qaic_rs) dmesg_since | grep -q "${_m}_QAIC_RS_CONTROL: .*card online" ;;
	esac
}

# boot DRIVER REP: one cold boot to ONLINE and back
boot() {
	check "reset-$1-$2" sh -c "devmem $((bar0 + 0xb0)) 32 1" || return 1
	_st=
	_k=0
	while [ "$_k" -lt 50 ]; do
		_st=$(emu_ctl 0 status)
		case $_st in *" ee=0 "*) break ;; esac
		_k=$((_k + 1))
		sleep 0.1
	done
	case $_st in
	*" ee=0 "*) pass "pbl-$1-$2" ;;
	*) fail "pbl-$1-$2" "card not in PBL: $_st" ;;
	esac
	dmesg_mark
	echo "qaic-bench: start $1 $2" >/dev/kmsg
	load_module "$1" || { fail "boot-$1-$2" "modprobe failed"; return 1; }
	_end=$(($(cut -d. -f1 /proc/uptime) + 60))
	while ! online "$1"; do
		if [ "$(cut -d. -f1 /proc/uptime)" -ge "$_end" ]; then
			fail "boot-$1-$2" "not ONLINE after 60 s"
			rmmod "$1"
			return 1
		fi
		usleep 2000
	done
	echo "qaic-bench: online $1 $2" >/dev/kmsg
	pass "boot-$1-$2"
	dmesg_since | awk -v drv="$1" -v rep="$2" '
		function ts(l) { sub(/^\[ */, "", l); sub(/\].*/, "", l); return l + 0 }
		/qaic-bench: start/ && s == "" { s = ts($0) }
		/qaic-bench: online/ && o == "" { o = ts($0) }
		/Requested to power ON/ && p == "" { p = ts($0) }
		/Processing Mission Mode transition/ && m == "" { m = ts($0) }
		END {
			if (s == "" || o == "" || p == "" || m == "") { print "qaic-test: missing log lines"; exit 1 }
			printf "QAIC-BENCH: driver=%s rep=%d online_ms=%.1f mhi_ms=%.1f\n", drv, rep, (o - s) * 1000, (m - p) * 1000
		}'
	check "rmmod-$1-$2" rmmod "$1"
}

alternate "$n" boot
check_kernel_clean bench-kernel-clean
