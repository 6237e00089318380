# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/bench-manage.sh: the control path of the C qaic against qaic_rs on the
# same emulated AIC100, in one guest (kernel command line kunit.enable=0). A benchmark, not a
# test: the only checks are that every run got its answers.
#
# Args: [N [S [M]]]  N repetitions per driver (default 3); per repetition S STATUS round trips
# (default 200) and M 64 MiB DMA transfers (default 3), each timed by /bin/emu-probe, which
# prints the medians. Repetition i runs both drivers, C first when i is odd, qaic_rs first when
# it is even. Per run one line for the host:
#   QAIC-BENCH: driver=D rep=I status_us=X dma64_ms=Y
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

set -- $QAIC_TEST_ARGS
n=${1:-3}
s=${2:-200}
m=${3:-3}

# online DRIVER: the accel node of DRIVER's card accepts a STATUS request
online() {
	/bin/emu-probe status 0 >/dev/null 2>&1
}

run() {
	check "$1-$2-insmod" load_module "$1" || return 1
	if check "$1-$2-online" wait_for 120 online "$1"; then
		/bin/emu-probe bench "$s" "$m" >/tmp/bench.out 2>&1
		_r=$?
		cat /tmp/bench.out
		if check "$1-$2-bench" test "$_r" = 0; then
			sed -n "s/^BENCH /QAIC-BENCH: driver=$1 rep=$2 /p" /tmp/bench.out
		fi
	fi
	check "$1-$2-rmmod" rmmod "$1"
}

alternate "$n" run
