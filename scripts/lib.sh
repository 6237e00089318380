# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# lib.sh - pinned versions, cache locations and helpers shared by the qaic-rs scripts.
# Sourced, never executed.

# shellcheck disable=SC2034  # variables are used by the scripts that source this file

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QAIC_CACHE=${QAIC_CACHE:-/var/tmp/qaic-rs}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# ---- pins -------------------------------------------------------------------------------------
KERNEL_DEB_VER=7.3.4-1~bpo13+1
KERNEL_DEB_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
KERNEL_CONFIG_DEB_SHA256=1161d8946bd74094857fc1950da809a14e1b3aafe4f3defbec83150520e3e82c  # linux-config-7.3, same version
RUST_SRC_DEB_VER=1.95.0+dfsg1-2~bpo13+1
RUST_SRC_DEB_SHA256=7b76db5b880a77f9e52975d2baa6209d2f76d2c9c2789515c3088cb960e2c83b
RUSTC_VER=1.95.0
BINDGEN_VER=0.73.2
LLVM_VER=19
QEMU_VER=1:11.1.3+ds-1~bpo13+1

# ---- locations --------------------------------------------------------------------------------
APTX=$QAIC_CACHE/aptx                       # private apt state (trixie downloads only)
KSRC=$QAIC_CACHE/linux-7.3                  # pristine kernel source, never modified
WORKTREE=$QAIC_CACHE/linux-qaic             # git copy of $KSRC with kernel/patches applied
# The kernel build: QAIC_KERNEL=test (default) is the one test kernel in $QAIC_CACHE/kbuild;
# QAIC_KERNEL=debug the debug kernel of `make check-debug` (kernel/configs/qaic-debug.config on
# top of the test config, KASAN, lockdep, kmemleak...; built with clang) in its own build dir,
# from the same work tree. Every script that sources this file then uses that build.
case ${QAIC_KERNEL:-test} in
test)
	KBUILD=$QAIC_CACHE/kbuild                   # make O=
	KCONFIGS=(qaic-qemu.config)                 # kernel/configs/, merged in this order
	KMAKE_OPTS=()                               # extra make variables (GCC build)
	KBUILD_LOCK=$QAIC_CACHE/kbuild.lock         # held exclusively while it is built
	;;
debug)
	KBUILD=$QAIC_CACHE/kbuild-debug
	KCONFIGS=(qaic-qemu.config qaic-debug.config)
	KMAKE_OPTS=("LLVM=-$LLVM_VER")              # KASAN with Rust needs clang
	KBUILD_LOCK=$QAIC_CACHE/kbuild-debug.lock
	;;
deb)
	# the packaged kernel of `make kernel-deb`, unpacked by `scripts/kernel-deb.sh bench` into a
	# build-dir-like tree (arch/x86/boot/bzImage, the modules at their source paths) for the bench
	KBUILD=$QAIC_CACHE/kernel-deb/bench
	KCONFIGS=()
	KMAKE_OPTS=()
	KBUILD_LOCK=$QAIC_CACHE/kernel-deb/bench.lock
	;;
*) printf 'ERROR: QAIC_KERNEL must be test, debug or deb\n' >&2; exit 1 ;;
esac
KDEB=$QAIC_CACHE/kernel-deb               # `make kernel-deb`: work tree, build dir, packages
DEBIAN_CONFIG=$QAIC_CACHE/debian-config/config.amd64_none_amd64   # Debian's own kernel config
RUST_LIB_SRC=${RUST_LIB_SRC:-$QAIC_CACHE/rustsrc/usr/lib/rustlib/src/rust/library}
BINDGEN_ROOT=$QAIC_CACHE/tools/bindgen-$BINDGEN_VER
CHROOT=$QAIC_CACHE/trixie-root              # QEMU >= 10.1 for vfio-user
RESULTS=${RESULTS:-$QAIC_CACHE/results}     # per-run test verdicts (see record_*)
JOBS=${JOBS:-$(nproc)}

# ---- helpers ----------------------------------------------------------------------------------

# check_summary WHAT T0 RC: the results of $RESULTS/counts by check, the time since T0 and the
# closing "N passed, N failed" line; returns non-zero if RC is or anything failed
check_summary() {
	local passed failed
	echo
	echo "Results by check:"
	awk '{ printf "  %-70s %5d passed %5d failed\n", substr($0, index($0, $3)), $1, $2 }' "$RESULTS/counts"
	read -r passed failed < <(awk '{ p += $1; f += $2 } END { print p + 0, f + 0 }' "$RESULTS/counts")
	log "$1 took $((SECONDS - $2)) s (without setup)"
	echo "${passed:-0} passed, ${failed:-0} failed"
	((failed == 0 && $3 == 0))
}

