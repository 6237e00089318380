#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check-deb.sh - `make check-deb`: the end-to-end suite on the kernel we ship. The packages of
# `make kernel-deb` are unpacked for the bench (scripts/kernel-deb.sh bench: the packaged
# vmlinuz and the packaged, signed modules, decompressed), then every step of scripts/check.d
# that boots guests runs with QAIC_KERNEL=deb, exactly as in make check. Closes with
# "N passed, N failed"; exit status non-zero if anything failed.
#
# Steps left out, and why: 00-kunit and 05-kernel-style build and run the test kernel (the
# packaged kernel has no KUnit: CONFIG_KUNIT is off for servers), 10-emulator and 30-uapi-abi
# test host-side code that does not depend on the kernel under test.
#
# Usage: scripts/check-deb.sh [STEP-PATTERN...]   e.g. scripts/check-deb.sh smoke rs-boot
# Logs: $QAIC_CACHE/results-deb/ (per step), guest runs in $QAIC_CACHE/runs-deb/.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export QAIC_KERNEL=deb
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
RESULTS=$QAIC_CACHE/results-deb
export QAIC_CACHE RESULTS QAIC_KERNEL
export QAIC_RUNS=$QAIC_CACHE/runs-deb
SKIP=(00-kunit 05-kernel-style 10-emulator 30-uapi-abi)

rm -rf "$RESULTS" "$QAIC_RUNS"
mkdir -p "$RESULTS" "$QAIC_RUNS"
"$here/setup.sh" || die "setup failed"

t0=$SECONDS
rc=0
log "=== the packaged kernel for the bench"
if "$here/kernel-deb.sh" bench 2>&1 | tee "$RESULTS/bench.log"; [[ ${PIPESTATUS[0]} == 0 ]]; then
	record 1 0 "packaged kernel unpacked for the bench ($(sed -n 's/^release=//p' "$KDEB/packages"))"
else
	record 0 1 "packaged kernel unpacked for the bench (make kernel-deb first)"
	echo "0 passed, 1 failed"
	exit 1
fi

for step in "$here"/check.d/*.sh; do
	name=$(basename "$step" .sh)
	skip=0
	for s in "${SKIP[@]}"; do [[ $name == "$s" ]] && skip=1; done
	((skip)) && continue
	if (($#)); then
		sel=0
		for pat in "$@"; do [[ $name == *"$pat"* ]] && sel=1; done
		((sel)) || continue
	fi
	run_check_step "$name" "$name (packaged kernel)" "$step" || rc=1
done

check_summary "make check-deb" "$t0" "$rc"
