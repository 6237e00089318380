#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-manage.sh - control-path benchmark (not a test): the upstream C qaic against qaic_rs on
# the same emulated AIC100, in one guest, alternating drivers: the round trip of a MANAGE STATUS
# request and a 64 MiB DMA transfer (user memory pinned, mapped, described to the card, which
# reads all of it). Guest side: tests/guest/bench-manage.sh; requests: emulator/tools/emu-probe.c
# ("bench"). Results: Documentation/driver.rst, "Control path speed".
#
# Usage: scripts/bench-manage.sh [-n N] [-s S] [-m M] [-i] [-- extra scripts/guest.sh options]
#   -n N   repetitions per driver (default 3)
#   -s S   STATUS round trips per repetition (default 200)
#   -m M   64 MiB DMA transfers per repetition (default 3)
#   -i     with the emulated IOMMU (17 MSI vectors) instead of the single shared vector
# Prints a table: median, min, max over the repetitions (each itself a median) per driver and
# figure, and the ratio qaic_rs / qaic of the medians. Exit status 0 when every run completed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

n=3 s=200 m=3
extra=()
while (($#)); do
	case $1 in
	-n) n=${2:?}; shift ;;
	-s) s=${2:?}; shift ;;
	-m) m=${2:?}; shift ;;
	-i) extra+=(--iommu) ;;
	-h | --help) sed -n '/^# Usage:/,/^# figure/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; extra+=("$@"); break ;;
	*) die "unknown option $1 (see -h)" ;;
	esac
	shift
done
for v in "$n" "$s" "$m"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "-n, -s and -m take positive numbers"
done

probe=$(mktemp) || die "mktemp failed"
trap 'rm -f "$probe"' EXIT
gcc -static -O2 -Wall -o "$probe" "$REPO/emulator/tools/emu-probe.c" || die "cannot build emu-probe"

log "control-path benchmark: $n repetitions per driver, load average $(cut -d' ' -f1-3 /proc/loadavg)"
guest_run --name bench-manage --cards 1 --module qaic --module qaic_rs --file "$probe:/bin/emu-probe" \
	--cmdline kunit.enable=0 --script "$REPO/tests/guest/bench-manage.sh" --args "$n $s $m" \
	--timeout $((120 + 60 * n)) "${extra[@]}"
rc=$?
dir=$(guest_dir bench-manage)
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $dir"
((rc == 3)) && exit 3

sed -n 's/^QAIC-BENCH: //p' "$dir/guest.log" >"$dir/bench.txt"
awk -v want="$n" -f "$here/bench-stats.awk" -f <(printf '%s' '
	{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		d = f["driver"]; c[d]++
		st[d, c[d]] = f["status_us"]; dm[d, c[d]] = f["dma64_ms"]
	}
	END {
		printf "%-32s %-8s %3s %9s %9s %9s\n", "Figure", "Driver", "n", "median", "min", "max"
		for (k = 1; k <= 2; k++) {
			name = (k == 1) ? "MANAGE STATUS round trip (us)" : "64 MiB DMA transfer (ms)"
			for (x = 1; x <= 2; x++) {
				d = (x == 1) ? "qaic" : "qaic_rs"
				if (c[d] == 0) { printf "%-32s %-8s %3d %9s\n", name, d, 0, "-"; continue }
				if (k == 1) stats(st, d, c[d]); else stats(dm, d, c[d])
				md[k, d] = med
				printf "%-32s %-8s %3d %9.1f %9.1f %9.1f\n", name, d, c[d], med, lo, hi
			}
			if (md[k, "qaic"] > 0 && md[k, "qaic_rs"] > 0)
				printf "%-32s %-8s %3s %9.2f\n", name, "rs/C", "", md[k, "qaic_rs"] / md[k, "qaic"]
		}
		if (c["qaic"] < want || c["qaic_rs"] < want) exit 1
	}') "$dir/bench.txt" || rc=1
exit "$rc"
