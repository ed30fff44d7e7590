#!/bin/bash
# SPDX-License-Identifier: MIT
# Slurm Prolog (slurmd runs it as root on each node of a job, before the job):
# starts a stokerd for this job, as the job's user, listening on
# /run/stoker/job-$SLURM_JOB_ID/stoker.sock with a RAM budget taken from the
# job's allocation; epilog.sh stops it and task-prolog.sh exports the socket.
#   slurm.conf:  Prolog=/etc/slurm/stoker-prolog.sh
#                Epilog=/etc/slurm/stoker-epilog.sh
#                TaskProlog=/etc/slurm/stoker-task-prolog.sh
#                PrologFlags=Alloc   # run at allocation, so batch scripts see it too
# Settings: /etc/default/stoker-slurm (stoker-slurm.conf.example).  With
# STOKER_SLURM_MODE=node it does nothing: the node's systemd stokerd serves.
#
# A stokerd that fails to start is logged and the job runs without it (its
# clients fail to connect, saying so): exit 0, since a failing Prolog drains
# the node.  The daemon runs outside the job's cgroup, in slurmd's: its RAM
# tier is on top of the job's --mem, so size STOKER_SLURM_RAM_PERCENT with the
# node's free memory in mind (docs/deploy.md, "Slurm").
set -uo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
conf=${STOKER_SLURM_CONF:-/etc/default/stoker-slurm}
# shellcheck source=/dev/null
[ -r "$conf" ] && . "$conf"
[ "${STOKER_SLURM_MODE:-job}" = job ] || exit 0

job=${SLURM_JOB_ID:?SLURM_JOB_ID not set: not run by slurmd}
uid=${SLURM_JOB_UID:?}
gid=${SLURM_JOB_GID:-$(id -g "$uid")}
run=${STOKER_SLURM_RUNDIR:-/run/stoker}
dir=$run/job-$job
stokerd=${STOKERD:-/usr/local/bin/stokerd}
log() { logger -t stoker-prolog -- "job $job: $*" 2>/dev/null || echo "stoker-prolog: job $job: $*" >&2; }

# Bytes of memory the job has on this node (--mem), or nothing.
job_mem() {
	if [ -n "${STOKER_SLURM_JOB_MEM:-}" ]; then # given (tests, other schedulers' glue)
		echo "$STOKER_SLURM_JOB_MEM"
		return
	fi
	command -v scontrol >/dev/null || return 0
	scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n 's/^MinMemoryNode=//p' | head -1
}
to_bytes() { # 64G, 512M (scontrol's units; plain numbers are MiB) -> bytes
	local v=${1%[KMGTkmgt]} u=${1##*[0-9]}
	case $u in
	K | k) echo $((v << 10)) ;; G | g) echo $((v << 30)) ;; T | t) echo $((v << 40)) ;;
	*) echo $((v << 20)) ;;
	esac
}
ram=${STOKER_SLURM_RAM:-}
if [ -z "$ram" ]; then
	mem=$(job_mem)
	if [[ $mem =~ ^[0-9]+[KMGTkmgt]?$ ]] && [ "$(to_bytes "$mem")" -gt 0 ]; then
		ram=$(($(to_bytes "$mem") * ${STOKER_SLURM_RAM_PERCENT:-25} / 100))
	else
		ram=${STOKER_SLURM_RAM_DEFAULT:-8G}
	fi
fi

# The socket's directory belongs to the job's user (stokerd makes the socket
# 0660, so the job's user and group connect); the pid file stays root's.
if ! { install -d -m 0755 "$run" && install -d -m 0700 -o "$uid" -g "$gid" "$dir"; }; then
	log "cannot create $dir"
	exit 0
fi
# Only stokerd's settings pass (STOKER_* and AWS_* of the configuration file),
# nothing else of slurmd's environment.  HOME is the user's: a per-job daemon
# signs S3 requests with the user's own ~/.aws credentials unless given others.
mapfile -t envs < <(compgen -v | grep -E '^(STOKER|AWS)_' | grep -vE '^STOKER_(SLURM_|SHIM_|NODE_SOCKET$|SOCKET$|RAM$)' |
	while read -r n; do printf '%s=%s\n' "$n" "${!n}"; done)
home=$(getent passwd "$uid" | cut -d: -f6)
setsid env -i PATH="$PATH" HOME="${home:-/}" "${envs[@]}" STOKER_SOCKET="$dir/stoker.sock" \
	STOKER_RAM="$ram" STOKER_FOREGROUND=1 \
	setpriv --reuid="$uid" --regid="$gid" --init-groups --no-new-privs -- "$stokerd" \
	</dev/null >>"$run/job-$job.log" 2>&1 &
pid=$!
echo "$pid" >"$run/job-$job.pid"
for _ in $(seq 200); do # up to 10 s for the socket
	[ -S "$dir/stoker.sock" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -S "$dir/stoker.sock" ]; then
	log "stokerd $pid on $dir/stoker.sock, RAM $ram"
else
	log "stokerd did not start (see $run/job-$job.log)"
fi
exit 0
