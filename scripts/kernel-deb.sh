#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kernel-deb.sh - `make kernel-deb`: installable Debian packages of the pinned Linux 7.3 with the
# qaic-rs patch series, qaic_rs and the upstream C qaic as modules, configured from Debian's own
# configuration of that kernel (linux-config-7.3, amd64) plus kernel/configs/debian-server.config.
#
# What is packaged is a committed state: the kernel tree is a git worktree of the test kernel's
# work tree (same series), and the driver is `git archive HEAD` of this repository, never the
# files being edited (a dirty work tree is reported and left out). Both are updated in place
# with content comparison, so a re-run after a small change rebuilds only what changed.
#
# Steps: setup (packaging tools, Debian's config), the series applied (build-kernel.sh tree),
# the packaging tree and driver snapshot, the config (Debian + fragment, every line of the
# fragment checked to have survived olddefconfig), `make bindeb-pkg`, the packages listed.
#
# Usage: scripts/kernel-deb.sh [build|config|list|bench]   (default build; bench: unpack the
#        packages for the bench, QAIC_KERNEL=deb, used by scripts/check-deb.sh)
# Environment: JOBS (default nproc), KDEB_NICE (default 10: the build yields to test guests).
# Output: $KDEB/*.deb (linux-image-*, linux-headers-*, linux-libc-dev_*), $KDEB/build.log,
# $KDEB/packages (the list of the last build, with its kernel release and commit).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

KD_SRC=$KDEB/linux            # git worktree of $WORKTREE, the driver snapshot inside
KD_BUILD=$KDEB/build          # make O=; bindeb-pkg writes the packages to its parent, $KDEB
FRAGMENT=$REPO/kernel/configs/debian-server.config
LOCALVERSION=-qaic-rs   # CONFIG_LOCALVERSION; make LOCALVERSION= (empty) keeps setlocalversion from adding "+" for the git tree

# The linux work tree at the series, and the driver at HEAD of this repository
prepare_tree() {
	"$here/build-kernel.sh" tree
	local commit
	commit=$(git -C "$WORKTREE" rev-parse HEAD)
	if [[ ! -e $KD_SRC/.git ]]; then
		log "creating the packaging tree $KD_SRC (git worktree, about 2 min)"
		rm -rf "$KD_SRC"
		mkdir -p "$KDEB"
		git -C "$WORKTREE" worktree prune
		git -C "$WORKTREE" worktree add -q --detach "$KD_SRC" "$commit"
	elif [[ $(git -C "$KD_SRC" rev-parse HEAD) != "$commit" ]]; then
		# only files whose content differs are rewritten, so make rebuilds just those
		git -C "$KD_SRC" checkout -q --detach "$commit"
	fi
	if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no) ]]; then
		warn "$REPO has uncommitted changes: the packages are built from HEAD without them"
	fi
	local snap
	snap=$(mktemp -d "$KDEB/driver.XXXX")
	git -C "$REPO" archive HEAD -- Kconfig Makefile ':(glob)*.rs' uapi LICENSE | tar -C "$snap" -x
	mkdir -p "$KD_SRC/drivers/accel/qaic_rs"
	rsync -rc --delete "$snap/" "$KD_SRC/drivers/accel/qaic_rs/"
	rm -rf "$snap"
	DRIVER_COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD)
}

configure() {
	[[ -f $DEBIAN_CONFIG ]] || die "no Debian config at $DEBIAN_CONFIG: run scripts/setup.sh deb"
	mkdir -p "$KD_BUILD"
	local new=$KD_BUILD/.config.new
	cp "$DEBIAN_CONFIG" "$new"
	printf 'CONFIG_LOCALVERSION="%s"\n' "$LOCALVERSION" >>"$new"
	(cd "$KD_SRC" && KCONFIG_CONFIG=$new scripts/kconfig/merge_config.sh -m -O "$KD_BUILD" \
		"$new" "$FRAGMENT" >"$KD_BUILD/merge.log" 2>&1) || die "merge_config failed: $KD_BUILD/merge.log"
	# olddefconfig on the candidate; keep .config's mtime when nothing changed
	(cd "$KD_SRC" && make -s O="$KD_BUILD" KCONFIG_CONFIG="$new" olddefconfig) >>"$KD_BUILD/merge.log" 2>&1 ||
		die "olddefconfig failed: $KD_BUILD/merge.log"
	local line sym bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]}
			if grep -q "^$sym=" "$new"; then
				warn "$FRAGMENT: $sym is still set: $(grep "^$sym=" "$new")"
				bad=1
			fi
		elif [[ $line =~ ^CONFIG_ ]]; then
			grep -qxF "$line" "$new" || { warn "$FRAGMENT: $line did not survive olddefconfig"; bad=1; }
		fi
	done <"$FRAGMENT"
	((bad == 0)) || die "the Debian config and $FRAGMENT disagree (Kconfig dependencies); see above"
	if ! cmp -s "$new" "$KD_BUILD/.config"; then
		mv "$new" "$KD_BUILD/.config"
	else
		rm -f "$new"
	fi
	log "config: Debian $(basename "$DEBIAN_CONFIG") + $(basename "$FRAGMENT"):" \
		"$(grep -c '=m$' "$KD_BUILD/.config") modules, $(grep -c '=y$' "$KD_BUILD/.config") built-in options"
}

