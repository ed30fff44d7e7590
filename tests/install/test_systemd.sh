#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/systemd: stoker.env.example names only variables stokerd reads (the
# twins `stokerd --help` lists), the unit configures stokerd through them
# alone, systemd-analyze verify accepts the unit with no warning, and, where
# strace is installed (and the tree is not sanitized), every system call
# stokerd makes serving a dataset from RAM and tier 1 is in the unit's
# SystemCallFilter.  Exit 77 (skip): no systemd-analyze, all else passed.
# Usage: test_systemd.sh SOURCE_DIR STOKERD STOKER_CLI MAN_DIR WORKDIR SANITIZED(ON|OFF)
set -euo pipefail
src=$1 stokerd=$2 cli=$3 mandir=$4 work=$5 sanitized=$6
unit=$src/deploy/systemd/stokerd.service
envf=$src/deploy/systemd/stoker.env.example
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
rm -rf "$work" && mkdir -p "$work"

help=$("$stokerd" --help)
n=0
while read -r name; do
	grep -qw -- "$name" <<<"$help" || fail "stoker.env.example sets $name, which stokerd --help does not name"
	n=$((n + 1))
done < <(sed -nE 's/^#?([A-Z][A-Z0-9_]*)=.*/\1/p' "$envf")
[ "$n" -ge 5 ] || fail "stoker.env.example: only $n variables found"
echo "stoker.env.example: $n variables, each a twin stokerd --help names"
# Flags only through the environment file: ExecStart runs the bare binary.
if [ "$(grep -c '^ExecStart=' "$unit")" != 1 ] || ! grep -qx 'ExecStart=/usr/local/bin/stokerd' "$unit"; then
	fail "ExecStart= must be the bare /usr/local/bin/stokerd (configuration goes in /etc/default/stoker)"
fi
grep -qx 'EnvironmentFile=-/etc/default/stoker' "$unit" || fail "no EnvironmentFile=-/etc/default/stoker"
grep -qx 'RuntimeDirectory=stoker' "$unit" || fail "no RuntimeDirectory=stoker (/run/stoker)"

if [ "$sanitized" != ON ] && command -v strace >/dev/null && command -v systemd-analyze >/dev/null; then
	filter=$(sed -n 's/^SystemCallFilter=//p' "$unit")
	[ -n "$filter" ] || fail "no SystemCallFilter= in the unit"
	mkdir -p "$work/data" "$work/nvme"
	for i in 1 2 3; do head -c 200000 /dev/urandom >"$work/data/o$i"; done
	strace -f -qq -o "$work/trace" "$stokerd" --foreground --socket "$work/s.sock" --ram 16M \
		--metrics 127.0.0.1:0 --allow-root "$work/data" --nvme-dir "$work/nvme" --nvme 16M \
		>"$work/stokerd.log" 2>&1 &
	tpid=$!
	for _ in $(seq 200); do [ -S "$work/s.sock" ] && break; sleep 0.05; done
	STOKER_SOCKET=$work/s.sock "$cli" warm "file://$work/data/" >/dev/null ||
		fail "warm under strace: $(cat "$work/stokerd.log")"
	STOKER_SOCKET=$work/s.sock "$cli" cat "file://$work/data/o1" | cmp - "$work/data/o1" ||
		fail "cat under strace"
	kill -TERM "$(awk 'NR == 1 { print $1 }' "$work/trace")"
	wait "$tpid" || true
	used=$(sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$work/trace" | sort -u)
	[ "$(wc -w <<<"$used")" -ge 20 ] || fail "strace saw only: $used"
	bad=$(systemd-analyze syscall-filter 2>/dev/null | python3 -c '
import sys
groups, cur = {}, None
for line in sys.stdin:
    s = line.strip()
    if line.startswith("@"):
        cur = s
        groups[cur] = []
    elif cur and s and not s.startswith("#"):
        groups[cur].append(s)
def expand(x):
    if not x.startswith("@"):
        return {x}
    return set().union(*(expand(y) for y in groups.get(x, [])))
allowed = set().union(*(expand(x) for x in sys.argv[1].split()))
print(" ".join(sorted(set(sys.argv[2].split()) - allowed)))
' "$filter" "$used")
	[ -z "$bad" ] || fail "stokerd calls $bad, which SystemCallFilter=$filter refuses"
	echo "SystemCallFilter=$filter allows all $(wc -w <<<"$used") system calls stokerd made"
else
	echo "the system calls were not checked (strace missing, or a sanitized tree)" >&2
fi

if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not installed (Debian: systemd): the unit was not verified" >&2
	exit 77
fi
# The unit as installed, with ExecStart= naming this build's stokerd (verify
# checks that it exists) and Documentation=man:stokerd(8) found in the build.
sed "s|^ExecStart=/usr/local/bin/stokerd|ExecStart=$stokerd|" "$unit" >"$work/stokerd.service"
man=()
if [ -r "$mandir/stokerd.8" ]; then
	mkdir -p "$work/man/man8" && cp "$mandir/stokerd.8" "$work/man/man8/"
	export MANPATH=$work/man
else
	man=(--man=no)
fi
out=$(systemd-analyze verify "${man[@]}" "$work/stokerd.service" 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "systemd-analyze verify: clean"
echo "deploy_systemd_unit: ok"
