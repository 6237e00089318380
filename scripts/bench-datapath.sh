#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-datapath.sh - data-path benchmark (not a test): execute+wait of 4 KiB and 1 MiB requests
# (DMA to the card and back, data checked) through the upstream C qaic and qaic_rs on the same
# emulated AIC100, in one guest, alternating drivers. Requests: `qaic bench --loopback`
# (runtime/), guest side: tests/guest/bench-datapath.sh. Results: Documentation/driver.rst,
# "Data path speed".
#
# Usage: scripts/bench-datapath.sh [-n N] [-r REQS] [-s REQS] [-p] [-- extra scripts/guest.sh options]
#   -n N      repetitions per driver (default 3)
#   -r REQS   requests per run of 1 MiB requests (default 500)
#   -s REQS   requests per run of 4 KiB requests (default ten times -r: a run then lasts
#             seconds, not a fraction of one, and a slow phase of the host weighs less)
#   -p        polling mode (datapath_polling=1) instead of interrupts
# Interrupts: the emulated IOMMU gives 17 MSI vectors (one per channel). Prints median, min, max
# over the repetitions of requests/s and of the p50/p99 latency per driver and size, the
# ratios qaic_rs / qaic of the medians ("rs/C"), and the median, min and max of the ratio within
# each repetition ("paired"). Exit status 0 when every run completed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

n=3 reqs=500 small='' params=-
extra=()
while (($#)); do
	case $1 in
	-n) n=${2:?}; shift ;;
	-r) reqs=${2:?}; shift ;;
	-s) small=${2:?}; shift ;;
	-p) params=datapath_polling=1 ;;
	-h | --help) sed -n '/^# Usage:/,/^# ratios/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; extra+=("$@"); break ;;
	*) die "unknown option $1 (see -h)" ;;
	esac
	shift
done
small=${small:-$((10 * reqs))}
for v in "$n" "$reqs" "$small"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "-n, -r and -s take positive numbers"
done

if [[ ${QAIC_KERNEL:-test} == deb ]]; then
	"$here/kernel-deb.sh" bench || die "cannot unpack the packaged kernel for the bench"
fi
bin=$RUNTIME_BIN/qaic
runtime_static_build -p qaic-cli || die "cannot build the qaic CLI"

log "data-path benchmark: $n repetitions per driver, $small (4 KiB) and $reqs (1 MiB) requests," \
	"${params/-/interrupts}," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
guest_run --name bench-datapath --cards 1 --iommu --module qaic --module qaic_rs --file "$bin:/bin/qaic" \
	--cmdline kunit.enable=0 --script "$REPO/tests/guest/bench-datapath.sh" --args "$n $reqs $params $small" \
	--timeout $((180 + n * (60 + reqs / 20 + small / 250))) "${extra[@]}"
rc=$?
dir=$(guest_dir bench-datapath)
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $dir"
((rc == 3)) && exit 3

sed -n 's/^QAIC-BENCH: //p' "$dir/guest.log" >"$dir/bench.txt"
awk -v want="$n" -f "$here/bench-stats.awk" -f <(printf '%s' '
	{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		k = f["driver"] SUBSEP f["size"]; c[k]++
		v["rps", k, c[k]] = f["rps"]; v["p50", k, c[k]] = f["p50_us"]; v["p99", k, c[k]] = f["p99_us"]
		byrep["rps", k, f["rep"]] = f["rps"]; byrep["p50", k, f["rep"]] = f["p50_us"]
		byrep["p99", k, f["rep"]] = f["p99_us"]; if (f["rep"] > nrep) nrep = f["rep"]
	}
	END {
		printf "%-5s %-14s %-8s %3s %10s %10s %10s\n", "Size", "Figure", "Driver", "n", "median", "min", "max"
		split("4k 1m", sizes, " "); split("rps p50 p99", figs, " ")
		names["rps"] = "requests/s"; names["p50"] = "p50 (us)"; names["p99"] = "p99 (us)"
		bad = 0
		for (s = 1; s <= 2; s++) for (g = 1; g <= 3; g++) {
			for (x = 1; x <= 2; x++) {
				d = (x == 1) ? "qaic" : "qaic_rs"; k = d SUBSEP sizes[s]
				if (c[k] < want) bad = 1
				if (c[k] == 0) { printf "%-5s %-14s %-8s %3d %10s\n", sizes[s], names[figs[g]], d, 0, "-"; continue }
				stats(v, figs[g] SUBSEP k, c[k]); md[d] = med
				printf "%-5s %-14s %-8s %3d %10.1f %10.1f %10.1f\n", sizes[s], names[figs[g]], d, c[k], med, lo, hi
			}
			if (md["qaic"] > 0 && md["qaic_rs"] > 0)
				printf "%-5s %-14s %-8s %3s %10.2f\n", sizes[s], names[figs[g]], "rs/C", "", md["qaic_rs"] / md["qaic"]
			delete md
			# the ratio within each repetition (both drivers run back to back), then
			# its median, min and max: less sensitive to slow phases of the machine
			np = 0; delete pr
			for (r = 1; r <= nrep; r++) {
				a = byrep[figs[g], "qaic" SUBSEP sizes[s], r]; b = byrep[figs[g], "qaic_rs" SUBSEP sizes[s], r]
				if (a > 0 && b > 0) pr["x", ++np] = b / a
			}
			if (np > 0) {
				stats(pr, "x", np)
				printf "%-5s %-14s %-8s %3d %10.2f %10.2f %10.2f\n", sizes[s], names[figs[g]], "paired", np, med, lo, hi
			}
		}
		exit bad
	}') "$dir/bench.txt" || rc=1
exit "$rc"
