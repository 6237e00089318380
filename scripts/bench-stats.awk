# SPDX-License-Identifier: GPL-2.0-only
#
# bench-stats.awk - shared by the benchmark scripts (scripts/bench-*.sh), loaded with their own
# program: awk -f scripts/bench-stats.awk -f PROGRAM.
#
# stats(arr, key, cnt): the median, min and max of arr[key, 1] .. arr[key, cnt] into the
# globals med, lo and hi (insertion sort: a handful of repetitions).
function stats(arr, key, cnt,    a, i, j, t) {
	for (i = 1; i <= cnt; i++) a[i] = arr[key, i]
	for (i = 2; i <= cnt; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	med = (cnt % 2) ? a[(cnt + 1) / 2] : (a[cnt / 2] + a[cnt / 2 + 1]) / 2
	lo = a[1]; hi = a[cnt]
}
