#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check-debug.sh - `make check-debug`: the end-to-end guest steps that exercise qaic_rs, on the
# debug kernel (kernel/configs/qaic-debug.config: KASAN, lockdep, kmemleak, UBSAN, debug
# objects, DMA-API debugging, hung-task detection; QAIC_KERNEL=debug in scripts/lib.sh), then a
# scan of every guest's kernel log for splats. Closes with "N passed, N failed" like make check;
# exit status non-zero if anything failed.
#
# 1. builds the debug kernel (scripts/build-kernel.sh with QAIC_KERNEL=debug: its own build dir
#    $QAIC_CACHE/kbuild-debug, from the same work tree; cold about 30 min, see testing.rst);
# 2. runs the steps, selected for qaic_rs: 20-smoke, 40-runtime (guest part on qaic_rs only),
#    52-c-datapath (rs-datapath-* only), 55-emu-tools (qaic_rs only), 60-rs-boot,
#    65-rs-lifecycle (its coexist case also loads the C qaic), 45-fuzz, 70-lifecycle and
#    75-hotunplug (qaic_rs only; these three were added after the last measured run). Their
#    own verdicts count as in make check. Every guest ends with the epilogue below: a kmemleak
#    scan (two passes, after the 5 s minimum age) whose report is kept as <run>/kmemleak.log,
#    and the taint flags;
# 3. scans every run's console and kernel log (guest.log) for splats (SPLAT_RE) and records one
#    verdict per run, "<run>: no kernel splats"; the offending blocks go to <run>/splats.log and
#    are summarised with the module they point at (qaic_rs, qaic, other). Also per run: the
#    kmemleak scan ran (if the run got to its end), and taint W/B/D/L/M has a splat to explain it.
#
# Usage: scripts/check-debug.sh [STEP-PATTERN...]   e.g. scripts/check-debug.sh rs-boot
#        scripts/check-debug.sh --scan               only scan the guest runs of the last run again
# Environment: QAIC_TIMEOUT_SCALE (default 3) multiplies the steps' guest timeouts;
# JOBS for the kernel build. Logs: $QAIC_CACHE/results-debug/ (per step),
# $QAIC_CACHE/runs-debug/ (per guest run, kept apart from make check's $QAIC_CACHE/runs).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export QAIC_KERNEL=debug
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
RESULTS=$QAIC_CACHE/results-debug
SCAN_ONLY=0
if [[ ${1:-} == --scan ]]; then
	SCAN_ONLY=1
	RESULTS=$QAIC_CACHE/results-debug-scan
	shift
fi
export QAIC_CACHE RESULTS QAIC_KERNEL
export QAIC_RUNS=$QAIC_CACHE/runs-debug
export QAIC_TIMEOUT_SCALE=${QAIC_TIMEOUT_SCALE:-3}
export QAIC_GUEST_EPILOGUE=$QAIC_CACHE/debug-epilogue.sh
# no5lvl: with QEMU's -cpu max under TCG the guest gets 5-level paging, and an interrupt taken
# during early boot (identify_cpu) then trips KASAN ("wild-memory-access in do_raw_spin_lock",
# handle_edge_irq), which taints the kernel and switches lockdep off for the whole run.
# kunit.filter_glob: only qaic_rs's suites (20-smoke runs them at insmod); the built-in suites
# run once, in the kunit-builtin run below, not at every boot.
export QAIC_GUEST_CMDLINE="no5lvl kunit.filter_glob=qaic_rs*"
# the qaic_rs half of the steps that compare both drivers
export RUNTIME_GUEST_MODULES=qaic_rs C_DATAPATH_MODULES=qaic_rs FUZZ_MODULES=qaic_rs
export LIFECYCLE_DRIVERS=qaic_rs HOTUNPLUG_DRIVERS=qaic_rs
# the coexist run of 65-rs-lifecycle loads the C qaic, whose known lockdep report (SPLAT_IGNORE)
# its own line-by-line kernel log checks would count: the splat scan below judges that log
export RS_LIFECYCLE_COEXIST_CLEAN=scan

