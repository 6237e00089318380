#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# 30-uapi-abi.sh - prove that uapi/qaic_accel.h is ABI- and source-compatible with the upstream
# include/uapi/drm/qaic_accel.h of the pinned kernel source.
#
#  1. uapi/abi-check/abi-dump.c is built once per header and prints every struct size and
#     alignment, every member offset/size/signedness, every constant and ioctl number; the two
#     outputs are compared line by line (one test per line).
#  2. Coverage: every struct, member and macro of the upstream header must appear in the dump, and
#     both headers must define the same set of structs and macros (so nothing is left unchecked).
#  3. Build modes: each header must compile as C90 with -Werror (like the kernel's uapi header
#     test), as C++, and for 32-bit x86 with the 64-bit offsets asserted at compile time.
#  4. In-kernel: once a kernel build exists, the upstream C driver's files are compiled with the
#     kernel's own commands against our header.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

UP_HDR=$KSRC/include/uapi/drm/qaic_accel.h
OUR_HDR=$REPO/uapi/qaic_accel.h
SRC=$REPO/uapi/abi-check/abi-dump.c
[[ -f $UP_HDR ]] || { record 0 1 "uapi ABI vs upstream (no upstream header at $UP_HDR)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Userspace view of the unexported kernel uapi tree: silence the "kernel headers from user space"
# guard, drop __user like headers_install does, and provide the asm/ wrappers the kernel would
# generate (needed for the 32-bit build; the 64-bit one uses the system's asm/ headers).
mkdir -p "$work/shim/asm"
for f in types ioctl; do echo "#include <asm-generic/$f.h>" >"$work/shim/asm/$f.h"; done
UFLAGS=(-D__EXPORTED_HEADERS__ -D__user= -I "$KSRC/include/uapi/drm" -I "$KSRC/include/uapi")

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# ---- 1. ABI dump, compared line by line --------------------------------------------------------
dump() { # dump NAME HEADER
	gcc -std=gnu11 -O0 -Wall -Wextra -Werror "${UFLAGS[@]}" -DQAIC_HEADER="\"$2\"" \
		"$SRC" -o "$work/dump-$1" && "$work/dump-$1" >"$work/$1.txt"
}
dump upstream "$UP_HDR" || { record 0 1 "uapi ABI vs upstream (upstream build failed)"; exit 1; }
dump ours "$OUR_HDR" || { record 0 1 "uapi ABI vs upstream (our header failed to build)"; exit 1; }

read -r p f < <(awk 'NR == FNR { a[FNR] = $0; n = FNR; next }
	{ b[FNR] = $0; m = FNR }
	END { max = n > m ? n : m; for (i = 1; i <= max; i++) if (a[i] == b[i]) p++; else f++
	      print p + 0, f + 0 }' "$work/upstream.txt" "$work/ours.txt")
# The dump must be substantial: 24 structs, 85 members, 40 constants, 9 ioctls in Linux 7.3.
lines=$(grep -c . "$work/upstream.txt")
if ((lines < 150)); then bad "dump has only $lines lines"; fi
if ((f > 0)); then
	echo "ABI differences (upstream < > ours):"
	diff "$work/upstream.txt" "$work/ours.txt"
fi
tail -n1 "$work/ours.txt"
echo "dump lines compared: $((p + f)), identical: $p, different: $f"
record "$p" "$f" "uapi ABI vs upstream"

# ---- 2. Coverage of the dump, and same set of names in both headers -----------------------------
macros() { # the qaic macro names a header defines, without its include guard
	echo "#include \"$1\"" | gcc -E -dM "${UFLAGS[@]}" -x c - |
		awk '$1 == "#define" && $2 ~ /^(QAIC_|DRM_QAIC_|DRM_IOCTL_QAIC_)/ && $2 != "QAIC_ACCEL_H_" { print $2 }' |
		sort
}
structs() { grep -oE '^struct qaic_[a-z0-9_]+ \{' "$1" | awk '{ print $2 }' | sort; }
members() { # "struct.member" for every member of every struct in a header
	awk '/^struct qaic_[a-z0-9_]+ \{/ { s = $2; next }
	     s != "" && /^\};/ { s = ""; next }
	     s != "" && /;/ { line = $0; sub(/;.*/, "", line); sub(/\[.*\]/, "", line)
	                      n = split(line, w, /[ \t*]+/); print s "." w[n] }' "$1" | sort
}

macros "$UP_HDR" >"$work/up.macros"
macros "$OUR_HDR" >"$work/our.macros"
if [[ -s $work/up.macros ]] && cmp -s "$work/up.macros" "$work/our.macros"; then ok; else
	bad "macro sets differ:"; diff "$work/up.macros" "$work/our.macros"; fi
if cmp -s <(structs "$UP_HDR") <(structs "$OUR_HDR"); then ok; else bad "struct sets differ"; fi
if cmp -s <(members "$UP_HDR") <(members "$OUR_HDR"); then ok; else
	bad "member lists differ:"; diff <(members "$UP_HDR") <(members "$OUR_HDR"); fi

while read -r m; do
	if grep -qE "^(const|ioctl) $m " "$work/upstream.txt"; then ok; else bad "macro $m not in dump"; fi
done <"$work/up.macros"
while read -r s; do
	if grep -qE "^struct $s " "$work/upstream.txt"; then ok; else bad "struct $s not in dump"; fi
done < <(structs "$UP_HDR")
while read -r m; do
	if grep -qE "^  $m " "$work/upstream.txt"; then ok; else bad "member $m not in dump"; fi
done < <(members "$UP_HDR")

# ---- 3. Build modes ------------------------------------------------------------------------------
# 32-bit layout: assert the 64-bit numbers of the upstream dump at compile time with -m32.
{
	echo '#include <stddef.h>'
	echo '#include QAIC_HEADER'
	awk '$1 == "struct" { printf "_Static_assert(sizeof(struct %s) == %s, \"%s\");\n", $2, $4, $2 }
	     $1 ~ /\./ && $2 == "off" { split($1, sf, "."); f = sf[2]
	        printf "_Static_assert(offsetof(struct %s, %s) == %s, \"%s\");\n", sf[1], f, $3, $1 }
	     $1 == "ioctl" { printf "_Static_assert(%s == %sU, \"%s\");\n", $2, $4, $2 }
	     $1 == "const" && $2 != "QAIC_MANAGE_MAX_MSG_LENGTH" {
	        printf "_Static_assert(%s == %s, \"%s\");\n", $2, $4, $2 }' "$work/upstream.txt"
} >"$work/layout32.c"
for h in "$UP_HDR" "$OUR_HDR"; do
	name=$([[ $h == "$OUR_HDR" ]] && echo ours || echo upstream)
	if gcc -m32 -std=gnu11 -c -Werror -D__EXPORTED_HEADERS__ -D__user= -I "$KSRC/include/uapi/drm" \
		-I "$KSRC/arch/x86/include/uapi" -I "$work/shim" -I "$KSRC/include/uapi" \
		-DQAIC_HEADER="\"$h\"" "$work/layout32.c" -o "$work/l32.o"; then ok; else
		bad "$name: 32-bit layout differs from the 64-bit one"; fi
	# Kernel-style uapi header test: C90, all warnings are errors.
	if echo "#include \"$h\"" | gcc -std=c90 -Wall -Werror -fsyntax-only "${UFLAGS[@]}" -x c -; then ok; else
		bad "$name: does not compile as C90"; fi
	# C++ users: the header must compile and give C linkage to nothing but types.
	if printf '#include "%s"\nint main() { qaic_wait w = qaic_wait(); return (int)sizeof(w) + DRM_QAIC_WAIT_BO; }\n' "$h" |
		g++ -std=c++17 -Wall -Werror -fsyntax-only "${UFLAGS[@]}" -x c++ -; then ok; else
		bad "$name: does not compile as C++"; fi
done
# The kernel's own consistency checks for exported headers (includes, extern, CONFIG_ leaks).
if [[ -f $KSRC/usr/include/headers_check.pl ]]; then
	if perl "$KSRC/usr/include/headers_check.pl" "$KSRC/include/uapi" "$OUR_HDR"; then ok; else
		bad "uapi/qaic_accel.h: headers_check.pl"; fi
fi
# Licence line required for a uapi header written in this project.
if head -n1 "$OUR_HDR" | grep -qF 'SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note'; then ok; else
	bad "uapi/qaic_accel.h: wrong SPDX line"; fi

# ---- 4. In-kernel: the upstream C driver compiled against our header -------------------------------
# Replays the kernel build's own compile commands for drivers/accel/qaic/*.c with a shadow
# include/uapi/drm/ in front, where qaic_accel.h is ours and every other header is the kernel's.
# Needs a finished kernel build ($KBUILD/compile_commands.json); skipped (not counted) before that.
if [[ -f $KBUILD/compile_commands.json ]] && command -v python3 >/dev/null; then
	mkdir -p "$work/kshadow/uapi/drm"
	cmds=$(python3 - "$KBUILD/compile_commands.json" "$work" <<'PY'
import json, shlex, sys
work = sys.argv[2]
for e in json.load(open(sys.argv[1])):
    if "/drivers/accel/qaic/" not in e["file"] or not e["file"].endswith(".c"):
        continue
    args = shlex.split(e["command"])
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a.startswith("-Wp,-MMD"):
            continue
        if a == "-o":
            out += ["-o", f"{work}/kdrv.o"]
            skip = True
            continue
        out.append(a)
    out.insert(1, f"-I{work}/kshadow")
    print(e["directory"] + "\t" + e["file"] + "\t" + shlex.join(out))
PY
)
	if [[ -n $cmds ]]; then
		# the drm uapi directory of the tree the commands compile from
		src=$(head -n1 <<<"$cmds" | cut -f2)
		kinc=${src%/drivers/accel/qaic/*}/include/uapi/drm
		for hf in "$kinc"/*.h; do ln -s "$hf" "$work/kshadow/uapi/drm/"; done
		rm "$work/kshadow/uapi/drm/qaic_accel.h"
		cp "$OUR_HDR" "$work/kshadow/uapi/drm/qaic_accel.h"
		while IFS=$'\t' read -r dir file cmd; do
			if (cd "$dir" && eval "$cmd"); then ok; else bad "in-kernel build of ${file##*/} against our header"; fi
		done <<<"$cmds"
		echo "in-kernel: upstream C driver built against uapi/qaic_accel.h ($(wc -l <<<"$cmds") files)"
	fi
else
	echo "in-kernel check skipped: no kernel build yet ($KBUILD/compile_commands.json)"
fi

echo "coverage and build-mode checks: $pass passed, $fail failed"
record "$pass" "$fail" "uapi coverage, build modes, in-kernel"

((f == 0 && fail == 0))
