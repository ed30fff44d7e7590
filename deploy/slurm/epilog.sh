#!/bin/bash
# SPDX-License-Identifier: MIT
# Slurm Epilog (root, on each node, after the job): stops the job's stokerd
# that prolog.sh started (SIGTERM: it finishes in-flight fetches; SIGKILL
# after STOKER_SLURM_STOP_WAIT seconds, 35 by default) and removes its
# directory.  With STOKER_SLURM_MODE=node it does nothing.
set -uo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
conf=${STOKER_SLURM_CONF:-/etc/default/stoker-slurm}
# shellcheck source=/dev/null
[ -r "$conf" ] && . "$conf"
[ "${STOKER_SLURM_MODE:-job}" = job ] || exit 0

job=${SLURM_JOB_ID:?SLURM_JOB_ID not set: not run by slurmd}
uid=${SLURM_JOB_UID:?}
run=${STOKER_SLURM_RUNDIR:-/run/stoker}
stokerd=${STOKERD:-/usr/local/bin/stokerd}
pidfile=$run/job-$job.pid

# The pid is ours to signal only while it is still this job's stokerd: the
# job's user, the stokerd binary (pids are reused).
ours() {
	local p=$1
	[ -d "/proc/$p" ] && [ "$(stat -c %u "/proc/$p")" = "$uid" ] &&
		[ "$(readlink -f "/proc/$p/exe")" = "$(readlink -f "$stokerd")" ]
}
if [ -r "$pidfile" ]; then
	pid=$(cat "$pidfile")
	if [[ $pid =~ ^[0-9]+$ ]] && ours "$pid"; then
		kill -TERM "$pid"
		for _ in $(seq $((${STOKER_SLURM_STOP_WAIT:-35} * 10))); do
			ours "$pid" || break
			sleep 0.1
		done
		ours "$pid" && kill -KILL "$pid"
	fi
fi
rm -rf "${run:?}/job-$job" "$pidfile"
exit 0
