# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/bench-datapath.sh: execute+wait through the C qaic and qaic_rs on the
# same emulated AIC100, in one guest. A benchmark, not a test: the only checks are that every
# run completed with its data verified.
#
# Args: N REQS PARAMS SMALL  N repetitions per driver; REQS requests per run of 1 MiB, SMALL of
# 4 KiB (default REQS); PARAMS "-" or module
# parameters for both drivers (e.g. datapath_polling=1). Repetition i runs both drivers, C first
# when i is odd. Per run and buffer size one line for the host:
#   QAIC-BENCH: driver=D rep=I size=S rps=X p50_us=Y p99_us=Z
# from `qaic bench --loopback` (one thread, 4 requests in flight, data checked).
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

set -- $QAIC_TEST_ARGS
n=${1:-3}
reqs=${2:-500}
params=${3:--}
small=${4:-$reqs}
[ "$params" = - ] && params=

run() {
	# shellcheck disable=SC2086
	check "$1-$2-insmod" load_module "$1" $params || return 1
	if check "$1-$2-online" wait_for 120 sh -c 'qaic list 2>/dev/null | grep -q " online"'; then
		for size in 4k 1m; do
			count=$reqs
			[ "$size" = 4k ] && count=$small
			qaic bench --loopback --bo-size "$size" -n "$count" --queue-depth 4 --json >/tmp/b.json 2>&1
			s=$?
			cat /tmp/b.json
			if check "$1-$2-$size" sh -c "[ $s = 0 ] && grep -q '\"verified\":true' /tmp/b.json"; then
				sed -n 's/.*"requests_per_second":\([0-9.]*\).*"p50":\([0-9.]*\),"p99":\([0-9.]*\).*/\1 \2 \3/p' /tmp/b.json |
					while read -r rps p50 p99; do
						echo "QAIC-BENCH: driver=$1 rep=$2 size=$size rps=$rps p50_us=$p50 p99_us=$p99"
					done
			fi
		done
	fi
	check "$1-$2-rmmod" rmmod "$1"
}

alternate "$n" run
