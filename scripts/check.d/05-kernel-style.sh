#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Kernel Rust style: the driver and the Rust files the patch series touches are rustfmt-clean
# with the kernel's .rustfmt.toml, and the driver builds without any warning under CLIPPY=1.
# Each is one recorded test.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

"$REPO/scripts/build-kernel.sh" tree >/dev/null || die "no kernel work tree"
kernel_env
rc=0

# 1. rustfmt: the driver, then the series' .rs files as applied in the work tree.
mapfile -t series_rs < <(sed -n 's|^+++ b/\(.*\.rs\)$|\1|p' "$REPO"/kernel/patches/*.patch | sort -u)
if (cd "$WORKTREE" && rustfmt --check --edition 2021 --config-path .rustfmt.toml \
	"$REPO"/*.rs "${series_rs[@]}"); then
	record 1 0 "rustfmt: driver and patch series"
else
	record 0 1 "rustfmt: driver and patch series"
	rc=1
fi

# 2. clippy: rebuild the driver's objects with CLIPPY=1 and fail on any warning.
log "clippy build of drivers/accel/qaic_rs"
exec 9>"$QAIC_CACHE/kbuild.lock"
flock 9 # the build dir is shared with build-kernel.sh
rm -f "$KBUILD"/drivers/accel/qaic_rs/*.o
out=$RESULTS/clippy.log
mkdir -p "$RESULTS"
if make -s -C "$WORKTREE" O="$KBUILD" ARCH=x86_64 CLIPPY=1 -j"$JOBS" drivers/accel/qaic_rs/ \
	>"$out" 2>&1 && ! grep -qE '^(warning|error)' "$out"; then
	record 1 0 "clippy: qaic_rs without warnings"
else
	cat "$out"
	record 0 1 "clippy: qaic_rs without warnings"
	rc=1
fi
# 3. modinfo lists every firmware file the driver can ask for: the SBL and the Sahara table.
ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko
want=$(grep -ohE 'c"qcom/aic100/[a-z0-9_]+\.bin"' "$REPO/mhi.rs" "$REPO/sahara.rs" |
	sed 's/^c"//; s/"$//' | sort -u)
have=$(modinfo -F firmware "$ko" 2>/dev/null | sort -u)
if [[ -n $want && $want == "$have" ]]; then
	record 1 0 "modinfo firmware list matches the driver's tables"
else
	echo "firmware in the tables:"; echo "$want"; echo "modinfo:"; echo "$have"
	record 0 1 "modinfo firmware list matches the driver's tables"
	rc=1
fi
exit "$rc"
