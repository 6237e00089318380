#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 80-deploy.sh - the files of deploy/ that set up a real host (Documentation/operator.rst):
#   udev-verify        `udevadm verify` (systemd 257, trixie chroot) accepts the rules file
#   sysusers-group     systemd-sysusers creates from deploy/sysusers.d the group the rule names
#   kmod-*             host kmod on a depmod'd tree of qaic and qaic_rs: the card's modalias
#                      resolves to both modules without deploy/modprobe.d, to qaic_rs alone with
#                      it; `modprobe qaic` by name still resolves to qaic
#   install-*          deploy/install.sh --root into a scratch root, with systemd-sysusers and
#                      with groupadd only: files, modes, group, user, firmware
#   docs-firmware      the firmware files Documentation/operator.rst lists are those modinfo lists
#   guest (tests/guest/deploy.sh, 1 card): autoload by PCI alias through a uevent helper with and
#                      without the modprobe.d file, the udev rule evaluated and applied, a user in
#                      the group runs a verified `qaic run`, one outside gets EACCES
# The chroot gets the udev package (systemd 257) on first use, under the chroot lock.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/guest.sh
. "$here/guest.sh"

D=$REPO/deploy
RULES=$D/udev/70-qaic-accel.rules
MODCONF=$D/modprobe.d/qaic-rs.conf
rs_ko=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko
c_ko=$KBUILD/drivers/accel/qaic/qaic.ko

tmp=$(mktemp -d) || die "mktemp failed"
ctmp=
# shellcheck disable=SC2317  # runs from the trap
cleanup() {
	rm -rf "$tmp"
	[[ -n $ctmp ]] && rm -rf "${CHROOT:?}$ctmp"
}
trap cleanup EXIT
rc=0

# result OK NAME: record a test by an exit status
result() {
	if (($1 == 0)); then record 1 0 "deploy: $2"; else record 0 1 "deploy: $2"; rc=1; fi
}

# in_chroot CMD...: run CMD in the trixie chroot (with /proc for systemd's tools)
in_chroot() {
	# shellcheck disable=SC2016  # expanded by the inner shell
	unshare -m --propagation private sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' \
		- "$CHROOT" "$CHROOT" "$@"
}

# the udev package (udevadm verify, systemd-sysusers 257) in the chroot
if [[ ! -x $CHROOT/usr/bin/udevadm ]]; then
	[[ -x $CHROOT/usr/bin/qemu-system-x86_64 ]] ||
		flock "$QAIC_CACHE/chroot.lock" "$REPO/scripts/setup.sh" chroot >&2
	log "installing udev (systemd 257) into the chroot for udevadm verify"
	flock "$QAIC_CACHE/chroot.lock" chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends udev >"$tmp/apt.log" 2>&1 ||
		{ flock "$QAIC_CACHE/chroot.lock" chroot "$CHROOT" apt-get -q update >/dev/null &&
			flock "$QAIC_CACHE/chroot.lock" chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q --no-install-recommends udev >"$tmp/apt.log" 2>&1; } ||
		{ tail -n 5 "$tmp/apt.log"; warn "udev could not be installed into the chroot"; }