# run_check_step NAME TITLE CMD...: run one test step (make check, check-debug, check-deb): its
# output to the terminal and to $RESULTS/NAME.log; a step that fails without recording a failure
# of its own counts as one failed test. Returns the step's status.
run_check_step() {
	local name=$1 title=$2 before src ts=$SECONDS
	shift 2
	log "=== $title"
	before=$(wc -l 2>/dev/null <"$RESULTS/counts" || echo 0)
	"$@" 2>&1 | tee "$RESULTS/$name.log"
	src=${PIPESTATUS[0]}
	if ((src != 0)); then
		awk -v b="$before" 'NR > b && $2 > 0 { f = 1 } END { exit !f }' "$RESULTS/counts" 2>/dev/null ||
			record 0 1 "$name (exit status $src)"
	fi
	log "=== $name: exit $src after $((SECONDS - ts)) s"
	return "$src"
}

# apt_install_missing PKG...: apt-get install those of the packages that are not installed
apt_install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "apt-get install ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The runtime's binaries for the busybox guests (qaic, qaic-fuzz), linked statically:
# runtime_static_build [CARGO-BUILD-ARGS...] (e.g. -p qaic-cli, --example NAME; none: the
# workspace's default members) builds into $RUNTIME_BIN; cargo's output goes to stderr, the
# status is cargo's.
RUNTIME_TRIPLE=x86_64-unknown-linux-gnu
RUNTIME_BIN=$QAIC_CACHE/target-runtime/$RUNTIME_TRIPLE/release
runtime_static_build() {
	(cd "$REPO/runtime" && CARGO_TARGET_DIR=$QAIC_CACHE/target-runtime \
		RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --locked -j "$JOBS" --release \
		--target "$RUNTIME_TRIPLE" "$@") >&2
}
log() { printf '\033[1m[%(%H:%M:%S)T] %s\033[0m\n' -1 "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Whether the bench tree of QAIC_KERNEL=deb ($KDEB/bench) was unpacked from the linux-image
# package of the last `make kernel-deb`: a guest booted from a stale tree would measure the
# driver of an older commit without a word.
deb_bench_current() {
	local release image
	release=$(sed -n 's/^release=//p' "$KDEB/packages" 2>/dev/null)
	image=$(compgen -G "$KDEB/linux-image-${release}_*.deb" | head -1)
	[[ -n $release && -n $image && -f $KDEB/bench/.from ]] &&
		[[ $(cat "$KDEB/bench/.from") == "$(sha256sum "$image")" ]]
}

kernel_env() {
	export PATH="$BINDGEN_ROOT/bin:$PATH"
	export LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VER/lib
	export RUST_LIB_SRC
}

# The machine's /dev/kvm may be kvm_pvm, which cannot boot a stock kernel: use TCG there.
qemu_accel() {
	case ${QAIC_ACCEL:-auto} in
	tcg | kvm) echo "$QAIC_ACCEL" ;;
	auto)
		if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] &&
			grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then echo kvm; else echo tcg; fi
		;;
	*) die "QAIC_ACCEL must be auto, kvm or tcg" ;;
	esac
}

# Test verdict bookkeeping: every test step records "<pass> <fail> <name>" lines into
# $RESULTS/counts; scripts/summary.sh adds them up into the closing "N passed, N failed" line.
record() { # record PASSED FAILED NAME
	mkdir -p "$RESULTS"
	printf '%d %d %s\n' "$1" "$2" "$3" >>"$RESULTS/counts"
}

# record_cargo LOG NAME: add up the "test result: ... N passed; M failed" lines of a cargo test log.
record_cargo() {
	local p f
	read -r p f < <(awk '/^test result:/ {
		for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
	} END { print p+0, f+0 }' "$1")
	record "$p" "$f" "$2"
}

# record_ktap LOG NAME: count the "ok N name" / "not ok N name" lines of every KTAP (sub)test
# inside the suites of a KUnit run; suites themselves are not counted twice.
record_ktap() {
	local p f
	read -r p f < <(awk '
		/^[[:space:]]+ok [0-9]+ /                   { p++ }
		/^[[:space:]]+not ok [0-9]+ /                { f++ }
		END { print p+0, f+0 }' "$1")
	record "$p" "$f" "$2"
}
