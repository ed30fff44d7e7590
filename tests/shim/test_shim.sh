#!/bin/bash
# SPDX-License-Identifier: MIT
# test_shim: real programs under LD_PRELOAD=libstoker_shim.so (issue 10).
#
# Makes a dataset under WORKDIR/root/ds (nested directories, small files, a
# 3 MiB file, a WebDataset-style .tar shard), starts stokerd over it, maps a
# local prefix that does NOT exist (WORKDIR/mnt/ds) to file://ROOT/ds/, and
# checks byte for byte against the originals: cat, sha256sum, dd, cp, tar,
# ls, find, stat, python3; ENOENT, EROFS; the errno details (shim_errno);
# fork and multiprocessing (shim_fork.py); then stokerd down.
#
# Usage: test_shim.sh SHIM STOKERD STOKER_CLI WORKDIR SHIM_ERRNO
set -u
SHIM=$1 STOKERD=$2 CLI=$3 WORK=$4 ERRNO_BIN=$5
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
WORK=$(cd "$WORK" && pwd)
ROOT=$WORK/root
DS=$ROOT/ds
MNT=$WORK/mnt/ds
SOCK=$WORK/stoker.sock
fails=0
daemon=

cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null; }
trap cleanup EXIT

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# Runs a command under the shim.
shim() { LD_PRELOAD=$SHIM STOKER_SOCKET=$SOCK STOKER_SHIM_MAP="$MNT=file://$DS/" "$@"; }

# The dataset.
mkdir -p "$DS"/train/n01/sub "$DS"/train/n02 "$DS"/shards "$DS/with space" || exit 1
printf 'hello\n' >"$DS/hello.txt"
for i in 1 2 3 4 5; do printf 'sample %d\n' $i >"$DS/train/n01/s$i.txt"; done
printf 'deep\n' >"$DS/train/n01/sub/deep.txt"
head -c 3145728 /dev/urandom >"$DS/train/n02/big.bin"
head -c 1000 /dev/urandom >"$DS/with space/odd name.bin"
: >"$DS/empty"
(cd "$DS/train" && tar -cf "$DS/shards/shard-000000.tar" n01) || exit 1

"$STOKERD" -f --socket "$SOCK" --allow-root "$ROOT" --ram 256M --metrics off \
	>"$WORK/stokerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "stokerd did not start"; cat "$WORK/stokerd.log"; exit 1; }
[ ! -e "$MNT" ] || { echo "$MNT must not exist"; exit 1; }

# Byte for byte.
[ "$(shim cat "$MNT/hello.txt")" = hello ] && ok cat || fail cat
for f in train/n02/big.bin "with space/odd name.bin" train/n01/s3.txt empty; do
	a=$(shim sha256sum "$MNT/$f" | cut -d' ' -f1)
	b=$(sha256sum "$DS/$f" | cut -d' ' -f1)
	[ "$a" = "$b" ] && ok "sha256sum $f" || fail "sha256sum $f: $a != $b"
done
shim dd if="$MNT/train/n02/big.bin" bs=64k status=none | cmp - "$DS/train/n02/big.bin" &&
	ok "dd bs=64k" || fail "dd bs=64k"
shim cp "$MNT/train/n02/big.bin" "$WORK/copy.bin" && cmp "$WORK/copy.bin" "$DS/train/n02/big.bin" &&
	ok cp || fail cp
shim cp -r "$MNT" "$WORK/copytree" && diff -r "$WORK/copytree" "$DS" >/dev/null &&
	ok "cp -r" || fail "cp -r"
(cd "$WORK" && shim cat mnt/ds/train/n01/s1.txt | grep -q 'sample 1') &&
	ok "relative path from above the mapping" || fail "relative path from above the mapping"

# ".." never takes a mapped path out of its dataset: the shim leaves such a path
# to the real call (here ENOENT, as WORK/mnt has no secret.txt) rather than ask
# stokerd for ROOT/secret.txt, which lies below --allow-root but not below ds.
printf 'not in the dataset\n' >"$ROOT/secret.txt"
for p in "$MNT/../secret.txt" "$MNT/train/../../secret.txt" "$MNT/train/n01/../../../secret.txt"; do
	out=$(shim cat "$p" 2>&1)
	case $out in
	*"not in the dataset"*) fail "cat $p escaped the dataset" ;;
	*"No such file"*) ok "cat $p stays out of the dataset" ;;
	*) fail "cat $p: $out" ;;
	esac
