#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# guest.sh - the qaic-rs guest bench: boot the test kernel in QEMU with 0, 1 or 2 emulated
# AIC100 cards (vfio-user, emulator/ crate), run one guest test script, return its verdict.
#
# Usage: scripts/guest.sh [options] [-- extra QEMU args]
#   -s, --script FILE     guest test script (busybox sh; sources /qaic/lib.sh, see
#                         tests/guest/lib.sh); default: only boot and power off
#   -a, --args 'A B'      arguments for the guest script ($QAIC_TEST_ARGS in the guest)
#   -n, --cards N         emulated cards, 0 (default), 1 or 2; one aic100-emu process each
#   -i, --iommu           add an emulated Intel IOMMU with interrupt remapping (guest gets the
#                         17-vector topology); default: no IOMMU = single-MSI fallback
#       --no-root-port    put the cards on pcie.0 instead of behind pcie-root-ports
#   -k, --module M        add a kernel module: qaic, qaic_rs, another module name found in the
#                         kernel build dir, or a path to a .ko (repeatable; dependencies from
#                         modinfo are added; the guest loads them with `load_module`)
#   -f, --file SRC[:DST]  add a file (e.g. a static test binary) as DST (default /bin/NAME)
#       --firmware DIR    add DIR as /lib/firmware/qcom/aic100 (default with cards: images from
#                         `aic100-emu gen-firmware`); --no-firmware: none
#   -e, --emu-arg ARG     extra argument for every `aic100-emu serve` (repeatable), e.g.
#                         --emu-arg=--single-msi
#       --emu-log AREAS   aic100-emu --log AREAS
#       --control         give every emulator a control socket <run>/emuN.ctl (--control) and
#                         relay the guest's `emu_ctl CARD COMMAND` to it (answer back over the
#                         serial line; see tests/guest/lib.sh); all commands land in ctl.log
#       --hotplug         native PCIe hotplug on the cards' root ports (QEMU's ACPI hotplug of
#                         bridges off) so that the guest can power a slot off and on; with
#                         --control the guest's `host_ctl unplug|plug|present CARD` reach QEMU
#                         (device_del / device_add over QMP, <run>/qmp.sock; see lib.sh)
#       --hook CMD        host-side command run (bash -c) once QEMU is up, killed at the end;
#                         env GUEST_RUN_DIR, GUEST_CARDS; a non-zero exit fails the run
#   -c, --cmdline ARGS    extra kernel command line
#   -q, --qemu-arg ARG    extra QEMU argument (repeatable; same as after --)
#   -t, --timeout SEC     hard limit for the VM, from QEMU start (default 300)
#       --mem MB          guest RAM (default 512)    --smp N  vCPUs (default 2)
#       --kernel FILE     bzImage (default the one test kernel in $KBUILD)
#       --name NAME       run name (default: the script's base name, or "boot")
#   -v, --verbose         stream the serial console to stderr while the guest runs
# Environment: AIC100_EMU=FILE another emulator binary (no cargo build); QAIC_ACCEL=tcg|kvm;
#   QAIC_KERNEL=debug the debug kernel and its modules (scripts/lib.sh); QAIC_RUNS=DIR run dirs
#   (default $QAIC_CACHE/runs); QAIC_TIMEOUT_SCALE=N multiplies --timeout (whole number, for slow
#   kernels; also in the guest's /etc/qaic/env); QAIC_GUEST_EPILOGUE=FILE a busybox sh snippet
#   sourced in the guest after the test script, before the kernel log dump (e.g. a kmemleak scan);
#   QAIC_GUEST_CMDLINE=ARGS more kernel command line for every run (after --cmdline).
#
# Exit status: 0 guest verdict PASS; 1 verdict FAIL (or the hook failed); 2 no verdict (timeout,
# guest crash/panic); 3 bench error (emulator died or failed to start, QEMU failed, bad input);
# 64 usage error.
#
# Every run gets a temp dir $QAIC_CACHE/runs/NAME.XXXXXX; at the end $QAIC_CACHE/runs/NAME points
# to it and the previous run of that name is removed. It holds: guest.log (serial console,
# verbatim), serial.log (same with host timestamps since QEMU start), qemu.log (QEMU stderr),
# emuN.log, ctl.log (--control; also the host_ctl commands), qmp.sock (QMP, every run), dmesg.log (the guest's kernel log), ktap-*.log (ktap_dump
# blocks), result
# (verdict, counts and timings as KEY=VALUE), cmdline (what was run), initramfs.list.
#
# QEMU 11 runs from the trixie chroot ($CHROOT; made with `scripts/setup.sh chroot` if missing)
# in a private mount namespace (bind mounts vanish with it); emulators and QEMU are killed on every exit path.
#
# As a library (`. scripts/guest.sh`): guest_run [options] (same as the command, in a subshell),
# guest_dir NAME, guest_verdict DIR, guest_record DIR PREFIX, guest_kernel_problems DIR,
# guest_qemu_errors DIR, guest_record_kernel_clean DIR TITLE, guest_record_qemu_clean DIR TITLE,
# guest_record_run DIR TITLE, guest_ktap DIR NAME, guest_kernel_release BZIMAGE.
# See Documentation/testing.rst, "Guest bench".

GUEST_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$GUEST_HERE/lib.sh"

RUNS=${QAIC_RUNS:-$QAIC_CACHE/runs}
EMU_TARGET=${EMU_TARGET:-$QAIC_CACHE/target-emulator}
AIC100_EMU=${AIC100_EMU:-$EMU_TARGET/release/aic100-emu}
GUEST_FILES=$REPO/tests/guest
# Kernel log lines that mean the kernel hit a bug, whatever the test (same list as the guest's).
KERNEL_PROBLEMS='WARNING:|BUG:|Oops|KASAN|UBSAN|Call Trace|general protection fault|Kernel panic|refcount_t:|list_add corruption|list_del corruption'

