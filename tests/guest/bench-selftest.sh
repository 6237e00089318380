# SPDX-License-Identifier: GPL-2.0-only
#
# Bench self-test (scripts/check.d/20-smoke.sh): the host must see one passed and one failed
# test and a FAIL verdict; with the argument "hang" the guest never finishes, so the host's
# hard timeout must end the run.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

if [ "${1:-}" = hang ]; then
	info "hanging on purpose"
	sleep 3600
fi
pass selftest-pass
fail selftest-fail "failing on purpose"
