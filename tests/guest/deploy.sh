# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest side of scripts/check.d/80-deploy.sh: the files of deploy/ at work on a host without
# udev (the busybox guest), one emulated card, qaic and qaic_rs both in the module tree (the
# host's depmod made modules.alias), the runtime's static `qaic` at /bin/qaic, deploy/ at
# /qaic/deploy/.
#
# autoload-*  what udev does when a card appears, done by a uevent helper: `modprobe $MODALIAS`.
#             Without deploy/modprobe.d both drivers load (busybox modprobe, like kmod, loads
#             every module with a matching alias) and one of them gets the card; with
#             deploy/modprobe.d/qaic-rs.conf in /etc/modprobe.d only qaic_rs loads, binds the
#             card and boots it to mission mode. By name, `modprobe qaic` still loads qaic.
# perm-*      the udev rule, evaluated here: its match keys against the sysfs of every accel
#             node, its GROUP and MODE applied to the node. Before: the node is root's (0600)
#             and a user in the group gets EACCES. After: the node has the rule's group and
#             mode, the user in the group runs a `qaic run` whose every output is checked
#             against the CPU reference, a user outside the group gets EACCES.
# Ends with rmmod and the kernel log check.
# shellcheck source=tests/guest/lib.sh
. /qaic/lib.sh

RULES=/qaic/deploy/udev/70-qaic-accel.rules
MODCONF=/qaic/deploy/modprobe.d/qaic-rs.conf
SYSUSERS=/qaic/deploy/sysusers.d/qaic.conf