# ---- library functions (usable after sourcing) ----------------------------------------------

# guest_run [options]: run the bench like the command does, without leaving the caller
guest_run() { (guest_main "$@"); }

# guest_dir NAME: the run dir of the last run of NAME
guest_dir() { readlink -f "$RUNS/$1"; }

# guest_verdict DIR: PASS, FAIL or NONE
guest_verdict() {
	local v
	v=$(sed -n 's/^QAIC-VERDICT: \([A-Z]*\).*/\1/p' "$1/guest.log" 2>/dev/null | tail -n 1)
	echo "${v:-NONE}"
}

# guest_tests DIR: the "PASS name" / "FAIL name" lines the guest reported
guest_tests() {
	sed -n 's/^QAIC-TEST: \(PASS\|FAIL\) \([^ ]*\).*/\1 \2/p' "$1/guest.log" 2>/dev/null
}

# guest_record DIR PREFIX: record (scripts/lib.sh) every guest test as "PREFIX: name"; a run
# without a verdict (timeout, crash) is recorded as one failed "PREFIX: guest verdict"
guest_record() {
	local dir=$1 prefix=$2 v name
	while read -r v name; do
		if [[ $v == PASS ]]; then record 1 0 "$prefix: $name"; else record 0 1 "$prefix: $name"; fi
	done < <(guest_tests "$dir")
	if [[ $(guest_verdict "$dir") == NONE ]]; then
		record 0 1 "$prefix: guest verdict ($(sed -n 's/^reason=//p' "$dir/result" 2>/dev/null))"
	fi
}

# guest_kernel_problems DIR: print bug/warning lines of the guest kernel (console + dmesg dump);
# non-zero when there are none
guest_kernel_problems() {
	local f
	for f in "$1/guest.log" "$1/dmesg.log"; do
		[[ -f $f ]] && grep -v '^QAIC-TEST: ' "$f" | awk -f "$GUEST_FILES/known-splats.awk"
	done | grep -E "$KERNEL_PROBLEMS" | sort -u | grep .
}

# guest_qemu_errors DIR: print QEMU's error lines (vfio-user failures and the like; warnings are
# left out); non-zero when there are none
guest_qemu_errors() {
	grep -v -E '^qemu-system-x86_64: .*warning: |^$' "$1/qemu.log" 2>/dev/null
}

# guest_record_kernel_clean DIR TITLE: record "TITLE: guest kernel log clean"; on failure show
# the offending lines and return non-zero
guest_record_kernel_clean() {
	if guest_kernel_problems "$1" >"$1/kernel-problems"; then
		record 0 1 "$2: guest kernel log clean"
		warn "$2: the guest kernel log has:"
		head -n 20 "$1/kernel-problems" >&2
		return 1
	fi
	record 1 0 "$2: guest kernel log clean"
}

# guest_record_run DIR TITLE: everything a finished run says, recorded: the guest's own checks,
# a clean guest kernel log, no QEMU errors; non-zero if any of them failed or the guest's
# verdict is not PASS
guest_record_run() {
	local bad=0
	guest_record "$1" "$2"
	guest_record_kernel_clean "$1" "$2" || bad=1
	guest_record_qemu_clean "$1" "$2" || bad=1
	[[ $(guest_verdict "$1") == PASS ]] || bad=1
	((bad == 0))
}

# guest_record_qemu_clean DIR TITLE: record "TITLE: no QEMU/vfio-user errors"; on failure show
# QEMU's error lines and return non-zero
guest_record_qemu_clean() {
	if guest_qemu_errors "$1" >"$1/qemu-errors"; then
		record 0 1 "$2: no QEMU/vfio-user errors"
		warn "$2: QEMU reported:"
		head -n 10 "$1/qemu-errors" >&2
		return 1
	fi
	record 1 0 "$2: no QEMU/vfio-user errors"
}

# guest_kernel_release BZIMAGE: the release string in the image's setup header (the x86 boot
# protocol's kernel_version field: a pointer at 0x20e, relative to 0x200)
guest_kernel_release() {
	local off
	off=$(od -An -t u2 -j 526 -N 2 "$1" 2>/dev/null | tr -d ' ')
	[[ -n $off ]] || return 1
	dd if="$1" bs=1 skip=$((off + 512)) count=128 2>/dev/null | tr '\0' '\n' | head -n 1 | cut -d' ' -f1
}

# guest_ktap DIR NAME: path of the KTAP block NAME the guest printed with ktap_dump
guest_ktap() { echo "$1/ktap-$2.log"; }

# ---- the bench ------------------------------------------------------------------------------

# Bench errors exit 3 (lib.sh's die exits 1, which would read as a FAIL verdict).
g_die() {
	printf 'ERROR: %s\n' "$*" >&2
	if [[ -n ${G_RUN:-} && -d $G_RUN && ! -f $G_RUN/result ]]; then
		printf 'name=%s\nverdict=NONE\nrc=3\nreason=bench error: %s\n' "$G_NAME" "$*" >"$G_RUN/result"
	fi
	exit 3
}

# guest_usage [STATUS]: print the usage (to stderr unless STATUS is 0) and exit
guest_usage() {
	local st=${1:-64}
	if ((st == 0)); then
		sed -n '/^# Usage:/,/^# 64 usage error/s/^# \{0,1\}//p' "$GUEST_HERE/guest.sh"
	else
		sed -n '/^# Usage:/,/^# 64 usage error/s/^# \{0,1\}//p' "$GUEST_HERE/guest.sh" >&2
	fi
	exit "$st"
}

# The process is still running (not gone, not a zombie).
g_alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	read -r _ _ st _ <"/proc/$1/stat" || return 1
	[[ $st != Z ]]
}