# Kernel log lines that start a splat. Each alternative is one detector of the debug config:
SPLAT_RE='(^|[^A-Za-z])BUG:|WARNING:|KASAN:|UBSAN:|Oops|general protection fault|Kernel panic|kernel BUG at'
SPLAT_RE+='|refcount_t:|list_(add|del) corruption'      # (debug objects report with a WARNING)
SPLAT_RE+='|possible circular locking|possible recursive locking|inconsistent lock state'
SPLAT_RE+='|suspicious RCU usage|sleeping function called from invalid context'
SPLAT_RE+='|scheduling while atomic|bad unlock balance|held lock freed|lock held when returning'
SPLAT_RE+='|kmemleak: [0-9]+ new suspected memory leaks'
SPLAT_RE+='|blocked for more than [0-9]+ seconds|detected stalls? on CPU'    # hung task, RCU stall
SPLAT_RE+='|DMA-API: device driver has pending DMA'                         # dev_err, no WARN
SPLAT_RE+='|BUG [^ ]+ \((Not tainted|Tainted)'                               # SLUB debugging
SPLAT_RE+='|panicked at|Call Trace:'                                        # Rust panic, any trace

# Splats that are not qaic_rs's and are known: "ERE<TAB>ERE...<TAB>why". Every ERE must match a
# line of the splat block (headline and trace); keep them as narrow as the justification.
SPLAT_IGNORE=(
	# upstream rust/kernel/time/hrtimer.rs (not touched by kernel/patches): its doctests 1 and 2
	# pin an HrTimer on the stack, HrTimer::new calls hrtimer_setup() rather than
	# hrtimer_setup_on_stack(), so debug objects warns; seen only in the kunit-builtin run
	$'WARNING: lib/debugobjects.c:[0-9]+ at __debug_object_init\t^(\[ *[0-9.]+\])? +hrtimer_setup\+\t^(\[ *[0-9.]+\])? +rust_doctest_kernel_time_hrtimer_rs_[12]\+\tupstream Rust hrtimer doctest: HrTimer on the stack without debug-objects annotation'
	# upstream C qaic (drivers/accel/qaic/qaic_control.c): wrappers->lock is taken with plain
	# spin_lock() in the MHI UL transfer callback (free_wrapper_from_list, softirq) and in
	# process context (qaic_manage, msg_xfer) with softirqs on; only where qaic.ko is loaded
	# (65-rs-lifecycle coexist). Lockdep reports once per boot and is then off for that run.
	$'WARNING: inconsistent lock state\t\(&wrappers->lock\)\{[^}]*\}-\{[0-9]:[0-9]\}, at: [a-z_]+\+0x[0-9a-f]+/0x[0-9a-f]+ \[qaic\]$\t^(\[ *[0-9.]+\])? +free_wrapper_from_list\+0x[0-9a-f]+/0x[0-9a-f]+ \[qaic\]$\tupstream C qaic: wrappers->lock taken in softirq and with softirqs on (qaic_control.c)'
)

# Taint bits that mean something went wrong: M(4) B(5) D(7) W(9) L(14).
BAD_TAINT=$(((1 << 4) | (1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)))

write_epilogue() {
	cat >"$QAIC_GUEST_EPILOGUE" <<'EOF'
# check-debug epilogue (scripts/check-debug.sh), sourced by the guest after the test script
if [ -w /sys/kernel/debug/kmemleak ]; then
	# only objects older than 5 s are reported, and only after a second scan finds them unchanged
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	echo "QAIC-KMEMLEAK-BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "QAIC-KMEMLEAK-END"
else
	echo "QAIC-KMEMLEAK-NONE"
fi
echo "QAIC-TAINT: $(cat /proc/sys/kernel/tainted)"
EOF
}