d=$(aic_devices | head -n 1)
bdf=${d##*/}
[ -n "$bdf" ] || { fail deploy-card "no 17cb device"; exit 1; }

# ---- autoload by PCI alias ------------------------------------------------------------------

# The uevent helper: what udev's kmod builtin does for an "add" event with a MODALIAS.
cat >/qaic/uevent-helper <<'HELPER'
#!/bin/sh
[ "$ACTION" = add ] && [ -n "$MODALIAS" ] && /sbin/modprobe -q "$MODALIAS"
exit 0
HELPER
chmod 755 /qaic/uevent-helper

loaded() { grep -q "^$1 " /proc/modules; }

# online DEV: the driver bound to DEV has the card in mission mode with its control channel up
online() {
	for _m in "$1"/mhi*; do
		[ -e "$_m" ] || continue
		_c=/sys/bus/mhi/devices/${_m##*/}
		[ -e "${_c}_QAIC_RS_CONTROL/driver" ] || [ -e "${_c}_QAIC_CONTROL/driver" ] && return 0
	done
	return 1
}

# announce: the card's "add" uevent again (what the kernel sent at boot, before there was a helper)
announce() {
	uevent_listen /qaic/uevent-helper &&
		echo add >"$d/uevent"
}

unload_all() {
	uevent_stop
	for _m in qaic_rs qaic; do
		loaded "$_m" && rmmod "$_m"
	done
	! loaded qaic_rs && ! loaded qaic
}

info "modalias of $bdf: $(cat "$d/modalias")"
check autoload-aliases-of-both sh -c "grep -q ' qaic_rs\$' /lib/modules/$QAIC_KREL/modules.alias &&
	grep -q ' qaic\$' /lib/modules/$QAIC_KREL/modules.alias"

# 1. no modprobe.d file
check autoload-no-conf-clean sh -c '! ls /etc/modprobe.d/*.conf 2>/dev/null | grep -q .'
check autoload-no-conf-uevent announce
check autoload-no-conf-loads-both wait_for 30 sh -c 'grep -q "^qaic_rs " /proc/modules && grep -q "^qaic " /proc/modules'
check autoload-no-conf-bound wait_for 30 test -e "$d/driver"
info "without the modprobe.d file the card went to: $(basename "$(readlink "$d/driver")")"
check autoload-no-conf-online wait_for 90 online "$d"
check autoload-no-conf-unload unload_all

# 2. deploy/modprobe.d/qaic-rs.conf installed
mkdir -p /etc/modprobe.d
cp "$MODCONF" /etc/modprobe.d/
dmesg_mark
check autoload-conf-uevent announce
check autoload-conf-loads-qaic-rs wait_for 30 loaded qaic_rs
check autoload-conf-bound-qaic-rs wait_for 30 sh -c "test \"\$(basename \"\$(readlink $d/driver)\")\" = qaic_rs"
check autoload-conf-online wait_for 90 online "$d"
# one more announcement after the boot: still no qaic (the blacklist, not a race, kept it out)
check autoload-conf-uevent-again announce
sleep 2
check autoload-conf-no-qaic sh -c '! grep -q "^qaic " /proc/modules'
uevent_stop
check autoload-conf-accel-node test -c /dev/accel/accel0

# ---- permissions: the udev rule -------------------------------------------------------------

# rule_lines: the rule lines of $RULES, one per line, comments and blank lines dropped
rule_lines() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$RULES"; }

# one_of VALUE PATTERNS: VALUE matches one of the |-separated shell glob PATTERNS
one_of() {
	_v=$1
	_rest=$2
	while :; do
		_p=${_rest%%|*}
		# shellcheck disable=SC2254  # the pattern is a glob on purpose
		case $_v in $_p) return 0 ;; esac
		[ "$_rest" = "$_p" ] && return 1
		_rest=${_rest#*|}
	done
}

# attrs_match DEVPATH KEYS: some device from DEVPATH up has every ATTRS{name}==value of KEYS
# ("name=value" words), like udev's ATTRS (all on one device)
attrs_match() {
	_dev=$1
	_keys=$2
	while [ "$_dev" != /sys/devices ] && [ "$_dev" != / ]; do
		_all=1
		for _kv in $_keys; do
			_a=${_kv%%=*}
			if ! [ -r "$_dev/$_a" ] || ! one_of "$(cat "$_dev/$_a")" "${_kv#*=}"; then
				_all=0
				break
			fi
		done
		[ $_all = 1 ] && return 0
		_dev=$(dirname "$_dev")
	done
	return 1
}

# rule_tokens: each rule line of $RULES as "KEY<tab>OP<tab>VALUE" lines, a "--" line after each
# rule; text that is no key-operator-"value" token gives a line "?<tab>?<tab>TEXT"
rule_tokens() {
	rule_lines | awk '{
		s = $0
		while (match(s, /[A-Z]+(\{[^}]*\})?[ \t]*(==|!=|\+=|-=|:=|=)[ \t]*"[^"]*"/)) {
			t = substr(s, RSTART, RLENGTH)
			junk = substr(s, 1, RSTART - 1)
			gsub(/[ \t,]/, "", junk)
			if (junk != "") print "?\t?\t" junk
			s = substr(s, RSTART + RLENGTH)
			k = t; sub(/[ \t]*(==|!=|\+=|-=|:=|=).*/, "", k)
			o = substr(t, length(k) + 1); sub(/^[ \t]*/, "", o)
			op = o; sub(/[ \t]*".*/, "", op)
			v = o; sub(/^[^"]*"/, "", v); sub(/"$/, "", v)
			print k "\t" op "\t" v
		}
		gsub(/[ \t,]/, "", s)
		if (s != "") print "?\t?\t" s
		print "--"
	}'
}

# apply_rules NODE_NAME: evaluate every rule of $RULES against /sys/class/accel/NODE_NAME the way
# udev does and apply the assignments of the matching ones to /dev/accel/NODE_NAME. Prints what
# it did; fails on a key or operator it does not know (this evaluator must then learn it, not
# skip it) and when no rule matched.
apply_rules() {
	_name=$1
	_sys=$(readlink -f "/sys/class/accel/$_name")
	_subsys=$(basename "$(readlink -f "$_sys/subsystem")")
	_applied=1
	_tab=$(printf '\t')
	rule_tokens >/tmp/rule.tokens || return 1
	_match=1 _attrs='' _group='' _owner='' _mode=''
	while IFS=$_tab read -r _key _op _val; do
		case "$_key $_op" in
		"SUBSYSTEM ==") one_of "$_subsys" "$_val" || _match=0 ;;
		"KERNEL ==") one_of "$_name" "$_val" || _match=0 ;;
		"ATTRS{"*"} ==")
			_a=${_key#ATTRS\{}
			_attrs="$_attrs ${_a%\}}=$_val"
			;;
		"GROUP =") _group=$_val ;;
		"OWNER =") _owner=$_val ;;
		"MODE =") _mode=$_val ;;
		"-- ")
			# end of a rule: ATTRS must all hold on one device of the chain
			[ $_match = 1 ] && [ -n "$_attrs" ] && { attrs_match "$_sys" "$_attrs" || _match=0; }
			if [ $_match = 1 ]; then
				[ -z "$_owner" ] || chown "$_owner" "/dev/accel/$_name" || return 1
				[ -z "$_group" ] || chgrp "$_group" "/dev/accel/$_name" || return 1
				[ -z "$_mode" ] || chmod "$_mode" "/dev/accel/$_name" || return 1
				echo "apply_rules: $_name: owner '${_owner:--}' group '${_group:--}' mode '${_mode:--}'"
				_applied=0
			fi
			_match=1 _attrs='' _group='' _owner='' _mode=''
			;;
		*)
			echo "apply_rules: unknown key, operator or text: '$_key' '$_op' '$_val'"
			return 1
			;;
		esac
	done </tmp/rule.tokens
	return $_applied
}