done
[ "$(shim cat "$MNT/train/../hello.txt")" = hello ] && ok ".. inside the mapping" ||
	fail ".. inside the mapping"

# tar over the shard.
a=$(shim tar -tvf "$MNT/shards/shard-000000.tar" | awk '{print $NF}' | sort)
b=$(tar -tvf "$DS/shards/shard-000000.tar" | awk '{print $NF}' | sort)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "tar -tvf" || fail "tar -tvf: $a"
mkdir -p "$WORK/x" && (cd "$WORK/x" && shim tar -xf "$MNT/shards/shard-000000.tar") &&
	diff -r "$WORK/x/n01" "$DS/train/n01" >/dev/null && ok "tar -xf" || fail "tar -xf"

# The tree.
a=$(shim find "$MNT" | sed "s|^$MNT||" | sort)
b=$(find "$DS" | sed "s|^$DS||" | sort)
[ "$a" = "$b" ] && ok find || fail "find: $(diff <(echo "$a") <(echo "$b"))"
a=$(shim find "$MNT" -type f -size +1M | sed "s|^$MNT||")
[ "$a" = /train/n02/big.bin ] && ok "find -type f -size" || fail "find -type f -size: $a"
out=$(shim ls -la "$MNT/train" 2>&1)
echo "$out" | grep -q '^dr-xr-xr-x.* n01$' && echo "$out" | grep -q '^dr-xr-xr-x.* n02$' &&
	ok "ls -la" || fail "ls -la: $out"
shim ls -la "$MNT" >/dev/null && ok "ls -la of the mapping's root (its .. too)" || fail "ls -la root"
out=$(shim ls -l "$MNT/train/n02" 2>&1)
echo "$out" | grep -q '^-r--r--r--.* 3145728 .* big.bin$' && ok "ls -l sizes" || fail "ls -l: $out"
[ "$(shim stat -c '%s %F %a' "$MNT/train/n02/big.bin")" = "3145728 regular file 444" ] &&
	ok stat || fail "stat: $(shim stat -c '%s %F %a' "$MNT/train/n02/big.bin")"
[ "$(shim stat -c '%F %a' "$MNT/train")" = "directory 555" ] && ok "stat dir" || fail "stat dir"

# Python.
shim $PY - "$MNT" "$DS" <<'PYEOF' && ok python || fail python
import os, sys
M, D = sys.argv[1], sys.argv[2]
def walk(top):
    return sorted((os.path.relpath(r, top), sorted(d), sorted(f)) for r, d, f in os.walk(top))
assert walk(M) == walk(D), (walk(M), walk(D))
for r, _, fs in os.walk(D):
    for f in fs:
        rel = os.path.relpath(os.path.join(r, f), D)
        with open(os.path.join(M, rel), "rb") as a, open(os.path.join(D, rel), "rb") as b:
            assert a.read() == b.read(), rel
        assert os.stat(os.path.join(M, rel)).st_size == os.stat(os.path.join(D, rel)).st_size
assert sorted(e.name for e in os.scandir(M)) == sorted(os.listdir(D))
assert {e.name: e.is_dir() for e in os.scandir(M + "/train")} == {"n01": True, "n02": True}
assert open(M + "/hello.txt").read() == "hello\n"
assert os.path.exists(M + "/train/n01/s1.txt") and os.path.isdir(M + "/train")
assert not os.path.exists(M + "/train/nope")
try:
    open(M + "/nope.txt")
    raise SystemExit("open of a missing mapped file succeeded")
except FileNotFoundError:
    pass
for mode in ("w", "a", "r+"):
    try:
        open(M + "/hello.txt", mode)
        raise SystemExit(f"open mode {mode} succeeded")
    except OSError as e:
        assert e.errno == 30, e  # EROFS
PYEOF

# Errors as a filesystem gives them.
out=$(shim cat "$MNT/nope.txt" 2>&1) && fail "cat of a missing file succeeded" ||
	{ echo "$out" | grep -q 'No such file' && ok "ENOENT" || fail "ENOENT: $out"; }
out=$(shim sh -c "echo x > '$MNT/hello.txt'" 2>&1) && fail "write succeeded" ||
	{ echo "$out" | grep -q 'Read-only file system' && ok EROFS || fail "EROFS: $out"; }
