#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 45-fuzz.sh - reliability (Documentation/reliability.rst): the runtime's qaic-fuzz against the
# upstream C driver qaic and then qaic_rs on one emulated card (tests/guest/fuzz.sh):
# isolation between files, processes and users (one test per case), the structure-aware ioctl
# fuzzer in bounded mode (every errno legal, no hang), a verified `qaic run` afterwards, clean
# rmmod, and a guest kernel log without WARN/BUG/Oops/KASAN/lockdep/hung-task lines.
#
# FUZZ_MODULES selects the drivers (default "qaic qaic_rs"); FUZZ_ITERATIONS (default 10000 per
# driver), FUZZ_SEED (default: a new one per run, printed, and in the run's guest.log),
# FUZZ_PROCS (2) and FUZZ_THREADS (4). The long mode for benchmarks is FUZZ_ITERATIONS=1000000.
# FUZZ_AVOID_qaic and FUZZ_AVOID_qaic_rs: input classes left out per driver because they are
# known to break it (qaic-fuzz fuzz --avoid; comma-separated, "-" for none); the defaults leave
# out the findings listed in Documentation/reliability.rst, so that everything else is tested.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

bin=$RUNTIME_BIN
log "fuzz: static qaic-fuzz and qaic binaries"
if ! runtime_static_build -p qaic-fuzz -p qaic-cli; then
	record 0 1 "fuzz: static qaic-fuzz binary"
	exit 1
fi

iterations=${FUZZ_ITERATIONS:-10000}
seed=${FUZZ_SEED:-$(printf '0x%x' "$(date +%s%N)")}
procs=${FUZZ_PROCS:-2}
threads=${FUZZ_THREADS:-4}
# about 1 ms per iteration under TCG, plus boot and the isolation tests
timeout=$((300 + iterations / 50))
log "fuzz: seed $seed, $iterations iterations per driver ($procs processes x $threads threads)"

rc=0
for mod in ${FUZZ_MODULES:-qaic qaic_rs}; do
	ko=$KBUILD/drivers/accel/$mod/$mod.ko
	if [[ ! -f $ko ]]; then
		record 0 1 "fuzz ($mod): $mod.ko built"
		rc=1
		continue
	fi
	name=fuzz-$mod
	avoid_var=FUZZ_AVOID_$mod
	case $mod in
	qaic) avoid=${!avoid_var:-multi-dbc,huge-queue} ;;
	qaic_rs) avoid=${!avoid_var:--} ;;
	*) avoid=${!avoid_var:--} ;;
	esac
	guest_run --name "$name" --cards 1 --module "$mod" \
		--file "$bin/qaic-fuzz:/bin/qaic-fuzz" --file "$bin/qaic:/bin/qaic" \
		--script "$REPO/tests/guest/fuzz.sh" --args "$mod $iterations $seed $procs $threads $avoid" \
		--timeout "$timeout" || rc=1
	dir=$(guest_dir "$name")
	t="fuzz ($mod)"
	guest_record "$dir" "$t"
	guest_record_kernel_clean "$dir" "$t" || rc=1
	guest_record_qemu_clean "$dir" "$t" || rc=1
	grep -a '^FUZZ-SUMMARY: ' "$dir/guest.log" || true
	grep -a -A1 '^FINDING' "$dir/guest.log" | head -n 20 || true
	((rc == 0)) || warn "$name failed; logs in $dir (guest.log, emu0.log, dmesg.log)"
done
exit "$rc"
