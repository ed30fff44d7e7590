#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/slurm's scripts: they parse (bash -n), pass shellcheck where it is
# installed, and work with a fake Slurm environment (this user as the job's):
# the prolog starts a per-job stokerd with 10% of the job's 1 GiB, the task
# prolog exports its socket and the shim, a client reads through it, the
# epilog stops it and cleans up; in node mode they point at a node daemon.
# Usage: test_slurm.sh SOURCE_DIR STOKERD STOKER_CLI SHIM_LIB WORKDIR
set -euo pipefail
src=$1 stokerd=$2 cli=$3 shim=$4 work=$5
d=$src/deploy/slurm
fail() {
	echo "FAIL: $*" >&2
	[ -r "$work/run/job-4242.log" ] && sed 's/^/  job log: /' "$work/run/job-4242.log" >&2
	exit 1
}
for f in prolog.sh epilog.sh task-prolog.sh stoker-slurm.conf.example; do
	bash -n "$d/$f" || fail "bash -n $f"
done
if command -v shellcheck >/dev/null; then
	shellcheck -s bash "$d"/prolog.sh "$d"/epilog.sh "$d"/task-prolog.sh || fail "shellcheck"
	echo "shellcheck: clean"
else
	echo "shellcheck not installed (Debian: shellcheck): only bash -n was checked" >&2
fi

rm -rf "$work" && mkdir -p "$work/data"
printf 'via slurm\n' >"$work/data/a.txt"
conf=$work/stoker-slurm.conf
# The example configuration, with this test's paths after it.
{
	cat "$d/stoker-slurm.conf.example"
	echo "STOKERD=$stokerd"
	echo "STOKER_SLURM_RUNDIR=$work/run"
	echo "STOKER_ALLOW_ROOT=$work/data"
	echo "STOKER_SLURM_JOB_MEM=1G"
	echo "STOKER_SLURM_RAM_PERCENT=10"
	echo "STOKER_SHIM_LIB=$shim"
} >"$conf"
SLURM_JOB_UID=$(id -u)
SLURM_JOB_GID=$(id -g)
export STOKER_SLURM_CONF=$conf SLURM_JOB_ID=4242 SLURM_JOB_UID SLURM_JOB_GID
sock=$work/run/job-4242/stoker.sock
trap '"$d/epilog.sh" >/dev/null 2>&1 || true' EXIT

"$d/prolog.sh" || fail "prolog exited $?"
[ -S "$sock" ] || fail "no socket $sock after the prolog"
[ "$(stat -c %a "$work/run/job-4242")" = 700 ] || fail "job directory mode"
pid=$(cat "$work/run/job-4242.pid")
[ "$(readlink -f "/proc/$pid/exe")" = "$(readlink -f "$stokerd")" ] || fail "pid file names $pid"

# The task prolog's exports, as slurmstepd would apply them.
exports=$(STOKER_SHIM_MAP="/mnt/x=file://$work/data/" "$d/task-prolog.sh")
echo "$exports"
grep -qx "export STOKER_SOCKET=$sock" <<<"$exports" || fail "task prolog: no STOKER_SOCKET"
grep -qx "export LD_PRELOAD=$shim" <<<"$exports" || fail "task prolog: no LD_PRELOAD"
grep -qx "export STOKER_SHIM_MAP=/mnt/x=file://$work/data/" <<<"$exports" ||
	fail "task prolog: no STOKER_SHIM_MAP"
if env -u STOKER_SHIM_MAP "$d/task-prolog.sh" | grep -q LD_PRELOAD; then
	fail "task prolog preloads the shim with no map"
fi
(
	eval "$exports"
	# RAM: 10% of the job's 1 GiB.
	budget=$(env -u LD_PRELOAD "$cli" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ram_budget"])')
	[ "$budget" = $(((1 << 30) / 10)) ] || fail "RAM budget $budget, not 10% of 1G"
	# An unmodified program reads the mapped path through the shim.
	[ "$(cat /mnt/x/a.txt)" = "via slurm" ] || fail "cat through the shim"
) || exit 1
echo "per-job stokerd $pid: RAM 10% of 1G, the shim reads through it"

"$d/epilog.sh" || fail "epilog exited $?"
# Gone, or a zombie: the prolog's shell has exited, and whoever reaps orphans
# here (a subreaper, not init) may not have yet.
state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
[ -z "$state" ] || [ "$state" = Z ] || fail "stokerd $pid still runs after the epilog ($state)"
if [ -e "$work/run/job-4242" ] || [ -e "$work/run/job-4242.pid" ]; then
	fail "epilog left files"
fi
# An epilog for a pid that is not this job's stokerd signals nothing.
sleep 30 &
other=$!
echo "$other" >"$work/run/job-4242.pid"
"$d/epilog.sh"
kill -0 "$other" || fail "the epilog killed a process that was not the job's stokerd"
kill "$other"

# Node mode: no per-job daemon; the task prolog names the node's socket.
echo "STOKER_SLURM_MODE=node" >>"$conf"
echo "STOKER_NODE_SOCKET=$work/node.sock" >>"$conf"
"$d/prolog.sh"
[ ! -e "$work/run/job-4242" ] || fail "node mode: the prolog started a daemon"
[ -z "$("$d/task-prolog.sh")" ] || fail "node mode: exports with no node daemon"
"$stokerd" --socket "$work/node.sock" --ram 16M --metrics off --foreground >"$work/node.log" 2>&1 &
npid=$!
for _ in $(seq 200); do [ -S "$work/node.sock" ] && break; sleep 0.05; done
[ "$("$d/task-prolog.sh" | head -1)" = "export STOKER_SOCKET=$work/node.sock" ] ||
	fail "node mode: task prolog"
kill "$npid"
wait "$npid" || true
echo "deploy_slurm_scripts: ok"
