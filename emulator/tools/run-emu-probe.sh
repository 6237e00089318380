#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# run-emu-probe.sh [guest.sh options]: build emu-probe statically and run emu-probe-guest.sh on
# the bench with one emulated card and the upstream qaic.ko (timings in the guest log:
# grep TIMING $QAIC_CACHE/runs/emu-probe/guest.log).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${TMPDIR:-/tmp}/emu-probe.$$
trap 'rm -f "$out"' EXIT
gcc -static -O2 -Wall -o "$out" "$here/emu-probe.c"
"$repo/scripts/guest.sh" --name emu-probe --cards 1 --module qaic --file "$out:/bin/emu-probe" \
	--script "$here/emu-probe-guest.sh" "$@"