# splat_blocks FILE: print every splat block of a guest console log: the headline and up to 150
# lines after it, to the end of the trace; blocks are separated by "@@@ <headline>" lines.
# Lines of the guest bench (QAIC-...) and the kmemleak report block are not kernel log lines.
splat_blocks() {
	# Two passes: the kernel log dump first (QAIC-DMESG-BEGIN..END: whole reports), then the
	# console, for what the dump lacks (a panic after it). On the console the test script's lines
	# interleave with a report and would cut it short; a headline seen in the dump is skipped
	# there with its trace.
	awk -v re="$SPLAT_RE" '
		FNR == 1 { pass++; indump = 0; skip = 0; n = 0 }
		/^QAIC-DMESG-BEGIN/ { indump = 1; n = 0; next }
		/^QAIC-DMESG-END/   { indump = 0; n = 0; next }
		(pass == 1) != indump { next }
		/^QAIC-KMEMLEAK-BEGIN/ { skip = 1; next }
		/^QAIC-KMEMLEAK-END/   { skip = 0; next }
		skip || /^QAIC-/ { n = 0; next }
		{ line = $0; body = line; sub(/^\[ *[0-9]+\.[0-9]+\] /, "", body) }
		# inside a block: a trace belongs to it, any other headline starts the next block
		n > 0 && (body !~ re || body ~ /^Call Trace:/) {
			print line; seen[line] = 1; n--
			if (body ~ /^---\[ end trace|^ *<\/TASK>|^====+$/) n = 0
			next
		}
		{ n = 0 }
		body ~ re {
			if (seen[line]++) next        # console and dmesg dump show the same line
			print "@@@ " line; n = 150
			if (body ~ /^kmemleak: /) n = 0      # one line; the report is in kmemleak.log
		}' "$1" "$1"
}

# attribute BLOCK DIR: the module a splat points at (the "Modules linked in:" list names every
# loaded module, so it does not count). Frames of a module unloaded before the report (kmemleak
# after rmmod) are raw addresses in module space (0xffffffffc0...): they are put down to the
# drivers the run loaded.
attribute() {
	local b mods
	b=$(grep -v 'Modules linked in:' <<<"$1")
	if grep -qE 'qaic_rs|_RN.*qaic' <<<"$b"; then echo qaic_rs
	elif grep -qE '\[qaic\]|qaic_[a-z_]+\+0x' <<<"$b"; then echo "qaic (C)"
	elif grep -qE '^ *0xffffffffc0[0-9a-f]{6}$' <<<"$b"; then
		mods=$(grep -oE '/(qaic|qaic_rs)\.ko$' "$2/initramfs.list" 2>/dev/null | tr -d / | sed 's/\.ko//' |
			sort | paste -sd/)
		echo "unloaded module: ${mods:-?}"
	else echo other; fi
}

# scan_run DIR NAME: record the splat, kmemleak and taint checks of one guest run
scan_run() {
	local dir=$1 name=$2 t blocks b head ign nbad=0 nign=0 taint verdict pat
	t="debug kernel: $name"
	[[ -f $dir/guest.log ]] || { record 0 1 "$t: guest log exists"; return 1; }
	awk '/^QAIC-KMEMLEAK-END/ { on = 0 } on { print } /^QAIC-KMEMLEAK-BEGIN/ { on = 1 }' \
		"$dir/guest.log" >"$dir/kmemleak.log"
	: >"$dir/splats.log"
	: >"$dir/splats-ignored.log"
	blocks=$(splat_blocks "$dir/guest.log")
	local -a list=()
	if [[ -n $blocks ]]; then
		mapfile -t list < <(awk '/^@@@ / { if (b != "") print b; b = $0; next } { b = b "\x1f" $0 }
			END { if (b != "") print b }' <<<"$blocks")
	fi
	for b in "${list[@]}"; do
		b=${b//$'\x1f'/$'\n'}
		head=${b%%$'\n'*}
		head=${head#@@@ }
		# a kmemleak headline: the report (objects and their allocation traces) is the block
		[[ $head == *kmemleak:* ]] && b+=$'\n'$(head -n 200 "$dir/kmemleak.log")
		ign=''
		for pat in "${SPLAT_IGNORE[@]}"; do
			local -a res=()
			IFS=$'\t' read -r -a res <<<"$pat"
			local k ok=1
			for ((k = 0; k < ${#res[@]} - 1; k++)); do
				grep -qE "${res[k]}" <<<"$b" || { ok=0; break; }
			done
			((ok)) && { ign=${res[-1]}; break; }
		done
		if [[ -n $ign ]]; then
			printf '%s\n(ignored: %s)\n\n' "$b" "$ign" >>"$dir/splats-ignored.log"
			nign=$((nign + 1))
		else
			printf '[%s] %s\n\n' "$(attribute "$b" "$dir")" "$b" >>"$dir/splats.log"
			echo "  [$(attribute "$b" "$dir")] $head" >>"$dir/splats.summary"
			nbad=$((nbad + 1))
		fi
	done
	if ((nbad)); then
		record 0 1 "$t: no kernel splats ($nbad; $dir/splats.log)"
	else
		record 1 0 "$t: no kernel splats$( ((nign == 0)) || echo " ($nign known, ignored)")"
	fi
	verdict=$(guest_verdict "$dir")
	if [[ $verdict != NONE ]]; then
		if grep -q '^QAIC-KMEMLEAK-BEGIN' "$dir/guest.log"; then
			record 1 0 "$t: kmemleak scan ran"
		else
			record 0 1 "$t: kmemleak scan ran"
		fi
	fi
	taint=$(sed -n 's/^QAIC-TAINT: \([0-9]*\).*/\1/p' "$dir/guest.log" | tail -n 1)
	if [[ -n $taint ]] && ((taint & BAD_TAINT)) && ((nbad + nign == 0)); then
		record 0 1 "$t: taint $taint explained by a splat in the log"
	fi
	((nbad == 0))
}

t0=$SECONDS
rc=0
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"
if ((SCAN_ONLY)); then
	rm -rf "$RESULTS"
	mkdir -p "$RESULTS"
else

# clang for KASAN with Rust (the test kernel is built with GCC)
apt_install_missing "clang-$LLVM_VER" "lld-$LLVM_VER" "llvm-$LLVM_VER" ||
	die "cannot install clang $LLVM_VER for the KASAN build"

rm -rf "$RESULTS" "$QAIC_RUNS"
mkdir -p "$RESULTS" "$QAIC_RUNS"
"$here/setup.sh" || die "setup failed"
write_epilogue

log "=== debug kernel build ($KBUILD)"
if "$here/build-kernel.sh" 2>&1 | tee "$RESULTS/build.log"; [[ ${PIPESTATUS[0]} == 0 ]]; then
	record 1 0 "debug kernel builds"
else
	record 0 1 "debug kernel builds"
	rc=1
fi

# 55-emu-tools without its C-driver half. The tools run in $QAIC_CACHE/runs here (QAIC_RUNS=""
# gives them their default) and the run dirs are copied over for the scan.
emu_tools_rs() {
	local tool name dir st=0
	for tool in probe faults; do
		name=emu-$tool-qaic_rs
		QAIC_RUNS="" EMU_TOOLS_MODULE=qaic_rs "$REPO/emulator/tools/run-emu-$tool.sh" || st=1
		dir=$(readlink -f "$QAIC_CACHE/runs/$name")
		rm -rf "${QAIC_RUNS:?}/$name"
		cp -a "$dir" "$QAIC_RUNS/$name"
		guest_record "$QAIC_RUNS/$name" "emulator $tool (qaic_rs)"
		guest_record_kernel_clean "$QAIC_RUNS/$name" "emulator $tool (qaic_rs)" || st=1
	done
	return "$st"
}

# the kernel's built-in KUnit suites (the patch series' Rust abstractions and doctests) once
kunit_builtin() {
	local dir
	QAIC_GUEST_CMDLINE=no5lvl guest_run --name kunit-builtin --timeout 300
	dir=$(guest_dir kunit-builtin)
	local ok nok
	sed 's/^\[ *[0-9.]*\] //' "$dir/dmesg.log" >"$dir/ktap-builtin.log"
	ok=$(grep -ac '^ *ok [0-9]' "$dir/ktap-builtin.log")
	nok=$(grep -ac '^ *not ok [0-9]' "$dir/ktap-builtin.log")
	if ((ok > 0 && nok == 0)); then
		record 1 0 "built-in KUnit suites pass on the debug kernel ($ok ok)"
	else
		record 0 1 "built-in KUnit suites pass on the debug kernel ($ok ok, $nok not ok)"
		return 1
	fi
}

for step in 00-kunit-builtin 20-smoke 40-runtime 45-fuzz 52-c-datapath 55-emu-tools 60-rs-boot \
	65-rs-lifecycle 70-lifecycle 75-hotunplug; do
	if (($#)); then
		sel=0
		for pat in "$@"; do [[ $step == *"$pat"* ]] && sel=1; done
		((sel)) || continue
	fi
	if [[ ! -f $KBUILD/arch/x86/boot/bzImage ]]; then
		record 0 1 "$step (no debug kernel)"
		rc=1
		continue
	fi
	case $step in
	55-emu-tools) cmd=(emu_tools_rs) ;;
	00-kunit-builtin) cmd=(kunit_builtin) ;;
	*) cmd=("$here/check.d/$step.sh") ;;
	esac
	run_check_step "$step" "$step (debug kernel)" "${cmd[@]}" || rc=1
done
fi # SCAN_ONLY

log "=== splat scan of $(find "$QAIC_RUNS" -mindepth 1 -maxdepth 1 -type l | wc -l) guest runs"
echo "Splats (attributed by the modules in their traces; details in each run's splats.log):"
nsplat=0
for link in "$QAIC_RUNS"/*; do
	[[ -L $link ]] || [[ -d $link && $link != *.?????? ]] || continue
	dir=$(readlink -f "$link")
	[[ -d $dir ]] || continue
	rm -f "$dir/splats.summary"
	if ! scan_run "$dir" "$(basename "$link")"; then
		rc=1
		nsplat=$((nsplat + 1))
		echo "$(basename "$link"): $dir/splats.log"
		cat "$dir/splats.summary"
	fi
	if [[ -s $dir/kmemleak.log ]]; then
		echo "$(basename "$link"): kmemleak report in $dir/kmemleak.log"
	fi
done
((nsplat)) || echo "  none"

check_summary "make check-debug" "$t0" "$rc"
