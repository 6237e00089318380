#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build-kernel.sh - the one qaic-rs test kernel: pristine Linux 7.3 + kernel/patches, with this
# repository linked in as drivers/accel/qaic_rs, configured from kernel/configs/qaic-qemu.config
# and built with kunit.py into $KBUILD. Incremental: only what changed is rebuilt.
# QAIC_KERNEL=debug builds the debug kernel instead (scripts/lib.sh: its own build dir and lock,
# kernel/configs/qaic-debug.config on top, clang) from the same work tree.
#
# The work tree is a git repository whose first commit is the pristine source. When the patch
# series changes it is reset to that commit and the series is re-applied with `git am`, so every
# file a patch touches (or stops touching) gets a new mtime and make rebuilds exactly those.
#
# Usage: scripts/build-kernel.sh [build]   apply the series if needed, configure, build
#        scripts/build-kernel.sh tree      only prepare the work tree
#        scripts/build-kernel.sh export    write the work tree's commits after `base` back to
#                                          kernel/patches (developer loop for the patch series)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

GIT=(git -C "$WORKTREE" -c user.name=qaic-rs -c user.email=qaic-rs@localhost
	-c core.autocrlf=false -c gc.auto=0)

series_hash() {
	cat "$REPO"/kernel/patches/*.patch | sha256sum | cut -d' ' -f1
}

make_tree() {
	[[ -f $KSRC/Makefile ]] || die "no kernel source at $KSRC: run scripts/setup.sh first"
	if ! "${GIT[@]}" rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
		log "creating the kernel work tree $WORKTREE (copy + git, about 2 min)"
		rm -rf "$WORKTREE" "$WORKTREE.tmp"
		cp -a "$KSRC" "$WORKTREE.tmp"
		mv "$WORKTREE.tmp" "$WORKTREE"
		"${GIT[@]}" init -q
		"${GIT[@]}" add -f -A .   # Debian's .gitignore ignores the top level
		"${GIT[@]}" commit -q -m "Linux $(make -s -C "$KSRC" kernelversion) (Debian linux-source-7.3 $KERNEL_DEB_VER)"
		"${GIT[@]}" tag base
	fi
	local want have
	want=$(series_hash)
	have=$(cat "$WORKTREE/.git/qaic-series" 2>/dev/null || true)
	if [[ $want != "$have" ]]; then
		log "applying kernel/patches ($(ls "$REPO"/kernel/patches/*.patch | wc -l) patches)"
		"${GIT[@]}" am --abort >/dev/null 2>&1 || true
		"${GIT[@]}" reset -q --hard base
		"${GIT[@]}" am -q --whitespace=nowarn "$REPO"/kernel/patches/*.patch ||
			die "kernel/patches does not apply to the kernel source in $KSRC"
		echo "$want" >"$WORKTREE/.git/qaic-series"
	fi
	# The driver is this repository itself (its Makefile is also a Kbuild makefile).
	ln -sfn "$REPO" "$WORKTREE/drivers/accel/qaic_rs"
	grep -qx 'drivers/accel/qaic_rs' "$WORKTREE/.git/info/exclude" 2>/dev/null ||
		echo 'drivers/accel/qaic_rs' >>"$WORKTREE/.git/info/exclude"
}

kunit_py() {
	local c a=()
	for c in "${KCONFIGS[@]}"; do a+=(--kunitconfig="$REPO/kernel/configs/$c"); done
	for c in "${KMAKE_OPTS[@]}"; do a+=(--make_options="$c"); done
	(cd "$WORKTREE" && ./tools/testing/kunit/kunit.py "$@" --arch=x86_64 \
		--build_dir="$KBUILD" "${a[@]}")
}

build() {
	make_tree
	if [[ $KBUILD_LOCK != "$QAIC_CACHE/kbuild.lock" ]]; then
		# another build dir: hold its own lock while building, let go of the work tree's
		exec 8>"$KBUILD_LOCK"
		flock 8
		flock -u 9
	fi
	kernel_env
	mkdir -p "$KBUILD"
	log "building the kernel in $KBUILD (cold: about 8 min on 2 cores; incremental: seconds)"
	local t0=$SECONDS
	kunit_py build --jobs="$JOBS" >"$KBUILD/build.log" 2>&1 || {
		tail -40 "$KBUILD/build.log" >&2
		die "kernel build failed (full log: $KBUILD/build.log)"
	}
	grep -E '^(warning|error)' "$KBUILD/build.log" >&2 || true
	log "kernel built in $((SECONDS - t0)) s: $KBUILD/arch/x86/boot/bzImage"
}

export_series() {
	rm -f "$REPO"/kernel/patches/*.patch
	"${GIT[@]}" format-patch -q --no-signature --zero-commit -N -o "$REPO/kernel/patches" base..HEAD
	series_hash >"$WORKTREE/.git/qaic-series"
	ls "$REPO"/kernel/patches
}

# One build at a time: check steps, the demo and developers share the tree and the build dir.
# (A debug build holds this lock only while it prepares the work tree, then $KBUILD_LOCK.)
mkdir -p "$QAIC_CACHE"
exec 9>"$QAIC_CACHE/kbuild.lock"
flock 9

case ${1:-build} in
build) build ;;
tree) make_tree ;;
export) export_series ;;
*) die "usage: $0 [build|tree|export]" ;;
esac