# g_stop PID...: SIGTERM, up to 3 s grace, then SIGKILL; reaps our children
g_stop() {
	local p i
	for p in "$@"; do [[ -n $p ]] && g_alive "$p" && kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		[[ -n $p ]] || continue
		for ((i = 0; i < 30; i++)); do g_alive "$p" || break; sleep 0.1; done
		g_alive "$p" && { kill -KILL "$p" 2>/dev/null; warn "pid $p ignored SIGTERM, killed"; }
		wait "$p" 2>/dev/null
	done
	return 0
}

g_cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n ${G_RUN:-} && -d $G_RUN && ! -f $G_RUN/result ]]; then
		printf 'name=%s\nverdict=NONE\nrc=%s\nreason=interrupted (exit %s)\n' "$G_NAME" "$rc" "$rc" \
			>"$G_RUN/result"
	fi
	g_stop "${G_HOOK:-}" "${G_QEMU:-}" "${G_EMUS[@]}"
	g_stop "${G_TS:-}"
}

# g_find_module NAME|PATH: the .ko file
g_find_module() {
	local m=$1 f
	if [[ $m == */* || $m == *.ko ]]; then
		[[ -f $m ]] && { readlink -f "$m"; return; }
		g_die "module file $m not found"
	fi
	case $m in
	qaic) f=$KBUILD/drivers/accel/qaic/qaic.ko ;;
	qaic_rs) f=$KBUILD/drivers/accel/qaic_rs/qaic_rs.ko ;;
	*) f=$(find "$KBUILD" -name "$m.ko" -o -name "${m//_/-}.ko" 2>/dev/null | head -n 1) ;;
	esac
	[[ -n $f && -f $f ]] || g_die "module $m: no $m.ko in $KBUILD (is the kernel built? scripts/build-kernel.sh)"
	echo "$f"
}

# g_add_module FILE: copy FILE and (recursively) the modules it depends on into the initramfs
g_add_module() {
	local f=$1 name dep dst=$G_ROOT/lib/modules/$G_KREL/extra
	name=$(basename "$f")
	[[ -f $dst/$name ]] && return
	local vm
	vm=$(modinfo -F vermagic "$f" | cut -d' ' -f1)
	[[ $vm == "$G_KREL" ]] ||
		warn "$name is built for $vm, the kernel is $G_KREL: insmod will refuse it (rebuild running?)"
	mkdir -p "$dst"
	cp "$f" "$dst/"
	for dep in $(modinfo -F depends "$f" | tr ',' ' '); do
		dep=$(g_find_module "$dep") || exit 3
		g_add_module "$dep"
	done
}

g_build_emulator() {
	[[ -n ${G_EMU_BUILT:-} ]] && return
	if [[ $AIC100_EMU == "$EMU_TARGET/release/aic100-emu" ]]; then
		[[ -f $REPO/emulator/Cargo.toml ]] || g_die "no emulator crate at $REPO/emulator"
		log "cargo build --release of the emulator (cold: about 1 min)"
		CARGO_TARGET_DIR=$EMU_TARGET cargo build -q --release \
			--manifest-path "$REPO/emulator/Cargo.toml" >&2 || g_die "emulator build failed"
	fi
	[[ -x $AIC100_EMU ]] || g_die "emulator binary $AIC100_EMU missing"
	G_EMU_BUILT=1
}

g_build_initramfs() {
	local t0=$EPOCHREALTIME f src dst
	G_ROOT=$G_RUN/initramfs.d
	mkdir -p "$G_ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc/qaic,qaic,lib/firmware}
	mkdir -p "$G_ROOT/lib/modules/$G_KREL"
	if [[ ! -x /bin/busybox ]] || readelf -l /bin/busybox | grep -q 'program interpreter'; then
		g_die "/bin/busybox must be the static one: apt-get install busybox-static (scripts/setup.sh host)"
	fi
	cp /bin/busybox "$G_ROOT/bin/busybox"
	cp "$GUEST_FILES/init" "$G_ROOT/init"
	cp "$GUEST_FILES/lib.sh" "$GUEST_FILES/known-splats.awk" "$G_ROOT/qaic/"
	if [[ -n $G_SCRIPT ]]; then
		cp "$G_SCRIPT" "$G_ROOT/qaic/test.sh"
	else
		printf '. /qaic/lib.sh\ninfo "booted, no test script"\n' >"$G_ROOT/qaic/test.sh"
	fi
	if [[ -n ${QAIC_GUEST_EPILOGUE:-} ]]; then
		# the test script runs as before, then the epilogue; the script's exit status stays
		mv "$G_ROOT/qaic/test.sh" "$G_ROOT/qaic/test-main.sh"
		cp "$QAIC_GUEST_EPILOGUE" "$G_ROOT/qaic/epilogue.sh" || g_die "no epilogue $QAIC_GUEST_EPILOGUE"
		printf '%s\n' 'sh /qaic/test-main.sh "$@"' 'rc=$?' '. /qaic/epilogue.sh' 'exit $rc' \
			>"$G_ROOT/qaic/test.sh"
	fi
	chmod 755 "$G_ROOT/init" "$G_ROOT/qaic/test.sh"
	{
		printf 'QAIC_NAME=%q\nQAIC_CARDS=%d\nQAIC_IOMMU=%d\nQAIC_CONTROL=%d\n' "$G_NAME" "$G_CARDS" \
			"$G_IOMMU" "$G_CONTROL"
		printf 'QAIC_TEST_ARGS=%q\n' "$G_ARGS"
		printf 'QAIC_TIMEOUT_SCALE=%d\n' "${QAIC_TIMEOUT_SCALE:-1}"
	} >"$G_ROOT/etc/qaic/env"
	for f in "${G_MODULES[@]}"; do
		f=$(g_find_module "$f") || exit 3
		g_add_module "$f"
	done
	if ((${#G_MODULES[@]})); then
		cp "$KBUILD"/modules.{builtin,builtin.modinfo,order} "$G_ROOT/lib/modules/$G_KREL/" 2>/dev/null
		depmod -b "$G_ROOT" "$G_KREL" || g_die "depmod failed"
	fi
	for f in "${G_FILES[@]}"; do
		src=${f%%:*}
		dst=${f#*:}
		[[ $f == *:* ]] || dst=/bin/$(basename "$src")
		[[ -e $src ]] || g_die "file $src not found"
		if [[ -f $src ]] && readelf -l "$src" 2>/dev/null | grep -q 'Requesting program interpreter'; then
			warn "$src is dynamically linked; the guest has no libc (link it with -static)"
		fi
		mkdir -p "$G_ROOT$(dirname "$dst")"
		cp -a "$src" "$G_ROOT$dst"
	done
	if [[ -n $G_FW ]]; then
		[[ -d $G_FW ]] || g_die "firmware dir $G_FW does not exist"
		mkdir -p "$G_ROOT/lib/firmware/qcom/aic100"
		if [[ -d $G_FW/qcom/aic100 ]]; then
			cp -a "$G_FW/qcom/aic100/." "$G_ROOT/lib/firmware/qcom/aic100/"
		else
			cp -a "$G_FW/." "$G_ROOT/lib/firmware/qcom/aic100/"
		fi
	fi
	(cd "$G_ROOT" && find . | LC_ALL=C sort | tee "$G_RUN/initramfs.list" |
		cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$G_RUN/initramfs.cpio.gz" ||
		g_die "initramfs: cpio failed"
	rm -rf "$G_ROOT"
	G_T_INITRAMFS=$(g_since "$t0")
}

g_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# Timestamp the serial console: guest.log verbatim (CR stripped), serial.log with the seconds
# since QEMU started; with -v also to stderr.
g_timestamper() {
	exec perl -e '
		use Time::HiRes qw(time); $| = 1;
		my ($t0, $raw, $ts, $verbose) = @ARGV;
		open(my $r, ">", $raw) or die; open(my $t, ">", $ts) or die;
		$r->autoflush(1); $t->autoflush(1);
		while (my $l = <STDIN>) {
			$l =~ s/\r//g;
			print $r $l;
			my $s = sprintf("[%8.3f] %s", time - $t0, $l);
			print $t $s;
			print STDERR $s if $verbose;
		}' "$1" "$G_RUN/guest.log" "$G_RUN/serial.log" "$G_VERBOSE" <"$G_RUN/serial.fifo"
}

g_qemu_cmd() {
	local accel=$1 i machine cpu append
	machine=q35,accel=$accel,memory-backend=mem
	cpu=max
	if [[ $accel == kvm ]]; then
		cpu=host
		((G_IOMMU)) && machine+=,kernel-irqchip=split
	fi
	append="console=ttyS0 loglevel=5 panic=-1 rdinit=/init"
	((G_IOMMU)) && append+=" intel_iommu=on"
	[[ -n $G_CMDLINE ]] && append+=" $G_CMDLINE"
	[[ -n ${QAIC_GUEST_CMDLINE:-} ]] && append+=" $QAIC_GUEST_CMDLINE"
	G_QEMU_CMD=(qemu-system-x86_64 -machine "$machine" -cpu "$cpu" -smp "$G_SMP" -m "${G_MEM}M"
		-object "memory-backend-memfd,id=mem,size=${G_MEM}M,share=on"
		-kernel "$G_RUN/bzImage" -initrd "$G_RUN/initramfs.cpio.gz" -append "$append"
		-nodefaults -no-reboot -display none -monitor none -serial stdio
		-qmp "unix:$G_RUN/qmp.sock,server=on,wait=off")
	((G_IOMMU)) && G_QEMU_CMD+=(-device "intel-iommu,intremap=on,caching-mode=on")
	# q35 hot-plugs devices behind root ports through ACPI by default; --hotplug gives the ports
	# their native PCIe hotplug controller (slot power control, presence detect) instead
	((G_HOTPLUG)) && G_QEMU_CMD+=(-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off)
	for ((i = 0; i < G_CARDS; i++)); do
		((G_ROOT_PORT)) &&
			G_QEMU_CMD+=(-device "pcie-root-port,id=rp$i,bus=pcie.0,chassis=$((i + 1)),slot=$((i + 1))")
		G_QEMU_CMD+=(-device "$(g_card_json "$i")")
	done
	G_QEMU_CMD+=("${G_QEMU_ARGS[@]}")
}

# g_card_json I: the QEMU device (JSON) of card I; also what `host_ctl plug` hands to device_add
g_card_json() {
	local bus=
	((G_ROOT_PORT)) && bus="\"bus\":\"rp$1\","
	printf '{"driver":"vfio-user-pci","id":"aic%d",%s"x-msg-timeout":60000,' "$1" "$bus"
	printf '"socket":{"type":"unix","path":"%s"}}' "$G_RUN/emu$1.sock"
}

# Inside a private mount namespace: make /dev, /proc, /sys and the runs dir visible in the
# chroot at their host paths, then become QEMU (same pid throughout: unshare and chroot exec).
# shellcheck disable=SC2016  # the script is for the inner bash
G_NS_SCRIPT='set -e; c=$1; r=$2; shift 2
mount --rbind /dev "$c/dev"; mount -t proc proc "$c/proc"; mount --rbind /sys "$c/sys"
mount --bind "$r" "$c$r"
exec chroot "$c" "$@"'

# g_ctl_send CARD COMMAND: one line to the emulator's control socket, print its one-line answer
g_ctl_send() {
	perl -MIO::Socket::UNIX -e '
		my ($path, $cmd) = @ARGV;
		my $s = IO::Socket::UNIX->new(Peer => $path) or do { print "error: connect $path: $!\n"; exit 1 };
		local $SIG{ALRM} = sub { print "error: no answer from the emulator in 10 s\n"; exit 1 };
		alarm 10;
		print $s "$cmd\n";
		my $a = <$s>;
		$a = "error: the emulator closed the control socket\n" unless defined $a;
		print $a;' "$G_RUN/emu$1.ctl" "$2"
}

# g_ctl_relay: forward new "QAIC-CTL: CARD COMMAND" lines of the guest to the emulators and write
# each answer back to the guest's serial input as "QAIC-CTL-ANSWER: ..."; "QAIC-HOST: VERB CARD
# [ARG]" lines (host_ctl) go to g_host_cmd, answered the same way
g_ctl_relay() {
	local line card cmd ans
	while IFS= read -r line; do
		((++G_CTL_SEEN))
		if [[ $line =~ ^QAIC-HOST:\ ([a-z]+)\ ([0-9]+)\ ?(.*)$ ]]; then
			cmd="${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
			printf '[%s] host <- %s\n' "$(g_since "$G_T0")" "$cmd" >>"$G_RUN/ctl.log"
			# shellcheck disable=SC2086  # VERB CARD [ARG]
			g_host_cmd $cmd
			ans=$G_HOST_ANS
			printf '[%s] host -> %s\n' "$(g_since "$G_T0")" "$ans" >>"$G_RUN/ctl.log"
			printf 'QAIC-CTL-ANSWER: %s\n' "$ans" >&"$G_SERIAL_IN"
			continue
		fi
		[[ $line =~ ^QAIC-CTL:\ ([0-9]+)\ (.*)$ ]] || continue
		card=${BASH_REMATCH[1]}
		cmd=${BASH_REMATCH[2]}
		if ((card < G_CARDS)); then
			ans=$(g_ctl_send "$card" "$cmd")
		else
			ans="error: no card $card"
		fi
		printf '[%s] emu%s <- %s\n[%s] emu%s -> %s\n' "$(g_since "$G_T0")" "$card" "$cmd" \
			"$(g_since "$G_T0")" "$card" "$ans" >>"$G_RUN/ctl.log"
		printf 'QAIC-CTL-ANSWER: %s\n' "$ans" >&"$G_SERIAL_IN"
	done < <(tail -n "+$((G_CTL_SEEN + 1))" "$G_RUN/guest.log" 2>/dev/null)
}

# g_start_emu I: start the emulator of card I in the background (G_EMUS[I]); its log is
# <run>/emuI.log (appended to when a card is plugged again)
g_start_emu() {
	local i=$1 a
	a=(serve --socket "$G_RUN/emu$i.sock")
	[[ -n $G_EMU_LOG ]] && a+=(--log "$G_EMU_LOG")
	((G_CONTROL)) && a+=(--control "$G_RUN/emu$i.ctl")
	a+=("${G_EMU_ARGS[@]}")
	echo "emu$i: $AIC100_EMU ${a[*]}" >>"$G_RUN/cmdline"
	setpriv --pdeathsig KILL -- "$AIC100_EMU" "${a[@]}" </dev/null >>"$G_RUN/emu$i.log" 2>&1 &
	G_EMUS[i]=$!
}

# g_wait_emu I: wait up to 5 s for the socket of emulator I; on failure show its log's end
g_wait_emu() {
	local i=$1 n
	for ((n = 0; n < 100; n++)); do
		[[ -S $G_RUN/emu$i.sock ]] && return 0
		g_alive "${G_EMUS[i]}" || break
		sleep 0.05
	done
	[[ -S $G_RUN/emu$i.sock ]] && return 0
	tail -n 5 "$G_RUN/emu$i.log" >&2
	return 1
}

# g_qmp COMMAND-JSON [TIMEOUT]: one QMP command on a fresh connection to <run>/qmp.sock; prints
# the reply line ({"return": ...} or {"error": ...}) and before it the events QEMU sent meanwhile,
# one "event: {...}" line each; non-zero when there is no reply
g_qmp() {
	perl -MIO::Socket::UNIX -e '
		my ($path, $cmd, $tmo) = @ARGV;
		my $s = IO::Socket::UNIX->new(Peer => $path) or do { print "error: QMP connect: $!\n"; exit 1 };
		local $SIG{ALRM} = sub { print "error: no QMP reply in $tmo s\n"; exit 1 };
		alarm $tmo;
		my $l = <$s>;                                  # the greeting
		print $s "{\"execute\":\"qmp_capabilities\"}\n";
		while (defined($l = <$s>)) { last if $l =~ /"return"|"error"/; print "event: $l"; }
		print $s "$cmd\n";
		while (defined($l = <$s>)) {
			if ($l =~ /^\{"timestamp"|"event"/) { print "event: $l"; next }
			print $l; exit 0;
		}
		print "error: QMP connection closed\n"; exit 1;' "$G_RUN/qmp.sock" "$1" "${2:-10}"
}

# g_card_present I: QEMU still has the device of card I
g_card_present() {
	g_qmp "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/aic$1\",\"property\":\"type\"}}" |
		grep -q '"return"'
}

# g_host_cmd VERB CARD [ARG]: a guest's `host_ctl` (tests/guest/lib.sh); the one-line answer goes
# to G_HOST_ANS (runs in the bench's shell: it updates G_EMUS and G_UNPLUGGED)
#   unplug CARD [WAIT_S]  QMP device_del of card CARD (unless QEMU has already dropped it, e.g.
#                         after the guest powered its slot off), then wait up to WAIT_S (default
#                         0: do not wait) for the device to be gone; its emulator may then exit
#   plug CARD             a new emulator on the card's socket, then device_add of the card as
#                         it was at start (the guest powers the slot on and rescans)
#   present CARD          "ok present" or "ok absent" (QEMU's view)
g_host_cmd() {
	local verb=$1 card=$2 arg=${3:-0} r t0 n
	if ! [[ $card =~ ^[0-9]+$ ]] || ((card >= G_CARDS)); then
		G_HOST_ANS="error: no card $card"
		return
	fi
	((G_ROOT_PORT)) || { G_HOST_ANS="error: the cards are on pcie.0 (--no-root-port): no hotplug"; return; }
	t0=$EPOCHREALTIME
	case $verb in
	present)
		if g_card_present "$card"; then G_HOST_ANS="ok present"; else G_HOST_ANS="ok absent"; fi
		;;
	unplug)
		[[ $arg =~ ^[0-9]+$ ]] || { G_HOST_ANS="error: unplug CARD [WAIT_S]"; return; }
		# from now on the emulator may exit without that being a bench error
		G_UNPLUGGED[card]=1
		if g_card_present "$card"; then
			r=$(g_qmp "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"aic$card\"}}" | tail -n 1)
			[[ $r == *'"return"'* ]] || { G_HOST_ANS="error: device_del: $r"; return; }
		fi
		for ((n = 0; n < arg * 10; n++)); do
			g_card_present "$card" || break
			sleep 0.1
		done
		if g_card_present "$card"; then
			((arg)) && { G_HOST_ANS="error: aic$card still present after $arg s"; return; }
			G_HOST_ANS="ok requested"
			return
		fi
		# the emulator sees QEMU hang up and exits
		for ((n = 0; n < 50; n++)); do g_alive "${G_EMUS[card]}" || break; sleep 0.1; done
		if g_alive "${G_EMUS[card]}"; then
			G_HOST_ANS="ok gone after $(g_since "$t0") s; the emulator is still running"
		else
			wait "${G_EMUS[card]}" 2>/dev/null
			r=$?
			# its last words: where the card was (EE, MHI state) when QEMU hung up
			G_HOST_ANS="ok gone after $(g_since "$t0") s; emulator exited with status $r; $(
				sed -n 's/^aic100-emu: connection closed; \(EE [0-9]* MHI state [0-9]*\).*/\1/p' \
					"$G_RUN/emu$card.log" | tail -n 1)"
		fi
		;;
	plug)
		g_card_present "$card" && { G_HOST_ANS="error: aic$card is present"; return; }
		g_stop "${G_EMUS[card]}"
		rm -f "$G_RUN/emu$card.sock"
		printf -- '--- plugged again at %s s (host_ctl plug) ---\n' "$(g_since "$G_T0")" >>"$G_RUN/emu$card.log"
		g_start_emu "$card"
		g_wait_emu "$card" || { G_HOST_ANS="error: the new emulator did not start"; return; }
		r=$(g_qmp "{\"execute\":\"device_add\",\"arguments\":$(g_card_json "$card")}" 30 | tail -n 1)
		[[ $r == *'"return"'* ]] || { G_HOST_ANS="error: device_add: $r"; return; }
		G_UNPLUGGED[card]=0
		G_HOST_ANS="ok plugged after $(g_since "$t0") s"
		;;
	*) G_HOST_ANS="error: unknown host command $verb (unplug, plug, present)" ;;
	esac
}

