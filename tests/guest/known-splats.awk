# SPDX-License-Identifier: GPL-2.0-only
#
# known-splats.awk - a kernel log with the known findings of the upstream C driver taken out.
#
# Reads a kernel log (dmesg, or a serial console with test output mixed in) and prints it
# unchanged, except that each warning report (from "cut here", or from its "WARNING:" line where
# the console left the "cut here" out, to "end trace") that is a known
# finding of the C driver, documented in Documentation/reliability.rst ("C driver (documented,
# not fixed)"), is replaced by one line "QAIC-KNOWN: NAME", which the kernel-problem patterns of
# tests/guest/lib.sh and scripts/guest.sh do not match. Every other report is printed whole.
#
# Known findings:
#   qaic-bo-leak-at-unload  "Memory manager not clean during takedown": a WARNING in
#                           drm_mm_takedown while the module being removed is the C driver
#                           (qaic(-) in "Modules linked in"): a buffer object of the C driver was
#                           never freed. qaic_rs's module is qaic_rs, which this never matches.
#
# Used in the guest (busybox awk, /qaic/known-splats.awk) and on the host.

function flush(known) {
	if (known != "")
		print "QAIC-KNOWN: " known
	else
		printf "%s", blk
	blk = ""
	inblk = 0
}

/-+\[ cut here \]-+/ || (!inblk && /WARNING: /) {
	if (inblk)
		flush("")
	inblk = 1
	mm = 0
	c_unload = 0
	blk = ""
}

inblk {
	blk = blk $0 "\n"
	if ($0 ~ /WARNING: .*drm_mm_takedown/)
		mm = 1
	if ($0 ~ /Modules linked in:.* qaic[(]-[)]/)
		c_unload = 1
	if ($0 ~ /---\[ end trace/)
		flush(mm && c_unload ? "qaic-bo-leak-at-unload" : "")
	next
}

{ print }

END {
	if (inblk)
		flush("")
}