# the expected result, from the rule file: GROUP and MODE of the (single) rule
want_group=$(rule_lines | sed -n 's/.*GROUP="\([^"]*\)".*/\1/p' | head -n 1)
want_mode=$(rule_lines | sed -n 's/.*MODE="0*\([0-7]*\)".*/\1/p' | head -n 1)
info "the rule gives group '$want_group' mode '$want_mode'"
check perm-rule-has-group-and-mode test -n "$want_group" -a -n "$want_mode"
# the group the sysusers.d file creates is the rule's
check perm-sysusers-group sh -c "grep -q '^g[[:space:]]\\+${want_group}[[:space:]]' $SYSUSERS"

# users: alice in the group, bob not (busybox has no adduser here: write the files)
gid=990
cat >/etc/passwd <<PASSWD
root:x:0:0:root:/root:/bin/sh
alice:x:1001:1001:in the group:/tmp:/bin/sh
bob:x:1002:1002:not in the group:/tmp:/bin/sh
PASSWD
cat >/etc/group <<GROUP
root:x:0:
alice:x:1001:
bob:x:1002:
$want_group:x:$gid:alice
GROUP

# as USER CMD: run CMD (a shell command line) as USER, with the groups /etc/group gives it
as() { su -s /bin/sh "$1" -c "$2"; }

# run_denied USER: USER's `qaic run` fails on opening the node with EACCES
run_denied() {
	as "$1" 'qaic run -n 2' >/tmp/denied.out 2>&1
	_s=$?
	cat /tmp/denied.out
	[ $_s != 0 ] && grep -q 'cannot open /dev/accel/accel0: EACCES' /tmp/denied.out
}

# run_ok USER: USER's `qaic run` passes, every output verified
run_ok() {
	as "$1" 'id; qaic run -n 10' >/tmp/run.out 2>&1
	_s=$?
	cat /tmp/run.out
	[ $_s = 0 ] && grep -q '^10 requests, 10 verified against the CPU reference, 0 mismatches' /tmp/run.out
}

node=/dev/accel/accel0
info "before: $(ls -l $node)"
check perm-before-root-only sh -c "test \"\$(stat -c '%U %G %a' $node)\" = 'root root 600'"
check perm-before-alice-denied run_denied alice
check perm-apply-rule apply_rules accel0
info "after: $(ls -l $node)"
check perm-after-group-mode sh -c "test \"\$(stat -c '%U %G %a' $node)\" = 'root $want_group $want_mode'"
in_group() { as "$1" id | grep -q "($2)"; }
check perm-after-alice-in-group in_group alice "$want_group"
check perm-bob-not-in-group sh -c "! su -s /bin/sh bob -c id | grep -q '($want_group)'"
check perm-after-alice-runs run_ok alice
check perm-after-bob-denied run_denied bob
# what an operator checks first (Documentation/operator.rst shows this output)
# shown CMD PATTERN: alice's CMD succeeds and prints a line matching the extended regexp PATTERN
shown() {
	as alice "$1" >/tmp/shown.out 2>&1
	_s=$?
	sed 's/^/OPERATOR: /' /tmp/shown.out
	[ $_s = 0 ] && grep -q -E "$2" /tmp/shown.out
}
check perm-after-alice-list shown 'qaic list' "^/dev/accel/accel0 +$bdf +17cb:a100 +qaic_rs +[0-9]+/16 +online\$"
check perm-after-alice-info shown 'qaic info' '^control proto +5\.0 '

# by name the blacklisted driver still loads (it gets no card: qaic_rs holds it)
check autoload-by-name-qaic sh -c 'modprobe qaic && grep -q "^qaic " /proc/modules'
check autoload-by-name-card-kept sh -c "test \"\$(basename \"\$(readlink $d/driver)\")\" = qaic_rs"

check deploy-unload unload_all
check_kernel_clean deploy-kernel-clean
