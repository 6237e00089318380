# SPDX-License-Identifier: MIT OR Apache-2.0
# shellcheck shell=sh
#
# Guest script for run-emu-faults.sh: the upstream qaic.ko against injected device faults.
# Phases: garble (-EPIPE), delay (slow but fine), drop (-ETIMEDOUT), late answer (-ETIMEDOUT,
# then an orphan), signal during the wait, sys-err (re-boot); with qaic_rs, an unbind while a
# request waits.
# Each phase prints "FAULT_POINT <command>"; the host hook sends that command to the
# emulator's control socket within a fraction of a second, the guest waits 2 s and checks how
# the driver took it.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

# Args: MODULE (qaic or qaic_rs). Their control channels have different names on the host side.
set -- $QAIC_TEST_ARGS
mod=${1:-qaic}
ctl=QAIC_CONTROL
[ "$mod" = qaic_rs ] && ctl=QAIC_RS_CONTROL

online() { wait_for "$1" sh -c "test -e /sys/bus/mhi/devices/mhi*_$ctl/driver"; }
fault() { echo "FAULT_POINT $*"; sleep 2; }

# a short control response timeout, for the dropped-response phase: 2 s, and every delay and
# limit below, times QAIC_TIMEOUT_SCALE (a slow kernel, e.g. make check-debug's, takes longer
# for everything, an unbind included)
S=${QAIC_TIMEOUT_SCALE:-1}
ms() { echo $(($1 * S)); }
sec() { awk -v a="$1" -v s="$S" 'BEGIN { print a * s }'; }
check insmod load_module "$mod" control_resp_timeout_s="$((2 * S))"
check online online 120 || exit 1
check status-before /bin/emu-probe status 0

fault garble-next-response
check garbled-response-is-epipe /bin/emu-probe status 32
check status-after-garble /bin/emu-probe status 0

fault delay-response "$(ms 1500)"
t0=$(cut -d' ' -f1 /proc/uptime)
check delayed-status /bin/emu-probe status 0
t1=$(cut -d' ' -f1 /proc/uptime)
info "delayed STATUS took $(awk "BEGIN {print $t1 - $t0}") s"
check delay-observed awk "BEGIN {exit !($t1 - $t0 >= $(sec 1.4))}"
fault delay-response 0

fault drop-next-response
check dropped-response-times-out /bin/emu-probe status 110
check status-after-drop /bin/emu-probe status 0

# an answer that arrives after its request timed out (2 s): nobody waits for it any more
fault delay-response "$(ms 3000)"
check late-response-times-out /bin/emu-probe status 110
fault delay-response 0
check status-after-late-answer /bin/emu-probe status 0

# a signal while the request waits (TERM: background jobs of a script ignore INT): it ends the
# wait (the process dies of it), the late answer is an orphan, the next request works
fault delay-response "$(ms 1500)"
/bin/emu-probe status 0 &
pid=$!
sleep 0.5
kill -TERM "$pid"
wait "$pid"
check interrupted-wait-ends test $? -gt 128
fault delay-response 0
check status-after-signal /bin/emu-probe status 0

fault sys-err
check online-after-sys-err online 60
check status-after-sys-err wait_for 10 /bin/emu-probe status 0

# qaic_rs: the card is unbound while a request waits for an answer that never comes; the request
# fails with EIO at once and the unbind does not wait for the response timeout (2 s here)
if [ "$mod" = qaic_rs ]; then
	fault drop-next-response
	/bin/emu-probe status 5 >/tmp/unbind.out 2>&1 &
	pid=$!
	sleep 0.5
	d=$(aic_devices | head -n 1)
	t0=$(cut -d' ' -f1 /proc/uptime)
	echo "${d##*/}" >"/sys/bus/pci/drivers/$mod/unbind"
	t1=$(cut -d' ' -f1 /proc/uptime)
	wait "$pid"
	rc=$?
	cat /tmp/unbind.out
	info "unbind took $(awk "BEGIN {print $t1 - $t0}") s"
	check unbind-while-waiting-eio test "$rc" = 0
	check unbind-while-waiting-fast awk "BEGIN {exit !($t1 - $t0 < $(sec 1.5))}"
fi

check rmmod rmmod "$mod"
