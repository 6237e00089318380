#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the test kernel (incremental) and runs its built-in KUnit suites with kunit.py in QEMU:
# among them rust_drm_accel, the test of the DRM accel abstraction from kernel/patches. The
# driver's own suites are in qaic_rs.ko and run when the guest smoke test loads it.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

"$REPO/scripts/build-kernel.sh"
kernel_env

mkdir -p "$RESULTS"
raw=$RESULTS/kunit-builtin.ktap
cmd=(./tools/testing/kunit/kunit.py exec --arch=x86_64 --build_dir="$KBUILD"
	--kunitconfig="$REPO/kernel/configs/qaic-qemu.config" --timeout=300 --raw_output=kunit)
cd "$WORKTREE"
if [[ $(qemu_accel) == tcg && -e /dev/kvm ]]; then
	# kunit.py always offers QEMU "-accel kvm" first; on kvm_pvm that hangs. Hide /dev/kvm in a
	# private mount namespace so QEMU falls back to TCG.
	unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "${cmd[@]}" >"$raw" || true
else
	"${cmd[@]}" >"$raw" || true
fi

# kunit.py parse prints the human summary and fails on any failed or missing test.
rc=0
./tools/testing/kunit/kunit.py parse "$raw" || rc=$?
grep -q '^ok [0-9]* rust_drm_accel' "$raw" || { echo "rust_drm_accel did not pass"; rc=1; }
record_ktap "$raw" "KUnit built-in suites (kunit.py)"
exit "$rc"
