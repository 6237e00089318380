#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# setup.sh - install everything qaic-rs needs on a fresh Debian 12 machine of this kind.
#
# Idempotent: every step checks for its result first. Downloads and builds are cached under
# $QAIC_CACHE (default /var/tmp/qaic-rs); nothing from newer Debian suites is installed into the
# host system (kernel and rust-src packages are only downloaded and unpacked).
#
# Usage: scripts/setup.sh [host|sources|bindgen|chroot|deb|all]   (default: all but chroot and
#        deb; deb = what `make kernel-deb` needs: packaging tools and Debian's kernel config)
#        scripts/setup.sh env      print the environment for manual kernel builds
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

# Host packages (bookworm). libclang >= 17 is required by Linux 7.3's bindgen check:
# bookworm main carries llvm-toolchain-19.
HOST_PKGS=(build-essential flex bison bc cpio kmod libelf-dev libssl-dev python3 rsync git
	"libclang-$LLVM_VER-dev" busybox-static debootstrap xz-utils zstd ca-certificates
	qemu-system-x86)   # for kunit.py; the vfio-user guests use QEMU 11 from the chroot

step_host() {
	apt_install_missing "${HOST_PKGS[@]}"
	command -v cargo >/dev/null || die "cargo not found: a rustup toolchain (rustc $RUSTC_VER) is expected"
	local rv
	rv=$(rustc --version | awk '{print $2}')
	[[ $rv == "$RUSTC_VER" ]] || warn "rustc is $rv, the project is pinned to $RUSTC_VER"
}

# A private apt state for trixie + trixie-backports: used for `apt-get download` only.
aptx() {
	apt-get -q -o Dir::Etc::SourceList="$APTX/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APTX/lists" -o Dir::Cache="$APTX/cache" \
		-o Dir::State::Status=/dev/null "$@"
}
aptx_update() {
	[[ -n ${APTX_UPDATED:-} ]] && return
	mkdir -p "$APTX/lists/partial" "$APTX/cache/archives/partial"
	printf '%s\n' "deb $DEBIAN_MIRROR trixie main" \
		"deb $DEBIAN_MIRROR trixie-backports main" >"$APTX/sources.list"
	aptx update >/dev/null
	APTX_UPDATED=1
}

