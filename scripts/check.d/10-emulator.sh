#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 10-emulator.sh - the emulator crate's own checks, no QEMU: `cargo test` (each test counts),
# then clippy with -D warnings and `cargo fmt --check` (one test each).
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"

export CARGO_TARGET_DIR=$QAIC_CACHE/target-emulator
manifest=$REPO/emulator/Cargo.toml
logdir=${RESULTS:-$QAIC_CACHE/results}
mkdir -p "$logdir"
rc=0

log "emulator: cargo test"
if ! cargo test -j2 --manifest-path "$manifest" 2>&1 | tee "$logdir/emulator-cargo-test.log"; then
	rc=1
fi
record_cargo "$logdir/emulator-cargo-test.log" "emulator cargo tests"
if ! grep -q '^test result:' "$logdir/emulator-cargo-test.log"; then
	record 0 1 "emulator cargo tests (did not build)"
	rc=1
fi

log "emulator: cargo clippy --all-targets -- -D warnings"
if cargo clippy -j2 --manifest-path "$manifest" --all-targets -- -D warnings; then
	record 1 0 "emulator clippy"
else
	record 0 1 "emulator clippy"
	rc=1
fi

log "emulator: cargo fmt --check"
if cargo fmt --manifest-path "$manifest" --check; then
	record 1 0 "emulator rustfmt"
else
	record 0 1 "emulator rustfmt"
	rc=1
fi
exit "$rc"
