#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 40-runtime.sh - the userspace runtime workspace (runtime/: crate qaic and the qaic CLI):
# cargo test (every unit and doc test counts), cargo clippy -D warnings (one test) and
# cargo fmt --check (one test), and the statically linked release build of the qaic CLI for the
# busybox guest (one test). Once a kernel build and the emulator exist, also a smoke test of the
# runtime in a guest against the C driver and an emulated card (runtime/guest/runtime-smoke.sh),
# then its data-carrying steps in a guest whose DMA mappings all go through bounce buffers.
# Build output goes to $QAIC_CACHE/target-runtime so that fresh clones reuse it.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

export CARGO_TARGET_DIR=$QAIC_CACHE/target-runtime
cd "$REPO/runtime" || die "no runtime/ directory"
mkdir -p "$RESULTS"
rc=0

log "runtime: cargo test"
tlog=$RESULTS/runtime-cargo-test.log
cargo test --locked -j "$JOBS" --workspace 2>&1 | tee "$tlog"
trc=${PIPESTATUS[0]}
record_cargo "$tlog" "runtime cargo tests"
if ((trc != 0)); then
	# a build failure prints no "test result" line: make sure it counts as a failure
	grep -q '^test result:' "$tlog" || record 0 1 "runtime cargo tests (build failed)"
	rc=1
fi

log "runtime: cargo clippy --all-targets -D warnings"
if cargo clippy --locked -j "$JOBS" --workspace --all-targets -- -D warnings; then
	record 1 0 "runtime clippy -D warnings"
else
	record 0 1 "runtime clippy -D warnings"
	rc=1
fi

log "runtime: cargo fmt --check"
if cargo fmt --all -- --check; then
	record 1 0 "runtime rustfmt"
else
	record 0 1 "runtime rustfmt"
	rc=1
fi

# The qaic binary for the busybox guest must link statically (see runtime/README.md).
log "runtime: static qaic binary"
bin=$RUNTIME_BIN/qaic
# static = no program interpreter and no NEEDED shared library (readelf comes with gcc's binutils)
static_ok() { ! readelf -lW "$1" | grep -q 'program interpreter' && ! readelf -dW "$1" | grep -q '(NEEDED)'; }
if runtime_static_build &&
	static_ok "$bin" && "$bin" --version; then
	command -v file >/dev/null && file "$bin"
	record 1 0 "runtime static qaic binary"
else
	echo "FAIL: $bin is missing or not statically linked"
	readelf -dW "$bin" 2>/dev/null | grep NEEDED
	record 0 1 "runtime static qaic binary"
	rc=1
fi

# End to end in a guest: the static binaries against each driver and the emulated card, once the
# kernel, the driver modules and the emulator exist (like 50-c-driver.sh; skipped before that).
# RUNTIME_GUEST_MODULES selects the drivers (default: the upstream C driver qaic, then qaic_rs,
# on which the data-path steps are reported as skipped until it has them).
built=0
for gmod in ${RUNTIME_GUEST_MODULES:-qaic qaic_rs}; do
	ko=$KBUILD/drivers/accel/$gmod/$gmod.ko
	if [[ -n ${QAIC_SKIP_GUEST:-} ]]; then
		warn "runtime guest smoke skipped (QAIC_SKIP_GUEST)"
	elif [[ -f $ko && -f $REPO/emulator/Cargo.toml && -f $KBUILD/arch/x86/boot/bzImage ]]; then
		log "runtime: smoke test in a guest ($gmod + emulated card)"
		if ((!built)); then
			runtime_static_build --example uapi-smoke --example uapi-errno --example uapi-diff || rc=1
			built=1
		fi
		ex=$RUNTIME_BIN/examples
		# shellcheck source=scripts/guest.sh
		. "$REPO/scripts/guest.sh"
		t="runtime guest ($gmod)"
		guest_run --name "runtime-$gmod" --cards 1 --module "$gmod" \
			--file "$bin:/bin/qaic" --file "$ex/uapi-smoke:/bin/uapi-smoke" --file "$ex/uapi-errno:/bin/uapi-errno" \
			--file "$ex/uapi-diff:/bin/uapi-diff" \
			--script "$REPO/runtime/guest/runtime-smoke.sh" --args "$gmod 120" --timeout 420 || rc=1
		guest_record "$(guest_dir "runtime-$gmod")" "$t"
		# The data-carrying steps again with every DMA mapping bounced (swiotlb=force): the
		# buffers' contents only arrive if the driver syncs them around each transfer.
		guest_run --name "runtime-bounce-$gmod" --cards 1 --module "$gmod" \
			--file "$bin:/bin/qaic" --cmdline swiotlb=force \
			--script "$REPO/runtime/guest/runtime-smoke.sh" --args "$gmod 120 bounce" --timeout 300 || rc=1
		guest_record "$(guest_dir "runtime-bounce-$gmod")" "runtime guest, bounce buffers ($gmod)"
	else
		warn "runtime guest smoke skipped: needs $ko, the emulator and a kernel build"
	fi
done

exit "$rc"
