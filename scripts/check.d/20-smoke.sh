#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 20-smoke.sh - the guest smoke test: boot the test kernel in QEMU with no device, insmod
# qaic_rs.ko (its KUnit suite runs at insmod), check it is live and registered its PCI driver,
# rmmod it, and check the guest kernel log has no WARNING/BUG/Oops/KASAN/Call Trace.
# Guest side: tests/guest/smoke.sh; bench: scripts/guest.sh. Before that, two bench self-tests
# (tests/guest/bench-selftest.sh): a failing guest test fails the run; a hung guest times out.
#
# SMOKE_MODULE=qaic runs the same test on the upstream C driver (no KUnit suite there).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

# The bench itself first: a failing guest test must fail the run, a hung guest must be stopped.
log "bench self-test: the next run must FAIL, the one after it must time out"
guest_run --name bench-selftest --script "$REPO/tests/guest/bench-selftest.sh" --timeout 60
src=$?
dir=$(guest_dir bench-selftest)
if ((src == 1)) && [[ $(guest_verdict "$dir") == FAIL ]] &&
	[[ $(guest_tests "$dir" | tr '\n' ' ') == "PASS selftest-pass FAIL selftest-fail " ]]; then
	record 1 0 "bench: a failing guest test fails the run"
else
	record 0 1 "bench: a failing guest test fails the run (exit $src, verdict $(guest_verdict "$dir"))"
fi
guest_run --name bench-timeout --script "$REPO/tests/guest/bench-selftest.sh" --args hang --timeout 10
src=$?
dir=$(guest_dir bench-timeout)
if ((src == 2)) && grep -q '^reason=timeout' "$dir/result"; then
	record 1 0 "bench: a hung guest is stopped at the timeout"
else
	record 0 1 "bench: a hung guest is stopped at the timeout (exit $src)"
fi

# The kernel-log scan: a known finding of the C driver (tests/guest/known-splats.awk) is left
# out, the same report from qaic_rs or any other report of the C driver is not.
splat_case() { # NAME MODULE-LINE WARNING-LINE EXPECT(clean|problem)
	local d got
	d=$(mktemp -d)
	printf '%s\n' "[    7.1] ------------[ cut here ]------------" \
		"[    7.1] Memory manager not clean during takedown." "[    7.2] $3" \
		"[    7.2] Modules linked in: $2" "[    7.3] Call Trace:" "[    7.3]  <TASK>" \
		"[    7.3]  pci_unregister_driver+0x3a/0x80" "[    7.4] ---[ end trace 0000000000000000 ]---" \
		>"$d/dmesg.log"
	# the serial console has the same report without its "cut here" line
	grep -v 'cut here' "$d/dmesg.log" >"$d/guest.log"
	if guest_kernel_problems "$d" >/dev/null; then got=problem; else got=clean; fi
	rm -rf "$d"
	if [[ $got == "$4" ]]; then
		record 1 0 "bench: kernel-log scan, $1"
	else
		record 0 1 "bench: kernel-log scan, $1 (got $got, want $4)"
	fi
}
mm='WARNING: drivers/gpu/drm/drm_mm.c:965 at drm_mm_takedown+0x1d/0x30, CPU#1: rmmod/895'
splat_case "C driver's buffer leak at unload is a known finding" 'qaic(-)' "$mm" clean
splat_case "the same report from qaic_rs fails" 'qaic_rs(-) qaic' "$mm" problem
splat_case "another C driver warning fails" 'qaic(-)' \
	'WARNING: drivers/accel/qaic/qaic_data.c:1000 at release_dbc+0x1/0x2, CPU#0: rmmod/1' problem

mod=${SMOKE_MODULE:-qaic_rs}
case $mod in
qaic_rs) ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko kunit=kunit ;;
qaic) ko=$KBUILD/drivers/accel/qaic/qaic.ko kunit=nokunit ;;
*) die "SMOKE_MODULE must be qaic_rs or qaic" ;;
esac
# a kernel without KUnit (the packaged one, QAIC_KERNEL=deb) has no suites to run at insmod
grep -qx 'CONFIG_KUNIT=y' "$KBUILD/.config" 2>/dev/null || kunit=nokunit
t="smoke ($mod)"

if [[ ! -f $ko ]]; then
	record 0 1 "$t: $mod.ko built"
	die "$ko does not exist: build the kernel first (scripts/build-kernel.sh)"
fi

guest_run --name "smoke-$mod" --cards 0 --module "$mod" --script "$REPO/tests/guest/smoke.sh" \
	--args "$mod $mod $kunit" --timeout 300
rc=$?
dir=$(guest_dir "smoke-$mod")
guest_record "$dir" "$t"

ktap=$(guest_ktap "$dir" kunit)
if [[ $kunit == kunit && -s $ktap ]]; then
	record_ktap "$ktap" "$t: KUnit subtests at insmod"
	read -r p f _ < <(tail -n 1 "$RESULTS/counts")
	if ((p + f == 0)); then
		record 0 1 "$t: KUnit ran at least one test"
		rc=1
	fi
	((f == 0)) || rc=1
fi

guest_record_kernel_clean "$dir" "$t" || rc=1

((rc == 0)) || warn "smoke test failed; logs in $dir (guest.log = serial console)"
exit "$rc"
