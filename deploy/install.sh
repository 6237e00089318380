#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# install.sh - set a host up for Cloud AI 100 cards driven by qaic_rs: the udev rule that gives
# /dev/accel/accelN to group "qaic", the group itself, the modprobe.d file that makes qaic_rs
# the driver that loads for the cards, and optionally the card's firmware. See
# Documentation/operator.rst. Run as root; POSIX sh, no bash needed.
#
# Usage: deploy/install.sh [--firmware DIR] [--user NAME]... [--root DIR]
#   --firmware DIR  copy the vendor firmware (sbl.bin, fw*.bin; DIR or DIR/qcom/aic100) to
#                   /lib/firmware/qcom/aic100/
#   --user NAME     add user NAME to the group (repeatable); effective at their next login
#   --root DIR      install into DIR instead of / (for packaging and tests): no udev reload, no
#                   trigger, the group goes into DIR/etc/group
# Exit status: 0 done, 1 a step failed, 64 usage error.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=
firmware=
users=
group=qaic

# usage [STATUS]: the usage text of the header; exit 64 (usage error) unless STATUS is given
usage() {
	sed -n 's/^# \{0,1\}//; 9,15p' "$0" >&2
	exit "${1:-64}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--firmware) [ $# -ge 2 ] || usage; firmware=$2; shift ;;
	--user) [ $# -ge 2 ] || usage; users="$users $2"; shift ;;
	--root) [ $# -ge 2 ] || usage; root=${2%/}; shift ;;
	-h | --help) usage 0 ;;
	*) echo "install.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done

say() { echo "install.sh: $*"; }

# put SRC DST: install one file with mode 0644, creating the directory
put() {
	mkdir -p "$root$(dirname "$2")"
	cp "$1" "$root$2"
	chmod 0644 "$root$2"
	say "installed $2"
}

put "$here/udev/70-qaic-accel.rules" /etc/udev/rules.d/70-qaic-accel.rules
put "$here/sysusers.d/qaic.conf" /etc/sysusers.d/qaic.conf
put "$here/modprobe.d/qaic-rs.conf" /etc/modprobe.d/qaic-rs.conf

# The group: systemd-sysusers where there is one (it reads the file just installed), groupadd
# otherwise.
if grep -q "^$group:" "$root/etc/group" 2>/dev/null; then
	say "group $group exists"
elif command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers --root="${root:-/}" "$root/etc/sysusers.d/qaic.conf"
	say "group $group created (systemd-sysusers)"
else
	if [ -n "$root" ]; then groupadd --system --prefix "$root" "$group"; else groupadd --system "$group"; fi
	say "group $group created (groupadd)"
fi
for u in $users; do
	if [ -n "$root" ]; then usermod --prefix "$root" -a -G "$group" "$u"; else usermod -a -G "$group" "$u"; fi
	say "user $u added to group $group (effective at the next login)"
done

if [ -n "$firmware" ]; then
	src=$firmware
	[ -d "$src/qcom/aic100" ] && src=$src/qcom/aic100
	if [ ! -f "$src/sbl.bin" ]; then
		echo "install.sh: no sbl.bin in $src: not the Cloud AI 100 firmware" >&2
		exit 1
	fi
	dst=/lib/firmware/qcom/aic100
	mkdir -p "$root$dst"
	n=0
	for f in "$src"/*.bin; do
		cp "$f" "$root$dst/"
		chmod 0644 "$root$dst/${f##*/}"
		n=$((n + 1))
	done
	say "installed $n firmware files into $dst"
fi

if [ -z "$root" ]; then
	if command -v udevadm >/dev/null 2>&1; then
		udevadm control --reload
		# cards already present get the new ownership now
		udevadm trigger --subsystem-match=accel --action=change
		say "udev rules reloaded, accel nodes updated"
	else
		say "no udevadm: the rule applies from the next boot"
	fi
fi
