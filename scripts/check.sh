#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check.sh - `make check`: run every test step in scripts/check.d/ in name order and close with
# one "N passed, N failed" line over all of them. Exit status is non-zero if anything failed.
#
# A step is an executable scripts/check.d/NN-name.sh. It records its own verdicts with
# `record`, `record_cargo` or `record_ktap` (scripts/lib.sh) and exits non-zero on failure; a
# step that fails without recording anything counts as one failed test. Steps run with the
# environment of scripts/lib.sh; their output goes to the terminal and $RESULTS/<step>.log.
#
# Usage: scripts/check.sh [STEP-PATTERN...]   e.g. scripts/check.sh kunit cargo
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
export RESULTS QAIC_CACHE

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
"$here/setup.sh" || die "setup failed"

t0=$SECONDS
rc=0
for step in "$here"/check.d/*.sh; do
	name=$(basename "$step" .sh)
	if (($#)); then
		sel=0
		for pat in "$@"; do [[ $name == *"$pat"* ]] && sel=1; done
		((sel)) || continue
	fi
	run_check_step "$name" "$name" "$step" || rc=1
done

echo
echo "Results by step:"
awk '{ printf "  %-40s %5d passed %5d failed\n", substr($0, index($0, $3)), $1, $2 }' "$RESULTS/counts" 2>/dev/null
read -r passed failed < <(awk '{p += $1; f += $2} END {print p+0, f+0}' "$RESULTS/counts" 2>/dev/null)
((failed > 0)) && rc=1
((passed + failed > 0)) || { echo "no test ran"; rc=1; }
log "make check took $((SECONDS - t0)) s"
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