g_finish_logs() {
	awk -v d="$G_RUN/dmesg.log" '
		/^QAIC-DMESG-END/ { on = 0 } on { print > d } /^QAIC-DMESG-BEGIN/ { on = 1 }' "$G_RUN/guest.log"
	awk -v dir="$G_RUN" '
		/^QAIC-KTAP-END / { on = 0 }
		on { print > f }
		/^QAIC-KTAP-BEGIN / { on = 1; f = dir "/ktap-" $2 ".log"; printf "" > f }' "$G_RUN/guest.log"
}

guest_main() {
	set -uo pipefail
	local G_SCRIPT='' G_ARGS='' G_CARDS=0 G_IOMMU=0 G_ROOT_PORT=1 G_CMDLINE='' G_TIMEOUT=300
	local G_MEM=512 G_SMP=2 G_KERNEL=$KBUILD/arch/x86/boot/bzImage G_NAME='' G_VERBOSE=0
	local G_FW='' G_NO_FW=0 G_EMU_LOG='' G_CONTROL=0 G_HOOK_CMD='' G_HOTPLUG=0
	local -a G_MODULES=() G_FILES=() G_EMU_ARGS=() G_QEMU_ARGS=() G_EMUS=() G_QEMU_CMD=()
	local -a G_UNPLUGGED=()
	local G_HOST_ANS=''
	local G_RUN G_ROOT G_KREL G_QEMU='' G_TS='' G_HOOK='' G_T_INITRAMFS=0 G_EMU_BUILT=''
	local G_SERIAL_IN='' G_CTL_SEEN=0 G_T0
	while (($#)); do
		case $1 in
		-s | --script) G_SCRIPT=${2:?}; shift ;;
		-a | --args) G_ARGS=${2?}; shift ;;
		-n | --cards) G_CARDS=${2:?}; shift ;;
		-i | --iommu) G_IOMMU=1 ;;
		--no-root-port) G_ROOT_PORT=0 ;;
		-k | --module) G_MODULES+=("${2:?}"); shift ;;
		-f | --file) G_FILES+=("${2:?}"); shift ;;
		--firmware) G_FW=${2:?}; shift ;;
		--no-firmware) G_NO_FW=1 ;;
		-e | --emu-arg) G_EMU_ARGS+=("${2:?}"); shift ;;
		--emu-arg=*) G_EMU_ARGS+=("${1#--emu-arg=}") ;;
		--emu-log) G_EMU_LOG=${2:?}; shift ;;
		--control) G_CONTROL=1 ;;
		--hotplug) G_HOTPLUG=1 ;;
		--hook) G_HOOK_CMD=${2:?}; shift ;;
		-c | --cmdline) G_CMDLINE=${2?}; shift ;;
		-q | --qemu-arg) G_QEMU_ARGS+=("${2:?}"); shift ;;
		-t | --timeout) G_TIMEOUT=${2:?}; shift ;;
		--mem) G_MEM=${2:?}; shift ;;
		--smp) G_SMP=${2:?}; shift ;;
		--kernel) G_KERNEL=${2:?}; shift ;;
		--name) G_NAME=${2:?}; shift ;;
		-v | --verbose) G_VERBOSE=1 ;;
		-h | --help) guest_usage 0 ;;
		--) shift; G_QEMU_ARGS+=("$@"); break ;;
		*) warn "unknown option $1"; guest_usage ;;
		esac
		shift
	done
	[[ $G_CARDS =~ ^[012]$ ]] || { warn "--cards must be 0, 1 or 2"; guest_usage; }
	[[ $G_TIMEOUT =~ ^[0-9]+$ && $G_MEM =~ ^[0-9]+$ && $G_SMP =~ ^[0-9]+$ ]] ||
		{ warn "--timeout, --mem and --smp take numbers"; guest_usage; }
	[[ ${QAIC_TIMEOUT_SCALE:-1} =~ ^[1-9][0-9]*$ ]] || g_die "QAIC_TIMEOUT_SCALE must be a whole number >= 1"
	G_TIMEOUT=$((G_TIMEOUT * ${QAIC_TIMEOUT_SCALE:-1}))
	[[ -z $G_SCRIPT || -f $G_SCRIPT ]] || g_die "guest script $G_SCRIPT not found"
	if [[ -z $G_NAME ]]; then
		G_NAME=boot
		[[ -n $G_SCRIPT ]] && G_NAME=$(basename "$G_SCRIPT" .sh)
	fi
	[[ $G_NAME =~ ^[A-Za-z0-9_.-]+$ ]] || g_die "--name: letters, digits, . _ - only"

	# die() exits: make every exit path, also before QEMU starts, go through the cleanup.
	trap g_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP

	# The run dir, linked as $RUNS/NAME from the start, so that a caller never finds the previous
	# run's logs under that name; the previous run is dropped once it is finished (has a result).
	mkdir -p "$RUNS" || g_die "cannot create $RUNS"
	# Runs killed without cleanup leave their dirs: drop those older than a day.
	find "$RUNS" -mindepth 1 -maxdepth 1 -type d -name '*.??????' -mmin +1440 -exec rm -rf {} + 2>/dev/null
	local old
	old=$(readlink -f "$RUNS/$G_NAME" 2>/dev/null || true)
	G_RUN=$(mktemp -d "$RUNS/$G_NAME.XXXXXX") || g_die "mktemp failed"
	ln -sfn "$(basename "$G_RUN")" "$RUNS/$G_NAME"
	[[ -n $old && $old == "$RUNS/$G_NAME".* && -f $old/result ]] && rm -rf "$old"

	if [[ ! -x $CHROOT/usr/bin/qemu-system-x86_64 ]]; then
		log "no QEMU 11 chroot yet: scripts/setup.sh chroot (about 1 min)"
		mkdir -p "$QAIC_CACHE"
		flock "$QAIC_CACHE/chroot.lock" "$GUEST_HERE/setup.sh" chroot >&2 ||
			g_die "QEMU chroot setup failed (scripts/setup.sh chroot)"
	fi
	((G_CARDS)) && g_build_emulator

	mkdir -p "$CHROOT$RUNS"
	# Take kernel and modules while no build runs (scripts/build-kernel.sh holds this lock
	# exclusively), so that the image and its modules come from the same build.
	local lockfd
	exec {lockfd}>>"$KBUILD_LOCK"
	if ! flock -s -n "$lockfd"; then
		log "a kernel build is running: waiting for it to finish (at most 20 min)"
		# in the background: bash runs traps (Ctrl-C) during `wait`, not during a foreground command
		setpriv --pdeathsig KILL -- flock -s -w 1200 "$lockfd" &
		wait $! || g_die "the kernel build did not finish in 20 min"
	fi
	[[ -f $G_KERNEL ]] || g_die "no kernel at $G_KERNEL: run scripts/build-kernel.sh"
	if [[ ${QAIC_KERNEL:-test} == deb ]]; then
		deb_bench_current || g_die "$KBUILD is not the unpacked image of the last make kernel-deb" \
			"($KDEB/packages): run scripts/kernel-deb.sh bench"
	fi
	cp "$G_KERNEL" "$G_RUN/bzImage"
	G_KREL=$(guest_kernel_release "$G_RUN/bzImage")
	[[ -n $G_KREL ]] || g_die "$G_KERNEL: cannot read the kernel release (not a bzImage?)"
	if ((G_CARDS)) && [[ -z $G_FW ]] && ! ((G_NO_FW)); then
		"$AIC100_EMU" gen-firmware --out "$G_RUN/firmware" >"$G_RUN/gen-firmware.log" 2>&1 ||
			g_die "aic100-emu gen-firmware failed: $(tail -n 3 "$G_RUN/gen-firmware.log")"
		G_FW=$G_RUN/firmware
	fi
	((G_NO_FW)) && G_FW=
	g_build_initramfs
	exec {lockfd}>&-
	((G_VERBOSE)) && log "initramfs built in $G_T_INITRAMFS s: $G_RUN/initramfs.cpio.gz"

	# Emulators first: QEMU connects once, at device realize, and never reconnects.
	local i rc=0 reason='' qrc='' t0 t_init=''
	t0=$EPOCHREALTIME
	for ((i = 0; i < G_CARDS; i++)); do
		g_start_emu "$i"
	done
	for ((i = 0; i < G_CARDS; i++)); do
		g_wait_emu "$i" || g_die "emulator $i did not create its socket (log: $G_RUN/emu$i.log)"
	done

	g_qemu_cmd "$(qemu_accel)"
	{
		printf 'qemu:'
		printf ' %q' "${G_QEMU_CMD[@]}"
		echo
	} >>"$G_RUN/cmdline"
	mkfifo "$G_RUN/serial.fifo"
	# The guest's serial input: /dev/null, or with --control a FIFO the relay writes answers to
	# (opened read-write: never blocks, never sends QEMU an EOF).
	local serial_in=/dev/null
	if ((G_CONTROL)); then
		mkfifo "$G_RUN/serial-in.fifo"
		exec {G_SERIAL_IN}<>"$G_RUN/serial-in.fifo"
		serial_in=$G_RUN/serial-in.fifo
	fi
	t0=$EPOCHREALTIME
	G_T0=$t0
	g_timestamper "$t0" &
	G_TS=$!
	setpriv --pdeathsig KILL -- unshare --mount --propagation private -- \
		bash -c "$G_NS_SCRIPT" qemu-ns "$CHROOT" "$RUNS" "${G_QEMU_CMD[@]}" \
		<"$serial_in" >"$G_RUN/serial.fifo" 2>"$G_RUN/qemu.log" &
	G_QEMU=$!
	if [[ -n $G_HOOK_CMD ]]; then
		GUEST_RUN_DIR=$G_RUN GUEST_CARDS=$G_CARDS setpriv --pdeathsig KILL -- \
			bash -c "$G_HOOK_CMD" </dev/null >"$G_RUN/hook.log" 2>&1 &
		G_HOOK=$!
	fi

	# Supervise: QEMU ends (normal), an emulator dies (QEMU would go on with a dead card), or the
	# hard timeout expires.
	local deadline=$((SECONDS + G_TIMEOUT))
	while g_alive "$G_QEMU"; do
		for ((i = 0; i < G_CARDS; i++)); do
			# (after a `host_ctl unplug`, QEMU hangs up and the emulator exits: expected)
			if ! g_alive "${G_EMUS[i]}" && ! ((${G_UNPLUGGED[i]:-0})); then
				reason="emulator $i exited while the guest was running"
				break 2
			fi
		done
		if ((SECONDS >= deadline)); then
			reason="timeout after $G_TIMEOUT s"
			break
		fi
		[[ -z $t_init ]] && grep -q '^QAIC-INIT: ' "$G_RUN/guest.log" 2>/dev/null && t_init=$(g_since "$t0")
		((G_CONTROL)) && g_ctl_relay
		sleep 0.1
	done
	if [[ -n $reason ]]; then
		warn "$reason: stopping QEMU"
		g_stop "$G_QEMU"
	fi
	wait "$G_QEMU" 2>/dev/null
	qrc=$?
	G_QEMU=
	local t_total
	t_total=$(g_since "$t0")
	[[ -n $G_SERIAL_IN ]] && exec {G_SERIAL_IN}>&- && rm -f "$G_RUN/serial-in.fifo"
	wait "$G_TS" 2>/dev/null
	G_TS=
	# QEMU is gone; an emulator that QEMU never connected to waits in accept() forever.
	for ((i = 0; i < G_CARDS; i++)); do
		for ((n = 0; n < 20; n++)); do g_alive "${G_EMUS[i]}" || break; sleep 0.1; done
	done
	g_stop "${G_EMUS[@]}"
	local hook_rc=''
	if [[ -n $G_HOOK ]]; then
		if g_alive "$G_HOOK"; then
			g_stop "$G_HOOK"
		else
			wait "$G_HOOK" 2>/dev/null
			hook_rc=$?
		fi
		G_HOOK=
	fi
	g_finish_logs

	local verdict passed failed
	verdict=$(guest_verdict "$G_RUN")
	passed=$(guest_tests "$G_RUN" | grep -c '^PASS ')
	failed=$(guest_tests "$G_RUN" | grep -c '^FAIL ')
	[[ -z $t_init ]] && grep -q '^QAIC-INIT: ' "$G_RUN/guest.log" && t_init=$t_total
	case $verdict in
	PASS) rc=0 ;;
	FAIL) rc=1 ;;
	*)
		rc=2
		if [[ -z $reason && -z $t_init && $qrc != 0 ]]; then
			rc=3
			reason="QEMU failed (status $qrc) before the guest ran /init"
			grep -v '^qemu-system-x86_64: warning: ' "$G_RUN/qemu.log" | tail -n 5 >&2
		elif [[ -z $reason ]]; then
			reason="guest ended without a verdict (status $qrc; crash or panic? see guest.log)"
		fi
		;;
	esac
	[[ $reason == emulator* ]] && rc=3
	for ((i = 0; i < G_CARDS; i++)); do
		if grep -q 'panicked at' "$G_RUN/emu$i.log"; then
			warn "emulator $i panicked (log: $G_RUN/emu$i.log)"
			rc=3
			reason+="${reason:+; }emulator $i panicked"
		fi
	done
	if [[ -n $hook_rc && $hook_rc != 0 ]]; then
		warn "hook exited with status $hook_rc (log: $G_RUN/hook.log)"
		((rc == 0)) && rc=1
		reason+="${reason:+; }hook exited with status $hook_rc"
	fi
	{
		echo "name=$G_NAME"
		echo "verdict=$verdict"
		echo "rc=$rc"
		echo "reason=$reason"
		echo "passed=$passed"
		echo "failed=$failed"
		echo "cards=$G_CARDS"
		echo "iommu=$G_IOMMU"
		echo "qemu_status=$qrc"
		echo "t_initramfs=$G_T_INITRAMFS"
		echo "t_init=${t_init:-}"
		echo "t_total=$t_total"
	} >"$G_RUN/result"

	rm -f "$G_RUN/serial.fifo"

	log "guest $G_NAME: $verdict ($passed passed, $failed failed)${reason:+ - $reason};" \
		"QEMU start to /init ${t_init:-n/a} s, total $t_total s; logs: $RUNS/$G_NAME/"
	exit "$rc"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	guest_main "$@"
fi
