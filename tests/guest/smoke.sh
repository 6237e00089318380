# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of the smoke test (scripts/check.d/20-smoke.sh): no device present; load the
# driver module, check it is live and registered its PCI driver, dump the KTAP of the KUnit
# suites it brought (they run at insmod: CONFIG_KUNIT=y, driver built as a module), unload it.
#
# Args: MODULE [PCI-DRIVER-NAME] [kunit|nokunit]   e.g. "qaic_rs qaic_rs kunit", "qaic qaic nokunit"
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

mod=${1:-qaic_rs}
drv=${2:-$mod}
want_kunit=${3:-kunit}

info "$(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, $(aic_devices | wc -l) AIC100 devices"
kunit_mark
dmesg_mark
if ! check insmod load_module "$mod"; then
	dmesg_since
	exit 1
fi
check module-live module_live "$mod"
check pci-driver-registered test -d "/sys/bus/pci/drivers/$drv"

suites=$(kunit_new_suites)
if [ "$want_kunit" = kunit ]; then
	if [ -n "$suites" ]; then
		pass kunit-suites-registered
		# shellcheck disable=SC2086  # one word per suite
		ktap_dump kunit $suites
		for s in $suites; do
			# the suite's own result is the last line of its KTAP: "ok 1 <suite>"
			if tail -n 1 "/sys/kernel/debug/kunit/$s/results" | grep -q "^ok "; then
				pass "kunit-$s"
			else
				fail "kunit-$s" "$(grep 'not ok' "/sys/kernel/debug/kunit/$s/results" | tr '\n' '|')"
			fi
		done
	else
		fail kunit-suites-registered "insmod $mod added no suite to /sys/kernel/debug/kunit"
	fi
fi

info "kernel log of the insmod:"
dmesg_since | grep -v -E '^\[ *[0-9.]+\] +(KTAP|#|ok|not ok|[0-9]+\.\.)'

check rmmod rmmod "$mod"
check module-gone sh -c "! grep -q '^$mod ' /proc/modules"
check pci-driver-unregistered test ! -e "/sys/bus/pci/drivers/$drv"
for s in $suites; do
	check "kunit-$s-debugfs-gone" test ! -e "/sys/kernel/debug/kunit/$s"
done
