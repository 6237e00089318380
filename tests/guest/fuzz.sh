# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/check.d/45-fuzz.sh (Documentation/reliability.rst): load a driver, wait
# until the emulated card is online, then
#   1. isolation: as another user, a node without permission does not open (EACCES); with the
#      node opened up (chmod 666), another open file, another process and another user cannot
#      use, map, attach, execute or wait on the owner's objects nor touch its channel
#      (qaic-fuzz isolation, one test per case);
#   2. the ioctl fuzzer (qaic-fuzz fuzz): ITERATIONS iterations from several processes and
#      threads with SEED; every errno must be legal;
#   3. the card still works: a verified `qaic run`;
#   4. rmmod, and a kernel log without WARN/BUG/Oops/KASAN/lockdep/"scheduling while atomic"/
#      hung-task lines.
# Busybox sh. Static binaries /bin/qaic-fuzz and /bin/qaic come with --file.
#
# Args: MODULE ITERATIONS SEED [PROCS THREADS [AVOID]]   AVOID: comma-separated input classes
# the fuzzer leaves out (qaic-fuzz fuzz --avoid), "-" for none
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

# shellcheck disable=SC2086  # the arguments are words
set -- $QAIC_TEST_ARGS
mod=${1:-qaic}
iterations=${2:-10000}
seed=${3:-1}
procs=${4:-2}
threads=${5:-4}
avoid=
for a in $(echo "${6:--}" | tr ',' ' '); do
	[ "$a" = - ] || avoid="$avoid --avoid $a"
done
node=/dev/accel/accel0

# MANAGE requests the card drops (a STATUS whose length is not 8) time out after 10 s instead of
# the default 60
check insmod load_module "$mod" control_resp_timeout_s=10 || exit 1
check accel-node wait_for 10 test -c $node || exit 1
mhi=
for m in /sys/bus/pci/devices/*/mhi*; do [ -e "$m" ] && mhi=${m##*/}; done
ctl=QAIC_CONTROL
[ "$mod" = qaic_rs ] && ctl=QAIC_RS_CONTROL
if [ -z "$mhi" ] || ! check online wait_for 120 test -e "/sys/bus/mhi/devices/${mhi}_$ctl/driver"; then
	exit 1
fi
# the node accepts open() once the control-protocol version check has passed
wait_for 10 qaic list >/dev/null 2>&1

# steps PREFIX CMD...: run CMD, turn its PASS/FAIL lines into tests
steps() {
	_p=$1
	shift
	"$@" >/tmp/steps.out 2>&1
	echo "$* exit status $?"
	cat /tmp/steps.out
	_n=0
	while read -r verdict name rest; do
		case $verdict in
		PASS) pass "$_p$name" ;;
		FAIL) fail "$_p$name" "$rest" ;;
		*) continue ;;
		esac
		_n=$((_n + 1))
	done </tmp/steps.out
	[ "$_n" -gt 0 ] || fail "${_p}ran" "$1 reported no step"
}

# 1. isolation
info "node permissions: $(ls -l $node)"
chmod 600 $node
steps iso- qaic-fuzz isolation-denied -d $node --uid 65534 --gid 65534
chmod 666 $node
steps iso- qaic-fuzz isolation -d $node --uid 65534 --gid 65534

# 2. the fuzzer
dmesg_mark
fuzz() {
	# shellcheck disable=SC2086  # one word per option
	qaic-fuzz fuzz -d $node -n "$iterations" --seed "$seed" --procs "$procs" --threads "$threads" \
		$avoid >/tmp/fuzz.out 2>&1
	_s=$?
	cat /tmp/fuzz.out
	echo "qaic-fuzz exit status $_s"
	[ $_s = 0 ] && grep -q '^post-check: the device still executes' /tmp/fuzz.out
}
check "fuzz-$iterations" fuzz
# the summary line, with the time, for the host's log
grep -a '^qaic-fuzz: seed' /tmp/fuzz.out | sed 's/^/FUZZ-SUMMARY: /'

# 3. the card still runs a verified inference
check after-fuzz-qaic-run qaic_run_verified

# 4. clean unload and kernel log
check rmmod rmmod "$mod"
# lockdep's and the hung-task detector's report headlines (not the bare word: a lockdep kernel
# says "RCU lockdep checking is enabled" at every boot)
extra='INFO: task .* blocked for more than|scheduling while atomic|possible circular locking'
extra="$extra|possible recursive locking|inconsistent lock state|bad unlock balance|held lock freed"
extra="$extra|lock held when returning|suspicious RCU usage|detected stalls? on CPU"
if dmesg | grep -E "$extra" >/tmp/kextra; then
	fail kernel-no-lockdep-or-hang "$(head -n 3 /tmp/kextra | tr '\n' '|')"
else
	pass kernel-no-lockdep-or-hang
fi
check_kernel_clean kernel-clean
