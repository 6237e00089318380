#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-boot.sh - boot-time benchmark (not a test): the upstream C qaic against qaic_rs on the
# same emulated AIC100, in one guest, alternating drivers, every boot from a cold card (PBL ->
# BHI -> SBL -> Sahara -> mission mode -> ONLINE). Guest side and the exact definition of the
# two figures: tests/guest/bench-boot.sh. Results: Documentation/testing.rst, "Boot time".
#
# Usage: scripts/bench-boot.sh [-n N] [-i] [-- extra scripts/guest.sh options]
#   -n N   repetitions per driver (default 5)
#   -i     with the emulated IOMMU (17 MSI vectors) instead of the single shared vector
# Prints a table: median, min, max per driver and figure, and the ratio qaic_rs / qaic of the
# medians. Exit status 0 when every boot reached ONLINE, 1 otherwise, 3 on a bench error.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

n=5
extra=()
while (($#)); do
	case $1 in
	-n) n=${2:?}; shift ;;
	-i) extra+=(--iommu) ;;
	-h | --help) sed -n '/^# Usage:/,/^# medians/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; extra+=("$@"); break ;;
	*) die "unknown option $1 (see -h)" ;;
	esac
	shift
done
[[ $n =~ ^[1-9][0-9]*$ ]] || die "-n takes a positive number"

log "boot benchmark: $n cold boots per driver, load average $(cut -d' ' -f1-3 /proc/loadavg)"
guest_run --name bench-boot --cards 1 --control --module qaic --module qaic_rs \
	--cmdline kunit.enable=0 --script "$REPO/tests/guest/bench-boot.sh" --args "$n" \
	--timeout $((120 + 30 * n)) "${extra[@]}"
rc=$?
dir=$(guest_dir bench-boot)
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $dir"
((rc == 3)) && exit 3

sed -n 's/^QAIC-BENCH: //p' "$dir/guest.log" >"$dir/bench.txt"
awk -v want="$n" -f "$here/bench-stats.awk" -f <(printf '%s' '
	{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		d = f["driver"]
		no[d]++; on[d, no[d]] = f["online_ms"]
		nm[d]++; mh[d, nm[d]] = f["mhi_ms"]
	}
	END {
		printf "%-32s %-8s %3s %9s %9s %9s\n", "Figure", "Driver", "n", "median", "min", "max"
		for (k = 1; k <= 2; k++) {
			name = (k == 1) ? "insmod to ONLINE (ms)" : "MHI power-on to mission (ms)"
			for (x = 1; x <= 2; x++) {
				d = (x == 1) ? "qaic" : "qaic_rs"
				c = (k == 1) ? no[d] : nm[d]
				if (c == 0) { printf "%-32s %-8s %3d %9s\n", name, d, 0, "-"; continue }
				if (k == 1) stats(on, d, c); else stats(mh, d, c)
				m[k, d] = med
				printf "%-32s %-8s %3d %9.1f %9.1f %9.1f\n", name, d, c, med, lo, hi
			}
			if (m[k, "qaic"] > 0 && m[k, "qaic_rs"] > 0)
				printf "%-32s %-8s %3s %9.2f\n", name, "rs/C", "", m[k, "qaic_rs"] / m[k, "qaic"]
		}
		if (no["qaic"] < want || no["qaic_rs"] < want) exit 1
	}') "$dir/bench.txt" || rc=1
exit "$rc"