out=$(shim cp "$DS/hello.txt" "$MNT/train/new.txt" 2>&1) && fail "cp into the mapping" ||
	{ echo "$out" | grep -q 'Read-only file system' && ok "EROFS on create" || fail "create: $out"; }
shim "$ERRNO_BIN" "$MNT" "$DS" && ok shim_errno || fail shim_errno

# Fork, multiprocessing (fork, spawn, forkserver).
shim $PY "$HERE/shim_fork.py" "$MNT" "$DS" && ok shim_fork || fail shim_fork

# STOKER_PLAN_GROUP reaches the shim's connections, which each process makes
# for itself (after fork too): reads in a group across fork and
# multiprocessing, and a bad group refused with a message naming it.
STOKER_PLAN_GROUP=job-1/rank0 shim $PY "$HERE/shim_fork.py" "$MNT" "$DS" &&
	ok "shim_fork in a plan group" || fail "shim_fork in a plan group"
out=$(STOKER_PLAN_GROUP='rank 0' shim cat "$MNT/hello.txt" 2>&1) &&
	fail "a bad STOKER_PLAN_GROUP: the read succeeded" ||
	{ echo "$out" | grep -q '^stoker-shim: cannot reach stokerd.*STOKER_PLAN_GROUP: byte 4' &&
		ok "bad STOKER_PLAN_GROUP: $(echo "$out" | head -1)" || fail "bad STOKER_PLAN_GROUP: $out"; }

# Prefetch: the daemon served the gets and warmed the dataset.
gets=$(STOKER_SOCKET=$SOCK "$CLI" stats --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["gets"])')
[ "${gets:-0}" -gt 0 ] && ok "stokerd served $gets gets" || fail "stokerd served no gets"

# STOKER_SHIM_PLAN: the listed paths become the dataset's plan.
printf '%s\n' "$MNT/train/n01/s2.txt" "$MNT/hello.txt" "/elsewhere/x" >"$WORK/plan"
out=$(STOKER_SHIM_PLAN=$WORK/plan shim cat "$MNT/train/n01/s2.txt" 2>&1)
[ "$out" = "sample 2" ] && ok "STOKER_SHIM_PLAN" || fail "STOKER_SHIM_PLAN: $out"
out=$(STOKER_SHIM_PLAN=$WORK/no-such-plan shim cat "$MNT/hello.txt" 2>&1)
echo "$out" | grep -q "^stoker-shim: cannot read STOKER_SHIM_PLAN" && echo "$out" | grep -q '^hello$' &&
	ok "unreadable STOKER_SHIM_PLAN warms instead" || fail "unreadable plan: $out"

# Without STOKER_SHIM_MAP the shim is inert.
[ "$(LD_PRELOAD=$SHIM cat "$DS/hello.txt")" = hello ] && ok "no mappings" || fail "no mappings"

# A mapping of a local directory onto itself: served by stokerd while it runs.
self_map() { LD_PRELOAD=$SHIM STOKER_SOCKET=$SOCK STOKER_SHIM_MAP="$DS=file://$DS/" "$@"; }
[ "$(self_map cat "$DS/hello.txt")" = hello ] && ok "self mapping" || fail "self mapping"

# stokerd down: local files still read, the self mapping falls back with a
# log line, the absent mapping gives ENOENT.
kill "$daemon" && wait "$daemon" 2>/dev/null
daemon=
[ "$(shim cat "$DS/hello.txt")" = hello ] && ok "unmapped with stokerd down" ||
	fail "unmapped with stokerd down"
out=$(self_map cat "$DS/hello.txt" 2>"$WORK/err")
[ "$out" = hello ] && grep -q '^stoker-shim: ' "$WORK/err" && ok "fallback to local" ||
	fail "fallback: $out / $(cat "$WORK/err")"
out=$(shim cat "$MNT/hello.txt" 2>&1) && fail "mapped read with stokerd down succeeded" ||
	{ echo "$out" | grep -q '^stoker-shim: cannot reach stokerd' && echo "$out" | grep -q 'No such file' &&
		ok "mapped with stokerd down: $(echo "$out" | head -1)" || fail "stokerd down: $out"; }

if [ $fails -ne 0 ]; then
	echo "test_shim: $fails failed"
	exit 1
fi
echo "test_shim: all passed"
