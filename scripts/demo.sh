#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# demo.sh - `make demo`: build what is needed, boot a QEMU guest with one emulated AIC100 card,
# load the qaic_rs driver, show what it did (kernel log, /dev/accel, its PCI driver in sysfs),
# unload it and print a short summary.
#
# Steps: the QEMU 11 chroot (scripts/setup.sh chroot), the kernel (scripts/build-kernel.sh,
# seconds when up to date), the emulator (cargo; without it the guest boots with no card), the
# guest run (scripts/guest.sh, guest side tests/guest/demo.sh).
#
# Usage: scripts/demo.sh [--no-build] [GUEST-OPTIONS]   e.g. --iommu, --cards 2, -v (see
#        scripts/guest.sh); --no-build boots the kernel that is built already
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

build=1
if [[ ${1:-} == --no-build ]]; then
	build=0
	shift
fi

t0=$SECONDS
log "1/4 QEMU 11 (trixie chroot in $CHROOT)"
"$here/setup.sh" chroot >/dev/null || die "QEMU chroot setup failed"
log "2/4 kernel and modules (scripts/build-kernel.sh)"
if ((build)); then
	"$here/build-kernel.sh" || die "kernel build failed"
fi
ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko
[[ -f $ko ]] || die "the kernel build produced no $ko"

log "3/4 the emulated card (emulator/, cargo build --release)"
cards=1
if [[ ! -f $REPO/emulator/Cargo.toml ]]; then
	warn "no emulator crate yet: the guest boots without a card"
	cards=0
elif ! CARGO_TARGET_DIR=$EMU_TARGET cargo build -q --release \
	--manifest-path "$REPO/emulator/Cargo.toml"; then
	warn "the emulator does not build: the guest boots without a card"
	cards=0
fi

# The runtime's qaic CLI, static for the busybox guest (as scripts/check.d/40-runtime.sh builds it)
files=()
if runtime_static_build -p qaic-cli; then
	files+=(--file "$RUNTIME_BIN/qaic:/bin/qaic")
else
	warn "the qaic CLI does not build: no inference in the guest"
fi

log "4/4 booting the guest (QEMU, $(qemu_accel); about 10-30 s)"
guest_run --name demo --cards "$cards" --module qaic_rs --script "$REPO/tests/guest/demo.sh" \
	"${files[@]}" --timeout 300 "$@"
rc=$?
dir=$(guest_dir demo)

# The guest's own output: everything between /init and the kernel log dump.
echo
sed -n '/^QAIC-INIT: /,/^QAIC-DMESG-BEGIN/p' "$dir/guest.log" | sed '1d;$d' |
	sed 's/^QAIC-TEST: PASS /[pass] /; s/^QAIC-TEST: FAIL /[FAIL] /; s/^/  | /'
echo
read -r passed failed < <(guest_tests "$dir" | awk '/^PASS/ {p++} /^FAIL/ {f++} END {print p+0, f+0}')
echo "Summary:"
echo "  guest:     Linux $(guest_kernel_release "$dir/bzImage")," \
	"QEMU $(qemu_accel), $cards emulated AIC100 card(s)"
echo "  checks:    $passed passed, $failed failed$(guest_tests "$dir" | awk '/^FAIL/ {printf " %s", $2}')"
echo "  verdict:   $(guest_verdict "$dir") (guest.sh exit $rc), $((SECONDS - t0)) s in all"
echo "  logs:      $dir/  (guest.log = serial console, dmesg.log, emu0.log)"
[[ $cards == 0 ]] && echo "  note:      no emulated card, so the driver only registered (no probe)"
exit "$rc"
