#!/bin/bash
# SPDX-License-Identifier: MIT
# Slurm TaskProlog (run as the job's user before each task; each "export
# NAME=VALUE" line it prints is set in the task's environment): points the
# task at its stokerd, and preloads the shim when the job maps paths to
# datasets (STOKER_SHIM_MAP, or the site's STOKER_SLURM_SHIM_MAP).
conf=${STOKER_SLURM_CONF:-/etc/default/stoker-slurm}
# shellcheck source=/dev/null
[ -r "$conf" ] && . "$conf"
run=${STOKER_SLURM_RUNDIR:-/run/stoker}
if [ "${STOKER_SLURM_MODE:-job}" = job ]; then
	sock=$run/job-$SLURM_JOB_ID/stoker.sock
else
	sock=${STOKER_NODE_SOCKET:-/run/stoker/stoker.sock}
fi
[ -S "$sock" ] || exit 0 # no daemon: the task runs as it would without stoker
echo "export STOKER_SOCKET=$sock"
map=${STOKER_SHIM_MAP:-${STOKER_SLURM_SHIM_MAP:-}}
lib=${STOKER_SHIM_LIB:-/usr/local/lib/libstoker_shim.so}
if [ -n "$map" ] && [ -r "$lib" ]; then
	echo "export STOKER_SHIM_MAP=$map"
	case ":${LD_PRELOAD:-}:" in
	*":$lib:"*) ;;
	*) echo "export LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD}" ;;
	esac
fi
exit 0