# fetch_deb PKG VERSION SHA256: download the pinned version into $QAIC_CACHE/dl, or, if the archive
# no longer has it, the newest version of the same package with a loud warning. Prints the path.
fetch_deb() {
	local pkg=$1 ver=$2 f
	f=$(compgen -G "$QAIC_CACHE/dl/${pkg}_${ver//:/%3a}_*.deb" | head -1 || true)
	if [[ -z $f ]]; then
		aptx_update
		mkdir -p "$QAIC_CACHE/dl"
		if ! (cd "$QAIC_CACHE/dl" && aptx download "$pkg=$ver" >&2); then
			local newest
			newest=$(aptx policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
			[[ -n $newest && $newest != "(none)" ]] || die "$pkg: no version available"
			warn "############################################################"
			warn "$pkg $ver is gone from the archive; FALLING BACK to $newest"
			warn "############################################################"
			(cd "$QAIC_CACHE/dl" && aptx download "$pkg=$newest" >&2)
			ver=$newest
		fi
		f=$(compgen -G "$QAIC_CACHE/dl/${pkg}_${ver//:/%3a}_*.deb" | head -1)
	fi
	if [[ $f == *"_${2//:/%3a}_"* ]]; then
		echo "$3  $f" | sha256sum -c --quiet >&2 || die "$f: SHA-256 mismatch"
	else
		warn "$f: not the pinned version, hash not checked"
	fi
	echo "$f"
}

step_sources() {
	if [[ ! -f $KSRC/Makefile ]]; then
		local deb tmp
		deb=$(fetch_deb linux-source-7.3 "$KERNEL_DEB_VER" "$KERNEL_DEB_SHA256")
		log "unpacking $(basename "$deb")"
		tmp=$(mktemp -d "$QAIC_CACHE/ksrc.XXXX")
		dpkg-deb -x "$deb" "$tmp"
		tar -C "$tmp" -xf "$tmp/usr/src/linux-source-7.3.tar.xz"
		rm -rf "$KSRC"
		mv "$tmp/linux-source-7.3" "$KSRC"
		rm -rf "$tmp"
	fi
	if [[ ! -f $RUST_LIB_SRC/core/src/lib.rs ]]; then
		local deb
		deb=$(fetch_deb rust-src "$RUST_SRC_DEB_VER" "$RUST_SRC_DEB_SHA256")
		rm -rf "$QAIC_CACHE/rustsrc"
		dpkg-deb -x "$deb" "$QAIC_CACHE/rustsrc"
	fi
}

# Debian's configuration of the same kernel (linux-config-7.3), the base of `make kernel-deb`
step_debconfig() {
	[[ -f $DEBIAN_CONFIG ]] && return
	local deb tmp
	deb=$(fetch_deb linux-config-7.3 "$KERNEL_DEB_VER" "$KERNEL_CONFIG_DEB_SHA256")
	tmp=$(mktemp -d "$QAIC_CACHE/debconfig.XXXX")
	dpkg-deb -x "$deb" "$tmp"
	mkdir -p "$(dirname "$DEBIAN_CONFIG")"
	xz -dc "$tmp/usr/src/linux-config-7.3/$(basename "$DEBIAN_CONFIG").xz" >"$DEBIAN_CONFIG.tmp"
	mv "$DEBIAN_CONFIG.tmp" "$DEBIAN_CONFIG"
	rm -rf "$tmp"
}

# What the kernel's bindeb-pkg flow needs beyond the host packages (dpkg-buildpackage checks
# the generated debian/control's build dependencies)
DEB_PKGS=(dpkg-dev debhelper fakeroot libdw-dev)
step_deb() {
	apt_install_missing "${DEB_PKGS[@]}"
	step_debconfig
}

step_bindgen() {
	"$BINDGEN_ROOT/bin/bindgen" --version 2>/dev/null | grep -q "bindgen $BINDGEN_VER" && return
	log "cargo install bindgen-cli $BINDGEN_VER (about 1.5 min)"
	cargo install -q --locked --version "$BINDGEN_VER" --root "$BINDGEN_ROOT" bindgen-cli
}

# A trixie chroot with QEMU >= 10.1 (vfio-user-pci) from trixie-backports; bookworm's 7.2 lacks it.
step_chroot() {
	if [[ ! -x $CHROOT/usr/bin/qemu-system-x86_64 ]]; then
		log "debootstrap trixie + QEMU $QEMU_VER into $CHROOT (about 40 s)"
		rm -rf "$CHROOT"
		debootstrap --variant=minbase trixie "$CHROOT" "$DEBIAN_MIRROR" >/dev/null
		echo "deb $DEBIAN_MIRROR trixie-backports main" >"$CHROOT/etc/apt/sources.list.d/backports.list"
		cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
		chroot "$CHROOT" apt-get -q update >/dev/null
		if ! chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "qemu-system-x86=$QEMU_VER" >/dev/null; then
			warn "############################################################"
			warn "qemu-system-x86 $QEMU_VER is gone; FALLING BACK to trixie-backports' newest"
			warn "############################################################"
			chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				--no-install-recommends -t trixie-backports qemu-system-x86 >/dev/null
		fi
	fi
	# udevadm verify and systemd-sysusers (systemd 257) for 80-deploy's checks of deploy/
	if [[ ! -x $CHROOT/usr/bin/udevadm ]]; then
		log "installing udev into $CHROOT (udevadm verify for 80-deploy)"
		chroot "$CHROOT" apt-get -q update >/dev/null
		chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends udev >/dev/null
	fi
	chroot "$CHROOT" qemu-system-x86_64 --version | head -1
}

case ${1:-all} in
host) step_host ;;
sources) step_sources ;;
bindgen) step_bindgen ;;
chroot) step_host; step_chroot ;;
deb) step_host; step_sources; step_bindgen; step_deb ;;
all) step_host; step_sources; step_bindgen ;;
env) kernel_env; declare -p PATH LIBCLANG_PATH RUST_LIB_SRC | sed 's/^declare -x /export /' ;;
*) die "usage: $0 [host|sources|bindgen|chroot|deb|all|env]" ;;
esac
