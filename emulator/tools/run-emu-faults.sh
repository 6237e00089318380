#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# run-emu-faults.sh [guest.sh options]: fault injection against the upstream qaic.ko. The guest
# (emu-faults-guest.sh) announces each fault; a host hook sends it to the emulator's control
# socket. Afterwards the emulator log must show the SYS_ERR and a second complete boot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${QAIC_CACHE:-/var/tmp/qaic-rs}
out=${TMPDIR:-/tmp}/emu-probe.$$
trap 'rm -f "$out"' EXIT
gcc -static -O2 -Wall -o "$out" "$here/emu-probe.c"
# shellcheck disable=SC2016 # expanded by the hook shell, not here
# The hook follows the serial log and forwards every "FAULT_POINT <command>" once.
hook='done=0
while :; do
	n=0
	while read -r _ cmd; do
		n=$((n + 1))
		((n > done)) || continue
		python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b\"\\n\"); print(sys.argv[2], \"->\", s.recv(200).decode().strip())" "$GUEST_RUN_DIR/emu0.ctl" "$cmd"
		done=$n
	done < <(grep -a -o "^FAULT_POINT .*" "$GUEST_RUN_DIR/guest.log" 2>/dev/null | tr -d "\r")
	sleep 0.2
done'
rc=0
# EMU_TOOLS_MODULE selects the driver under test: qaic (default, the upstream C driver) or qaic_rs
mod=${EMU_TOOLS_MODULE:-qaic}
name=emu-faults
[[ $mod == qaic ]] || name=emu-faults-$mod
"$repo/scripts/guest.sh" --name "$name" --cards 1 --module "$mod" --control --emu-log mhi,bhi \
	--file "$out:/bin/emu-probe" --script "$here/emu-faults-guest.sh" --args "$mod" --hook "$hook" "$@" || rc=$?
run=${QAIC_RUNS:-$cache/runs}/$name
cat "$run/hook.log" 2>/dev/null || true
loads=$(grep -c "SBL image received" "$run/emu0.log" || true)
if grep -q "entering SYS_ERR" "$run/emu0.log" && grep -q "rebooting from PBL" "$run/emu0.log" && ((loads == 2)); then
	echo "PASS sys-err-reboot: SYS_ERR, host reset, second BHI boot ($loads SBL loads)"
else
	echo "FAIL sys-err-reboot: expected SYS_ERR, a reboot from PBL and 2 SBL loads (got $loads)"
	rc=1
fi
exit "$rc"
