# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Guest side of the runtime smoke test (scripts/check.d/40-runtime.sh, bench: scripts/guest.sh):
# load the driver module, wait until the emulated card is ONLINE, then run the static runtime
# binaries added with --file: `uapi-smoke` and `uapi-errno` (every step becomes one QAIC-TEST
# line, prefixed "smoke-" / "errno-"), `qaic list`, `qaic info`, then `qaic run` and `qaic bench`
# on the emulated card's compute stand-in (Documentation/workload.rst). Busybox sh.
#
# Args: MODULE [TIMEOUT-SECONDS [SCOPE]]   driver module (qaic or qaic_rs), mission-mode wait
#       (default 120); SCOPE "bounce": only the data-carrying steps (qaic run, qaic bench), in a
#       guest booted with swiotlb=force, where every DMA mapping goes through bounce buffers and
#       a driver that does not sync its buffers around each transfer gets wrong data.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

set -- $QAIC_TEST_ARGS
mod=${1:-qaic}
wait_s=${2:-120}
scope=${3:-full}

if [ "$scope" = bounce ]; then
	check swiotlb-forced grep -qw swiotlb=force /proc/cmdline || exit 1
fi

check insmod load_module "$mod" || exit 1
check accel-node wait_for 10 test -c /dev/accel/accel0 || exit 1
mhi=
for m in /sys/bus/pci/devices/*/mhi*; do [ -e "$m" ] && mhi=${m##*/}; done
# the control channel's name on the host side differs between the drivers
ctl=QAIC_CONTROL
[ "$mod" = qaic_rs ] && ctl=QAIC_RS_CONTROL
if [ -z "$mhi" ] || ! check online wait_for "$wait_s" test -e "/sys/bus/mhi/devices/${mhi}_$ctl/driver"; then
	[ -z "$mhi" ] && fail online "no MHI controller"
	exit 1
fi
# the accel node accepts open() once the control-protocol version check has passed
wait_for 10 qaic list >/dev/null 2>&1


# A dma-buf of the same card imported in another open file: the C driver imports it as a new,
# unmappable object; qaic_rs, like most DRM drivers (the DRM core's default import), gets the
# exporting object back, which stays mappable (Documentation/driver.rst, differences). That step
# of uapi-smoke is reported as skipped on qaic_rs, whatever its verdict: uapi-diff's
# same-card-import-mappable step checks each driver's behaviour.
differs() {
	[ "$mod" = qaic_rs ] && [ "$1" = prime-imported-not-mappable ]
}

# run_steps PROGRAM PREFIX [ARG]: run a test program (on the node, with ARG), turn its PASS/FAIL
# lines into test results
run_steps() {
	# shellcheck disable=SC2086  # ARG may be empty
	"$1" /dev/accel/accel0 ${3:-} >"/tmp/$1.out" 2>&1
	echo "$1 exit status $?"
	cat "/tmp/$1.out"
	n=0
	while read -r verdict name rest; do
		case $verdict in
		PASS | FAIL) ;;
		*) continue ;;
		esac
		n=$((n + 1))
		if differs "$name"; then
			skip "$2-$name" "qaic_rs: same-card import is the exporting object"
		elif [ "$verdict" = PASS ]; then
			pass "$2-$name"
		else
			fail "$2-$name" "$rest"
		fi
	done <"/tmp/$1.out"
	[ "$n" -gt 0 ] || fail "$2-ran" "$1 reported no step"
}

if [ "$scope" = full ]; then
	run_steps uapi-smoke smoke
	run_steps uapi-errno errno
	# where qaic_rs deliberately differs from upstream: each step expects its driver's result
	run_steps uapi-diff diff "$mod"

	check qaic-list sh -c 'qaic list | grep -q "^/dev/accel/accel0 .* online"'
	check qaic-info sh -c 'qaic info >/tmp/info.out 2>&1; s=$?; cat /tmp/info.out; [ $s = 0 ] && grep -q "^protocols *NNC command 17\." /tmp/info.out'
fi

# runs CMD.. with its output in /tmp/out, shown in the log; true when it exits 0 and prints a line
# matching the extended regex PATTERN
ok_and_prints() {
	pattern=$1
	shift
	"$@" >/tmp/out 2>&1
	s=$?
	cat /tmp/out
	echo "exit status $s"
	[ $s = 0 ] && grep -Eq "$pattern" /tmp/out
}

# Inferences on the compute stand-in, every output checked against the CPU reference (qaic run
# exits 1 on any mismatch): the example network of workload.rst, then a generated 3-layer MLP.
check qaic-run ok_and_prints '^20 requests, 20 verified against the CPU reference, 0 mismatches' \
	qaic run -n 20
check qaic-run-mlp ok_and_prints '^50 requests, 50 verified against the CPU reference, 0 mismatches' \
	qaic run --shape 64,32,16,10 --seed 7 -n 50
# PARTIAL_EXECUTE_BO: random numbers of fresh input bytes (0 included: the inference runs on what
# earlier requests left in device memory) and of output bytes copied back
check qaic-run-partial ok_and_prints '^30 requests, 30 verified against the CPU reference, 0 mismatches' \
	qaic run --partial -v -n 30
# throughput of execute+wait: inferences (2 threads x 4 in flight), then plain DMA loop-back
check qaic-bench ok_and_prints '"mode":"network".*"requests":400,.*"verified":true' \
	qaic bench -n 200 --threads 2 --queue-depth 4 --json
check qaic-bench-loopback ok_and_prints '"mode":"loopback".*"requests":200,.*"verified":true' \
	qaic bench --loopback --bo-size 64k -n 200 --json

# concurrency: 2 processes x 8 threads x 1000 inferences at once, each process on its own
# activation, every output checked against the CPU reference
conc() {
	qaic bench -n 1000 --threads 8 --queue-depth 2 --json >/tmp/conc1 2>&1 &
	_p1=$!
	qaic bench -n 1000 --threads 8 --queue-depth 2 --json >/tmp/conc2 2>&1 &
	_p2=$!
	wait "$_p1"
	_s1=$?
	wait "$_p2"
	_s2=$?
	cat /tmp/conc1 /tmp/conc2
	echo "exit status $_s1 $_s2"
	[ "$_s1" = 0 ] && [ "$_s2" = 0 ] &&
		grep -q '"requests":8000,.*"verified":true' /tmp/conc1 &&
		grep -q '"requests":8000,.*"verified":true' /tmp/conc2
}
if [ "$scope" = full ]; then
	check concurrency-2x8x1000 conc
fi

check rmmod rmmod "$mod"
check_kernel_clean kernel-clean