fi
ctmp=$(mktemp -d -p "$CHROOT/tmp" deploy.XXXXXX) || die "mktemp in the chroot failed"
ctmp=${ctmp#"$CHROOT"}
cp -a "$D" "$CHROOT$ctmp/deploy"

# ---- udev rule ------------------------------------------------------------------------------
log "udevadm verify $RULES"
in_chroot udevadm verify --resolve-names=never "$ctmp/deploy/udev/70-qaic-accel.rules"
result $? "udev-verify (udevadm $(chroot "$CHROOT" udevadm --version 2>/dev/null || echo missing))"

# the verifier must be able to fail: a rule with an unknown key
printf 'SUBSYSTEM=="accel", GRUOP="qaic"\n' >"$CHROOT$ctmp/bad.rules"
! in_chroot udevadm verify --resolve-names=never "$ctmp/bad.rules" >/dev/null 2>&1
result $? "udev-verify rejects a broken rule"

# ---- sysusers: the group the rule names -----------------------------------------------------
group=$(sed -n 's/.*GROUP="\([^"]*\)".*/\1/p' "$RULES" | head -n 1)
mkdir -p "$CHROOT$ctmp/sysroot/etc"
in_chroot systemd-sysusers --root="$ctmp/sysroot" "$ctmp/deploy/sysusers.d/qaic.conf" &&
	grep -E "^$group:x:[0-9]+:" "$CHROOT$ctmp/sysroot/etc/group"
result $? "sysusers-group: systemd-sysusers creates group '$group' (the rule's GROUP)"

# ---- kmod: which module the card's modalias loads -------------------------------------------
kver=$(modinfo -F vermagic "$rs_ko" 2>/dev/null | cut -d' ' -f1)
if [[ -f $rs_ko && -f $c_ko && -n $kver ]]; then
	mroot=$tmp/modroot
	mkdir -p "$mroot/lib/modules/$kver/extra" "$tmp/noconf" "$tmp/conf"
	cp "$rs_ko" "$c_ko" "$mroot/lib/modules/$kver/extra/"
	cp "$KBUILD"/modules.{builtin,builtin.modinfo,order} "$mroot/lib/modules/$kver/" 2>/dev/null
	depmod -b "$mroot" "$kver"
	cp "$MODCONF" "$tmp/conf/"
	# resolve CONFDIR NAME: the modules `modprobe NAME` would insert, by name, sorted
	resolve() {
		modprobe -d "$mroot" -S "$kver" -C "$1" --show-depends "$2" 2>&1 |
			sed -n 's|^insmod .*/\([^/]*\)\.ko.*|\1|p' | sort | tr '\n' ' '
	}
	for dev in a100 a080; do
		alias=pci:v000017CBd0000${dev^^}sv000017CBsd0000${dev^^}bc12sc00i00
		got=$(resolve "$tmp/noconf" "$alias")
		[[ $got == "qaic qaic_rs " ]]
		result $? "kmod-$dev without modprobe.d: both drivers load (got: ${got:-nothing})"
		got=$(resolve "$tmp/conf" "$alias")
		[[ $got == "qaic_rs " ]]
		result $? "kmod-$dev with deploy/modprobe.d: qaic_rs alone (got: ${got:-nothing})"
	done
	got=$(resolve "$tmp/conf" qaic)
	[[ $got == "qaic " ]]
	result $? "kmod by name with deploy/modprobe.d: qaic still loads (got: ${got:-nothing})"
else
	record 0 1 "deploy: kmod (qaic_rs.ko and qaic.ko built)"
	rc=1
fi

# ---- install.sh -----------------------------------------------------------------------------
g_build_emulator
"$AIC100_EMU" gen-firmware --out "$tmp/fw" >"$tmp/gen.log" 2>&1 || cat "$tmp/gen.log"
# check_root ROOT WAY: what install.sh left in ROOT
check_root() {
	local r=$1 bad=0 f
	for f in etc/udev/rules.d/70-qaic-accel.rules etc/sysusers.d/qaic.conf etc/modprobe.d/qaic-rs.conf; do
		[[ $(stat -c %a "$r/$f" 2>/dev/null) == 644 ]] || { echo "$f: missing or not 0644"; bad=1; }
	done
	cmp -s "$r/etc/udev/rules.d/70-qaic-accel.rules" "$RULES" || { echo "rules differ"; bad=1; }
	grep -qE "^$group:x:[0-9]+:(.*,)?alice(,|$)" "$r/etc/group" || { echo "no group $group with alice"; bad=1; }
	for f in "$tmp"/fw/*.bin; do
		cmp -s "$f" "$r/lib/firmware/qcom/aic100/${f##*/}" || { echo "firmware ${f##*/} not installed"; bad=1; }
	done
	((bad == 0))
}
# scratch ROOT: the /etc of a host with user alice
scratch() {
	mkdir -p "$1/etc"
	printf 'root:x:0:\nalice:x:1001:\n' >"$1/etc/group"
	printf 'root:*::\nalice:*::\n' >"$1/etc/gshadow"
	printf 'root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n' >"$1/etc/passwd"
	printf 'root:*:1::::::\nalice:*:1::::::\n' >"$1/etc/shadow"
}
# with systemd-sysusers (the chroot's), firmware given as DIR/qcom/aic100
scratch "$CHROOT$ctmp/root1"
mkdir -p "$CHROOT$ctmp/fwtree/qcom/aic100" && cp "$tmp"/fw/*.bin "$CHROOT$ctmp/fwtree/qcom/aic100/"
in_chroot sh "$ctmp/deploy/install.sh" --root "$ctmp/root1" --firmware "$ctmp/fwtree" --user alice &&
	check_root "$CHROOT$ctmp/root1"
result $? "install-sysusers: install.sh --root with systemd-sysusers"
# with groupadd only: a PATH without systemd-sysusers
mkdir -p "$tmp/bin"
for t in sh cp mkdir chmod grep sed dirname groupadd usermod cat; do
	ln -sf "$(command -v "$t")" "$tmp/bin/$t"
done
scratch "$tmp/root2"
PATH=$tmp/bin sh "$D/install.sh" --root "$tmp/root2" --firmware "$tmp/fw" --user alice &&
	check_root "$tmp/root2"
result $? "install-groupadd: install.sh --root with groupadd"
# not firmware: refused
! sh "$D/install.sh" --root "$tmp/root3" --firmware "$D" >/dev/null 2>&1
result $? "install refuses a firmware dir without sbl.bin"

# ---- the operator's firmware list -----------------------------------------------------------
doc=$(grep -oE 'qcom/aic100/[a-z0-9_]+\.bin' "$REPO/Documentation/operator.rst" | sort -u)
mi=$(modinfo -F firmware "$rs_ko" 2>/dev/null | sort -u)
[[ -n $mi && $doc == "$mi" ]] || { echo "operator.rst:"; echo "$doc"; echo "modinfo:"; echo "$mi"; false; }
result $? "docs-firmware: operator.rst lists the files modinfo qaic_rs lists"

# ---- the guest ------------------------------------------------------------------------------
bin=$RUNTIME_BIN/qaic
log "deploy: the static qaic binary"
runtime_static_build -p qaic-cli || { record 0 1 "deploy: static qaic binary"; exit 1; }
name=deploy
t="deploy (autoload, udev rule, group)"
guest_run --name "$name" --cards 1 --module qaic_rs --module qaic --file "$bin:/bin/qaic" \
	--file "$D:/qaic/deploy" --script "$REPO/tests/guest/deploy.sh" --cmdline kunit.enable=0 \
	--timeout 400 || rc=1
dir=$(guest_dir "$name")
guest_record_run "$dir" "$t" || rc=1
((rc == 0)) || warn "deploy: failures; logs in $dir (guest.log, emu0.log, dmesg.log)"
exit "$rc"