build() {
	local kver release pkgver t0=$SECONDS
	kver=$(make -s -C "$KD_SRC" kernelversion)
	release=$kver$LOCALVERSION   # checked against include/config/kernel.release after the build
	# monotonic with the history of this repository (apt upgrades, never sees a downgrade)
	pkgver="$kver-1+qaicrs$(git -C "$REPO" rev-list --count HEAD).g$DRIVER_COMMIT"
	log "make bindeb-pkg: $release, package version $pkgver, $JOBS jobs at nice $KDEB_NICE" \
		"(cold: see Documentation/operator.rst; log: $KDEB/build.log)"
	rm -f "$KDEB"/*.deb "$KDEB"/*.buildinfo "$KDEB"/*.changes
	if ! (cd "$KD_SRC" && nice -n "$KDEB_NICE" make O="$KD_BUILD" -j"$JOBS" LOCALVERSION= \
		KDEB_PKGVERSION="$pkgver" bindeb-pkg) >"$KDEB/build.log" 2>&1; then
		tail -40 "$KDEB/build.log" >&2
		die "make bindeb-pkg failed (full log: $KDEB/build.log)"
	fi
	local built
	built=$(cat "$KD_BUILD/include/config/kernel.release")
	[[ $built == "$release" ]] || die "built kernel release $built, expected $release"
	{
		echo "release=$release"
		echo "version=$pkgver"
		echo "commit=$(git -C "$REPO" rev-parse HEAD)"
		echo "seconds=$((SECONDS - t0))"
		(cd "$KDEB" && ls -1 -- *.deb)
	} >"$KDEB/packages"
	log "packages built in $((SECONDS - t0)) s in $KDEB:"
	(cd "$KDEB" && ls -lh -- *.deb) >&2
}

# The bench's view of the packages (QAIC_KERNEL=deb in scripts/lib.sh): the linux-image package
# unpacked as dpkg would install it, then laid out like a build dir: its vmlinuz as
# arch/x86/boot/bzImage, every module decompressed at its source path (kernel/drivers/... ->
# drivers/...), modules.builtin* and modules.order beside. The files are the packaged ones.
bench() {
	local image release root
	[[ -f $KDEB/packages ]] || die "no packages: run make kernel-deb first"
	release=$(sed -n 's/^release=//p' "$KDEB/packages")
	image=$(compgen -G "$KDEB/linux-image-${release}_*.deb" | head -1)
	[[ -n $image ]] || die "no linux-image-$release package in $KDEB"
	if deb_bench_current; then
		log "bench tree $KDEB/bench is up to date with $(basename "$image")"
		return
	fi
	log "unpacking $(basename "$image") for the bench"
	rm -rf "$KDEB/bench" "$KDEB/bench.tmp"
	root=$KDEB/bench.tmp/root
	mkdir -p "$root"
	dpkg-deb -x "$image" "$root"
	local b=$KDEB/bench.tmp/tree m=$root/lib/modules/$release
	[[ -f $root/boot/vmlinuz-$release ]] || die "$(basename "$image") has no boot/vmlinuz-$release"
	mkdir -p "$b/arch/x86/boot"
	cp "$root/boot/vmlinuz-$release" "$b/arch/x86/boot/bzImage"
	cp "$root/boot/config-$release" "$b/.config"
	(cd "$m/kernel" && find . -name '*.ko*' -print0 | cpio -0 -pdm --quiet "$b")
	find "$b" -name '*.ko.xz' -print0 | xargs -0 -r -n 64 -P "$JOBS" xz -d
	find "$b" -name '*.ko.zst' -print0 | xargs -0 -r -n 64 -P "$JOBS" zstd -q -d --rm
	cp "$m"/modules.{builtin,builtin.modinfo,order} "$b/"
	sed -i 's/\.ko\.\(xz\|zst\|gz\)$/.ko/' "$b/modules.order"
	[[ -f $b/drivers/accel/qaic_rs/qaic_rs.ko && -f $b/drivers/accel/qaic/qaic.ko ]] ||
		die "$(basename "$image") lacks qaic_rs.ko or qaic.ko"
	sha256sum "$image" >"$b/.from"
	mv "$b" "$KDEB/bench"
	rm -rf "$KDEB/bench.tmp"
	log "bench tree: $KDEB/bench ($(find "$KDEB/bench" -name '*.ko' | wc -l) modules, release $release)"
}

KDEB_NICE=${KDEB_NICE:-10}
kernel_env     # rustc, bindgen and libclang: without them Kconfig silently drops CONFIG_RUST
mkdir -p "$KDEB"
exec 7>"$KDEB/lock"
flock -n 7 || die "another kernel-deb build is running ($KDEB/lock)"

case ${1:-build} in
build)
	"$here/setup.sh" deb
	prepare_tree
	configure
	build
	;;
config) prepare_tree; configure ;;
list) cat "$KDEB/packages" ;;
bench) bench ;;
*) die "usage: $0 [build|config|list|bench]" ;;
esac
