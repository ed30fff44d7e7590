#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The one check to run on a GPU machine (from the repository root, with the
# bundle that scripts/device-bundle.sh made in .devbundle/):
#
#   a. the machine: GPU(s), PCIe link, CPUs, kernel;
#   b. the gpu/ tests on the real device (test_gpu_stager_device: a stager,
#      the pinned arena and the pipe, on a stokerd of the bundle; and the
#      fake-runtime test_gpu_stager) -> $OUT/gpu-test.log;
#   c. stoker-h2d (what stoker-bench --gpu runs): host-to-device GB/s of
#      stoker views from the pinned arena next to pageable and
#      cudaMallocHost memory, stokerd and the bench pinned to the client
#      cores -> $OUT/h2d.json, $OUT/h2d.log and the table in the summary;
#   d. cold HTTP ingest from nginx on loopback, the server pinned to its own
#      cores and the clients to theirs: stoker (warm --manifest of http://
#      URLs, a fresh stokerd per run), curl --parallel into tmpfs and to
#      /dev/null, aria2c, and N curl processes to /dev/null (the ceiling) and
#      into tmpfs; one run per setting (tuning), then ROUNDS rounds in
#      rotated order; medians of MB/s and client CPU-seconds per GB
#      -> $OUT/http-ingest.txt, $OUT/http-runs.tsv and the summary.
#
# Everything goes to $OUT (default: a new temp dir, printed): summary.txt,
# gpu-test.log, h2d.json, h2d.log, http-ingest.txt, http-runs.tsv, logs.txt.
# A step that cannot run (no GPU, no bundle, too little time) says why in
# the summary and the script goes on; it enforces its own time budget
# (--budget, default 390 s) with a timeout on every step.
#
# Cores: the CPUs this process may use are split in two halves, client
# (stokerd, stoker-h2d, the download tools) and server (nginx), at most 8
# each: 0-7 and 8-15 on a 16-core machine; on one CPU both share it.
#
# Usage: bash scripts/device-check.sh [--budget S] [--rounds R] [--no-tune]
#            [--files N] [--file-mib M] [--skip-gpu-test] [--skip-h2d]
#            [--skip-http] [--bundle FILE]
set -uo pipefail

BUDGET=390
ROUNDS=3
TUNE=1
NFILES=64
FILE_MIB=64
SKIP_GPU_TEST=0
SKIP_H2D=0
SKIP_HTTP=0
T_START=$(date +%s)
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd -P)
BUNDLE=$REPO/.devbundle/bundle.tar.gz

while [ $# -gt 0 ]; do
	case "$1" in
	--budget) BUDGET=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--no-tune) TUNE=0; shift ;;
	--files) NFILES=$2; shift 2 ;;
	--file-mib) FILE_MIB=$2; shift 2 ;;
	--skip-gpu-test) SKIP_GPU_TEST=1; shift ;;
	--skip-h2d) SKIP_H2D=1; shift ;;
	--skip-http) SKIP_HTTP=1; shift ;;
	--bundle) BUNDLE=$2; shift 2 ;;
	-h|--help) sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "device-check: unknown option $1" >&2; exit 2 ;;
	esac
done
for v in "$BUDGET" "$ROUNDS" "$NFILES" "$FILE_MIB"; do
	case "$v" in ''|*[!0-9]*|0) echo "device-check: counts must be positive integers" >&2; exit 2 ;; esac
done

if [ -z "${OUT:-}" ]; then
	OUT=$(mktemp -d /tmp/stoker-devcheck-out.XXXXXX)
	echo "device-check: \$OUT not set; writing to $OUT" >&2
fi
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
LOGS=$OUT/logs.txt
: >"$SUMMARY"
: >"$LOGS"

elapsed() { echo $(($(date +%s) - T_START)); }
left() { echo $((T_START + BUDGET - $(date +%s))); }
# A step's time limit: what it wants, but never past the budget (less a reserve).
limit() { # wanted-seconds [reserve]
	local l=$(($(left) - ${2:-15}))
	[ "$l" -lt "$1" ] || l=$1
	[ "$l" -gt 1 ] || l=1
	echo "$l"
}
say() { printf '%s\n' "$*" | tee -a "$SUMMARY" >&2; }
note() { printf '[%4ss] %s\n' "$(elapsed)" "$*" | tee -a "$LOGS" >&2; }

# ---------------------------------------------------------------- cleanup
RT=""
DATA=""
MOUNTED=""
DP=""
NGX_PID=""
stop_pid() { # pid: SIGTERM, up to 10 s, then SIGKILL; returns its exit status
	local p=$1 i rc=0
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null || rc=$?
	return "$rc"
}
cleanup() {
	stop_pid "$DP"
	stop_pid "$NGX_PID"
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null
	[ -z "$DATA" ] || rm -rf -- "$DATA"
	[ -z "$RT" ] || rm -rf -- "$RT"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- the bundle
say "# stoker device check, $(date -u +%Y-%m-%dT%H:%M:%SZ), budget ${BUDGET} s"
RT=$(mktemp -d /tmp/stoker-devcheck.XXXXXX)
if [ ! -f "$BUNDLE" ]; then
	say "bundle: MISSING ($BUNDLE): run scripts/device-bundle.sh first and carry .devbundle"
	exit 1
fi
if ! tar -xzf "$BUNDLE" -C "$RT" 2>>"$LOGS" &&
	! python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE" "$RT"; then
	say "bundle: cannot unpack $BUNDLE"
	exit 1
fi
B=$RT/bin	# wrappers: the bundle's lib/ for their own binary only
X=$RT/libexec	# the binaries themselves
[ -f "$(dirname "$BUNDLE")/MANIFEST.txt" ] && sed -n '2,5p' "$(dirname "$BUNDLE")/MANIFEST.txt" | sed 's/^/bundle: /' | tee -a "$SUMMARY" >&2
for n in stokerd stoker stoker-h2d curl aria2c nginx time; do
	[ -x "$B/$n" ] || { say "bundle: $n missing"; exit 1; }
done
TIME=$B/time
TASKSET=$(command -v taskset || true)
[ -n "$TASKSET" ] || { [ -x "$X/taskset" ] && TASKSET=$X/taskset; }

# ---------------------------------------------------------------- a. the machine
say ""
say "## machine"
say "kernel: $(uname -srm); nproc: $(nproc); $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo); uid $(id -u); ulimit -l $(ulimit -l)"
say "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); NUMA nodes: $(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)"
if command -v nvidia-smi >/dev/null; then
	timeout 20 nvidia-smi -L 2>&1 | sed 's/^/gpu: /' | tee -a "$SUMMARY" >&2
	timeout 20 nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,memory.total \
		--format=csv 2>&1 | sed 's/^/gpu: /' | tee -a "$SUMMARY" >&2
	{ echo "== nvidia-smi topo -m"; timeout 20 nvidia-smi topo -m 2>&1; echo "== nvidia-smi"; timeout 20 nvidia-smi 2>&1; } >>"$LOGS"
else
	say "gpu: nvidia-smi not found (no NVIDIA driver here)"
fi

# The CPUs we may use, split into client and server halves (at most 8 each).
expand_cpus() { # "0-3,8,10-11" -> one CPU a line
	local part
	IFS=, read -r -a parts <<<"$1"
	for part in "${parts[@]}"; do
		case "$part" in *-*) seq "${part%-*}" "${part#*-}" ;; *) echo "$part" ;; esac
	done
}
mapfile -t CPUS < <(expand_cpus "$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)")
NC=${#CPUS[@]}
if [ "$NC" -ge 2 ]; then
	half=$((NC / 2))
	nclient=$((half < 8 ? half : 8))
	nserver=$(((NC - half) < 8 ? (NC - half) : 8))
	CLIENT=$(IFS=,; echo "${CPUS[*]:0:$nclient}")
	SERVER=$(IFS=,; echo "${CPUS[*]:$half:$nserver}")
else
	nclient=1; nserver=1
	CLIENT=${CPUS[0]:-0}; SERVER=$CLIENT
fi
if [ -n "$TASKSET" ]; then
	say "cpus: $NC usable; client cores $CLIENT ($nclient), server cores $SERVER ($nserver)"
else
	say "cpus: $NC usable; taskset not found: NOTHING IS PINNED (wanted client $CLIENT, server $SERVER)"
fi
pin() { # cpus command...
	local c=$1
	shift
	if [ -n "$TASKSET" ]; then "$TASKSET" -c "$c" "$@"; else "$@"; fi
}
# For "pin_bg CPUS cmd... &": the background subshell becomes the command, so
# $! is the daemon's own pid (to stop it, and to read its CPU time).
pin_bg() {
	local c=$1
	shift
	if [ -n "$TASKSET" ]; then exec "$TASKSET" -c "$c" "$@"; else exec "$@"; fi
}

# Where the data lives: tmpfs when there is room (and memory), else a tmpfs
# we mount (root), else /tmp (the page cache of a disk).
TOTAL=$((NFILES * FILE_MIB * 1048576))
H2D_BYTES=$((1536 * 1048576))
mem_avail=$(awk '/MemAvailable/ {printf "%.0f\n", $2 * 1024}' /proc/meminfo)
# Source files, a tmpfs copy, stokerd's copy and the pre-touch: 4x, and h2d's.
while [ "$SKIP_HTTP" = 0 ] && [ $((TOTAL * 4 + H2D_BYTES * 2)) -gt "$mem_avail" ] && [ "$NFILES" -gt 4 ]; do
	NFILES=$((NFILES / 2))
	TOTAL=$((NFILES * FILE_MIB * 1048576))
	say "memory: only $((mem_avail >> 30)) GiB available: HTTP dataset reduced to $NFILES files"
done
need=$((TOTAL * 2 + H2D_BYTES + (512 << 20)))
shm_avail=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
if [ -n "$shm_avail" ] && [ "$shm_avail" -ge "$need" ]; then
	DATA=$(mktemp -d /dev/shm/stoker-data.XXXXXX)
	DATA_KIND="tmpfs (/dev/shm)"
elif mkdir -p "$RT/shm" && mount -t tmpfs -o size=$((need + (1 << 30))) tmpfs "$RT/shm" 2>/dev/null; then
	MOUNTED=$RT/shm
	DATA=$(mktemp -d "$RT/shm/stoker-data.XXXXXX")
	DATA_KIND="tmpfs mounted by this script (/dev/shm has $((${shm_avail:-0} >> 20)) MiB free)"
else
	DATA=$(mktemp -d /tmp/stoker-data.XXXXXX)
	DATA_KIND="/tmp on $(df --output=fstype /tmp | tail -1) (/dev/shm has $((${shm_avail:-0} >> 20)) MiB free, no tmpfs mount allowed): copies land in the page cache of a disk"
fi
say "data: $DATA_KIND"
RAM_H2D=16G
[ "$mem_avail" -ge $((40 << 30)) ] || RAM_H2D=$((mem_avail / 3 >> 20))M

wait_sock() { # socket pid -> 0 when stokerd answers, 1 when it died or 10 s passed
	local i
	for i in $(seq 1 200); do
		kill -0 "$2" 2>/dev/null || return 1
		"$B/stoker" --socket "$1" stats >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- b. gpu tests
say ""
say "## gpu/ tests on the device"
if [ "$SKIP_GPU_TEST" = 1 ]; then
	say "skipped (--skip-gpu-test)"
else
	for t in test_gpu_stager_device test_gpu_stager; do
		{
			echo "== $t"
			STOKER_E2E_STOKERD="$B/stokerd" timeout -k 5 "$(limit 90)" "$B/$t" --verbose 2>&1
			echo "== $t: exit status $?"
		} >>"$OUT/gpu-test.log"
		res=$(awk -v t="$t" '
			/\[SKIP\]/ { skip = skip (skip ? "; " : "") $0 }
			/Synthesis:/ { syn = $0 }
			/exit status/ { rc = $NF }
			END {
				sub(/.*Synthesis: /, "", syn)
				if (rc == 124 || rc == 137) print "TIMED OUT"
				else if (rc != 0) print "FAILED (exit " rc ") " syn
				else if (skip != "") { sub(/.*\[SKIP\] */, "", skip); print "SKIPPED: " skip }
				else print "passed: " syn
			}' <(sed -n "/^== $t\$/,/^== $t: exit/p" "$OUT/gpu-test.log"))
		say "$t: $res"
	done
fi

# ---------------------------------------------------------------- c. h2d
say ""
say "## host-to-device copies (stoker-h2d; stokerd and h2d on client cores $CLIENT)"
if [ "$SKIP_H2D" = 1 ]; then
	say "skipped (--skip-h2d)"
elif [ "$(left)" -lt 60 ]; then
	say "skipped: only $(left) s of the budget left"
else
	sock=$RT/h2d.sock
	pin_bg "$CLIENT" "$B/stokerd" --foreground --socket "$sock" --ram "$RAM_H2D" --allow-root "$DATA" \
		--log-level warn >"$RT/stokerd-h2d.log" 2>&1 &
	DP=$!
	if ! wait_sock "$sock" "$DP"; then
		say "stokerd did not start (see logs.txt)"
		{ echo "== stokerd (h2d)"; cat "$RT/stokerd-h2d.log"; } >>"$LOGS"
		stop_pid "$DP"; DP=""
	else
		note "stoker-h2d (limit $(limit 200 100) s)"
		rc=0
		pin "$CLIENT" timeout -k 5 "$(limit 200 100)" "$B/stoker-h2d" --socket "$sock" \
			--dir "$DATA/h2d" --json >"$OUT/h2d.json" 2>"$OUT/h2d.log" || rc=$?
		drc=0
		stop_pid "$DP" || drc=$?
		DP=""
		{ echo "== stokerd (h2d): exit status $drc"; cat "$RT/stokerd-h2d.log"; } >>"$LOGS"
		case "$rc" in
		0) sed -n '/^stoker-h2d: host-to-device/,$p' "$OUT/h2d.log" | tee -a "$SUMMARY" >&2 ;;
		77) say "SKIPPED: $(grep -m1 'no CUDA device' "$OUT/h2d.log")"
		    printf '{"skipped":"%s"}\n' "$(grep -m1 'no CUDA device' "$OUT/h2d.log" | tr -d '"\\')" >"$OUT/h2d.json" ;;
		124|137) say "TIMED OUT (see h2d.log)" ;;
		*) say "FAILED (exit $rc):"; grep -v '^stoker-h2d: .*objects \.\.\.$' "$OUT/h2d.log" | tail -n 25 | tee -a "$SUMMARY" >&2 ;;
		esac
		[ "$drc" = 0 ] || say "stokerd exited with status $drc (see logs.txt)"
		grep -h 'io_uring is not available' "$RT/stokerd-h2d.log" | head -1 | sed 's/^/stokerd: /' | tee -a "$SUMMARY" >&2
	fi
	rm -rf -- "$DATA/h2d"
fi

# ---------------------------------------------------------------- d. HTTP ingest
CLK=$(getconf CLK_TCK)
pid_ticks() { # pids... -> utime+stime summed (ticks)
	local t=0 p v
	for p in "$@"; do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
server_pids() { # nginx's master and workers
	local p
	echo "$NGX_PID"
	for p in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$NGX_PID" ] && echo "${p#/proc/}"
	done
}
time_ticks() { awk -v clk="$CLK" 'END {printf "%d\n", ($1 + $2) * clk + 0.5}' "$1"; }
sum_writeout() { # files with "CODE SIZE" lines -> GOT_OBJS GOT_BYTES (2xx only)
	read -r GOT_OBJS GOT_BYTES < <(cat "$@" | awk '$1 ~ /^2/ {n++; b += $2} END {printf "%d %.0f\n", n, b}')
}
sum_dir() {
	read -r GOT_OBJS GOT_BYTES < <(find "$1" -type f -printf '%s\n' | awk '{n++; b += $1} END {printf "%d %.0f\n", n, b}')
}
# Writes and frees a dataset's worth of tmpfs before a tool that writes RAM:
# on VMs that hand freed memory back to the host, the first touch of it costs
# more than the transfer (bench/s3_ingest.sh measured it), for every tool alike.
pretouch() {
	local each=$((TOTAL / nclient / 1048576 + 1)) i pids=()
	for i in $(seq 1 "$nclient"); do
		head -c "${each}M" /dev/zero >"$DATA/touch.$i" &
		pids+=($!)
	done
	wait "${pids[@]}" 2>/dev/null
	rm -f "$DATA"/touch.*
}
t_begin() {
	[ "$RAM_TOOL" = 0 ] || pretouch
	S0=$(pid_ticks $SRV_PIDS)
	T0=$(date +%s.%N)
}
t_end() {
	T1=$(date +%s.%N)
	S1=$(pid_ticks $SRV_PIDS)
}

tool_stoker() { # setting (stokerd options)
	local sock=$RT/ing.sock out rc=0 d0
	local ram=$(((TOTAL + TOTAL / 4) / 1048576 + 256))M
	rm -f "$sock"
	# shellcheck disable=SC2086 # the setting is a list of words
	pin_bg "$CLIENT" "$B/stokerd" --foreground --socket "$sock" --ram "$ram" --allow-root "$RT/lists" \
		--log-level warn $1 >>"$RT/stokerd-http.log" 2>&1 &
	DP=$!
	if ! wait_sock "$sock" "$DP"; then
		note "stokerd [$1] did not start"
		stop_pid "$DP"; DP=""
		T0=0; T1=1; S0=0; S1=0
		return
	fi
	d0=$(pid_ticks "$DP")
	t_begin
	pin "$CLIENT" timeout -k 5 "$RUN_LIMIT" "$TIME" -f '%U %S' -o "$RT/time" "$B/stoker" --socket "$sock" \
		warm --manifest "file://$RT/lists/nginx.manifest" >"$RT/warm.out" 2>>"$RT/stoker.err" || rc=$?
	t_end
	TOOL_TICKS=$(($(pid_ticks "$DP") - d0 + $(time_ticks "$RT/time")))
	out=$(cat "$RT/warm.out")
	if [ "$rc" = 0 ] && [[ "$out" == "warm: all $NFILES objects resident"* ]]; then
		GOT_BYTES=$("$B/stoker" --socket "$sock" stats --json |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch_bytes"])')
		GOT_OBJS=$NFILES
	else
		note "stoker warm [$1] exit $rc: $out"
	fi
	stop_pid "$DP" || note "stokerd [$1] exited with status $?"
	DP=""
}

tool_curl() { # parallel-max; $CURL_TO: tmpfs or null
	local d=$DST
	[ "$CURL_TO" = tmpfs ] || d=""
	awk -v d="$d" '{n = $0; sub(/.*\//, "", n); o = d == "" ? "/dev/null" : d "/" n
		printf "url = \"%s\"\noutput = \"%s\"\n", $0, o}' "$LIST" >"$RT/curl.cfg"
	t_begin
	pin "$CLIENT" timeout -k 5 "$RUN_LIMIT" "$TIME" -f '%U %S' -o "$RT/time" \
		"$B/curl" -s --no-progress-meter -Z --parallel-max "$1" -K "$RT/curl.cfg" \
		-w '%{http_code} %{size_download}\n' >"$RT/curl.w" 2>>"$RT/curl.err"
	t_end
	TOOL_TICKS=$(time_ticks "$RT/time")
	sum_writeout "$RT/curl.w"
	if [ "$CURL_TO" = tmpfs ]; then
		local files bytes
		read -r files bytes < <(find "$DST" -type f -printf '%s\n' | awk '{n++; b += $1} END {printf "%d %.0f\n", n, b}')
		[ "$files" = "$GOT_OBJS" ] && [ "$bytes" = "$GOT_BYTES" ] || GOT_OBJS=0
	fi
}
tool_curl-tmpfs() { CURL_TO=tmpfs tool_curl "$1"; }
tool_curl-null() { CURL_TO=null tool_curl "$1"; }

tool_aria2c() {
	t_begin
	# shellcheck disable=SC2086
	pin "$CLIENT" timeout -k 5 "$RUN_LIMIT" "$TIME" -f '%U %S' -o "$RT/time" \
		"$B/aria2c" -i "$LIST" -d "$DST" --file-allocation=none --allow-overwrite=true \
		--auto-file-renaming=false --console-log-level=error --summary-interval=0 \
		--download-result=hide --show-console-readout=false --max-tries=3 --retry-wait=1 \
		$1 >>"$RT/aria2c.err" 2>&1 || note "aria2c [$1] failed (see logs.txt)"
	t_end
	TOOL_TICKS=$(time_ticks "$RT/time")
	sum_dir "$DST"
	if find "$DST" -name '*.aria2' | grep -q .; then GOT_OBJS=0; fi
}

ceiling_run() { # N: N curl processes, keep-alive, bodies to /dev/null (or $CEIL_DIR)
	local n=$1
	rm -f "$RT"/ceil.*
	awk -v n="$n" -v p="$RT/ceil." -v d="${CEIL_DIR:-}" '{
		o = "/dev/null"; if (d != "") { o = $0; sub(/.*\//, "", o); o = d "/" o }
		f = p (NR % n) ".cfg"; printf "url = \"%s\"\noutput = \"%s\"\n", $0, o > f }' "$LIST"
	t_begin
	# shellcheck disable=SC2016 # a script for bash -c
	pin "$CLIENT" timeout -k 5 "$RUN_LIMIT" "$TIME" -f '%U %S' -o "$RT/time" bash -c '
		for c in "$1"/ceil.*.cfg; do
			"$2" -s -K "$c" -w "%{http_code} %{size_download}\n" > "$c.w" &
		done
		wait' _ "$RT" "$B/curl"
	t_end
	TOOL_TICKS=$(time_ticks "$RT/time")
	sum_writeout "$RT"/ceil.*.w
}
tool_ceiling() { ceiling_run "$1"; }
tool_ceiling-tmpfs() { CEIL_DIR=$DST ceiling_run "$1"; }

settings() { # tool -> one setting a line (the first without --tune)
	case "$1" in
	stoker) printf '%s\n' "--http-max-conns 64" "--http-max-conns 16" "--http-max-conns 32 --http-threads 1" \
		"--http-max-conns 64 --part-size 64M" "--http-max-conns 64 --http-threads $nclient" ;;
	curl-tmpfs | curl-null) printf '%s\n' 16 64 ;;
	aria2c) printf '%s\n' "-j 32 -x 1 -s 1" "-j 8 -x 8 -s 8 -k 8M" ;;
	ceiling) printf '%s\n' "$nclient" 4 16 ;;
	ceiling-tmpfs) printf '%s\n' "$nclient" 4 ;;
	esac
}
TOOLS=(stoker curl-tmpfs curl-null aria2c ceiling ceiling-tmpfs)
RUN_EST=2	# seconds a run takes (pre-touch, daemon start included): the slowest so far

run() { # phase tool setting round -> appends to $RES; 1 when out of time
	local phase=$1 tool=$2 setting=$3 round=$4 ok=1 r0 dur
	if [ "$(left)" -lt $((RUN_EST * 3 / 2 + 20)) ]; then
		note "out of time: $phase $tool [$setting] not run"
		return 1
	fi
	RUN_LIMIT=$(limit 90 20)
	rm -rf "$DST"; mkdir -p "$DST"
	TOOL_TICKS=0; GOT_OBJS=0; GOT_BYTES=0; T0=0; T1=1; S0=0; S1=0
	case "$tool" in ceiling | curl-null) RAM_TOOL=0 ;; *) RAM_TOOL=1 ;; esac
	r0=$(date +%s)
	"tool_$tool" "$setting"
	rm -rf "$DST"
	dur=$(($(date +%s) - r0 + 1))
	[ "$dur" -le "$RUN_EST" ] || RUN_EST=$dur
	if [ "$GOT_OBJS" != "$NFILES" ] || [ "$GOT_BYTES" != "$TOTAL" ]; then
		ok=0
		note "$tool [$setting]: got $GOT_OBJS objects, $GOT_BYTES bytes; want $NFILES, $TOTAL: not counted"
	fi
	awk -v OFS='\t' -v ph="$phase" -v t="$tool" -v s="$setting" -v r="$round" -v t0="$T0" -v t1="$T1" \
		-v total="$TOTAL" -v tt="$TOOL_TICKS" -v st=$((S1 - S0)) -v clk="$CLK" -v ok="$ok" 'BEGIN {
		w = t1 - t0; if (w <= 0) w = 1e-9
		print ph, t, s, r, sprintf("%.3f", w), sprintf("%.1f", total / w / 1e6),
		      sprintf("%.2f", tt / clk), sprintf("%.2f", st / clk), ok }' >>"$RES"
	tail -n 1 "$RES" | awk -F'\t' '{printf "[http] %-6s %-13s %-40s %8.1f MB/s  client cpu %5.2fs  server cpu %5.2fs%s\n",
		$1 ($4 ? "#" $4 : ""), $2, "[" $3 "]", $6, $7, $8, ($9 == 1 ? "" : "  NOT COUNTED")}' | tee -a "$LOGS" >&2
	return 0
}

http_ingest() {
	local dir=$DATA/http port i
	mkdir -p "$dir" "$RT/lists" "$RT/nginx"
	note "writing $NFILES x $FILE_MIB MiB of random bytes into $dir"
	for i in $(seq 0 $((NFILES - 1))); do printf '%s/shard-%05d.bin\n' "$dir" "$i"; done |
		xargs -P "$NC" -n 1 sh -c 'head -c '"$FILE_MIB"'M /dev/urandom > "$1"' _
	read -r i < <(find "$dir" -type f -size "$((FILE_MIB * 1048576))c" | wc -l)
	if [ "$i" != "$NFILES" ]; then
		say "could not write the dataset ($i of $NFILES files)"
		return
	fi
	cat "$dir"/* >/dev/null	# into the page cache if this is not tmpfs
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	sed -e "s|@ROOT@|$dir|; s|@PORT@|$port|; s|@PREFIX@|$RT/nginx|g" \
		-e "s|^worker_processes .*|worker_processes $nserver;|" \
		"$REPO/bench/nginx.conf.in" >"$RT/nginx/nginx.conf"
	pin_bg "$SERVER" "$B/nginx" -p "$RT/nginx/" -c "$RT/nginx/nginx.conf" -e "$RT/nginx/error.log" \
		>>"$RT/nginx/stdout.log" 2>&1 &
	NGX_PID=$!
	URL="http://127.0.0.1:$port"
	for i in $(seq 1 200); do
		"$B/curl" -s -o /dev/null "$URL/" && break
		kill -0 "$NGX_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! "$B/curl" -s -o /dev/null "$URL/shard-00000.bin"; then
		say "nginx did not start (see logs.txt)"
		{ echo "== nginx"; cat "$RT/nginx/stdout.log" "$RT/nginx/error.log" 2>/dev/null; } >>"$LOGS"
		stop_pid "$NGX_PID"; NGX_PID=""
		return
	fi
	sleep 0.3	# the workers
	SRV_PIDS=$(server_pids | sort -u | tr '\n' ' ')
	note "nginx $NGX_PID on cores $SERVER, $nserver workers; server pids: $SRV_PIDS"
	LIST=$RT/lists/nginx.urls
	for i in $(seq 0 $((NFILES - 1))); do printf '%s/shard-%05d.bin\n' "$URL" "$i"; done >"$LIST"
	awk -v s=$((FILE_MIB * 1048576)) '{print $0, s}' "$LIST" >"$RT/lists/nginx.manifest"
	DST=$DATA/dst
	RES=$OUT/http-runs.tsv
	printf 'phase\ttool\tsetting\tround\twall_s\tMB_s\tclient_cpu_s\tserver_cpu_s\tok\n' >"$RES"

	# An untimed run first (the first run of a case was the slowest whatever the tool).
	run warmup ceiling "$nclient" 0 || return
	declare -A BEST=()
	local tool s ntune=0
	# Rounds matter more than tuning: tune only when both fit in the time left
	# (the warm-up run writes nothing to RAM, so a RAM-writing run is taken as
	# twice as long).
	for tool in "${TOOLS[@]}"; do ntune=$((ntune + $(settings "$tool" | wc -l))); done
	if [ "$TUNE" = 1 ] && [ $(((ntune + ROUNDS * ${#TOOLS[@]}) * (RUN_EST * 2 + 1))) -gt $(($(left) - 30)) ]; then
		TUNE=0
		say "tuning skipped: $ntune tuning runs and $((ROUNDS * ${#TOOLS[@]})) measured ones would not fit in the $(left) s left; each tool runs its first setting"
	fi
	for tool in "${TOOLS[@]}"; do
		BEST[$tool]=$(settings "$tool" | head -1)
		[ "$TUNE" = 1 ] || continue
		while read -r s; do run tune "$tool" "$s" 0 || break 2; done < <(settings "$tool")
		s=$(awk -F'\t' -v t="$tool" '$1 == "tune" && $2 == t && $9 == 1 { if ($6 > m) { m = $6; s = $3 } } END { print s }' "$RES")
		[ -z "$s" ] || BEST[$tool]=$s
	done
	local r n=${#TOOLS[@]}
	for r in $(seq 1 "$ROUNDS"); do
		for i in $(seq 0 $((n - 1))); do
			tool=${TOOLS[$(((i + r - 1) % n))]}
			run round "$tool" "${BEST[$tool]}" "$r" || break 2
		done
	done
	stop_pid "$NGX_PID"; NGX_PID=""
	{ echo "== nginx error.log"; cat "$RT/nginx/error.log" 2>/dev/null; echo "== stokerd (http)"; cat "$RT/stokerd-http.log";
	  echo "== stoker.err"; cat "$RT/stoker.err" 2>/dev/null; echo "== curl.err"; cat "$RT/curl.err" 2>/dev/null;
	  echo "== aria2c.err"; tail -n 50 "$RT/aria2c.err" 2>/dev/null; } >>"$LOGS"

	python3 - "$RES" "$TOTAL" "$NFILES" "$FILE_MIB" "$CLIENT" "$SERVER" "$DATA_KIND" "$TUNE" \
		"$("$B/nginx" -v 2>&1); $("$B/curl" --version | head -1 | cut -d' ' -f1-2); $("$B/aria2c" --version | head -1)" \
		>"$OUT/http-ingest.txt" <<'EOF'
import sys, statistics
res, total, nfiles, mib, client, server, data_kind, tune, versions = sys.argv[1:10]
total, tune = int(total), tune == "1"
rows = [l.rstrip("\n").split("\t") for l in open(res)][1:]
gb = total / 1e9
labels = {"stoker": "stoker warm --manifest (http://)", "curl-tmpfs": "curl --parallel -> tmpfs files",
          "curl-null": "curl --parallel -> /dev/null", "aria2c": "aria2c -i -> tmpfs files",
          "ceiling": "ceiling: N curls -> /dev/null", "ceiling-tmpfs": "ceiling: N curls -> tmpfs files"}
print(f"HTTP ingest from nginx on 127.0.0.1: {nfiles} x {mib} MiB ({total / 1e9:.2f} GB), every object fetched once per run")
print(f"server: nginx on cores {server}; clients (stokerd + CLI, curl, aria2c) on cores {client}; data: {data_kind}")
print(f"versions: {versions}")
if tune:
    print("\ntuning (one run each, MB/s):")
    for r in rows:
        if r[0] == "tune":
            print(f"  {labels[r[1]]:<36} {'[' + r[2] + ']':<42} {float(r[5]):8.1f}" + ("" if r[8] == "1" else "  NOT COUNTED"))
med = {}
for t in labels:
    runs = [r for r in rows if r[0] == "round" and r[1] == t and r[8] == "1"]
    bad = sum(1 for r in rows if r[0] == "round" and r[1] == t and r[8] != "1")
    if not runs:
        continue
    col = lambda i: statistics.median(float(r[i]) for r in runs)
    med[t] = dict(setting=runs[0][2], mbs=col(5), cpu=col(6) / gb, srv=col(7) / gb,
                  runs=", ".join(f"{float(r[5]):.0f}" for r in runs) + (f" ({bad} failed)" if bad else ""))
nr = max((len([r for r in rows if r[0] == "round" and r[1] == t]) for t in labels), default=0)
print(f"\nmedians of {nr} rounds (order rotated every round); MB = 10^6 B, GB = 10^9 B:")
print(f"| tool | setting | MB/s | runs (MB/s) | client CPU-s/GB | server CPU-s/GB | stoker / this |")
print("|---|---|---:|---|---:|---:|---:|")
st = med.get("stoker")
for t, m in med.items():
    ratio = f"{st['mbs'] / m['mbs']:.2f}" if st else ""
    print(f"| {labels[t]} | `{m['setting']}` | {m['mbs']:.0f} | {m['runs']} | {m['cpu']:.2f} | {m['srv']:.2f} | {ratio} |")
if not med:
    print("(no complete rounds)")
print("\nMB/s = bytes / wall seconds of the client command (stoker: `stoker warm`, stokerd already up).")
print("client CPU = user+sys of the client (stoker: stokerd + CLI), server CPU = nginx master + workers.")
print("tmpfs/memfd tools get a dataset-sized tmpfs write+free before each run (pre-touch; /dev/null ones do not).")
print("Not run: s3rver cases (bench/s3_ingest.sh): s3rver needs Node.js, which cannot be carried here.")
EOF
	grep -h 'io_uring is not available' "$RT/stokerd-http.log" | head -1 | sed 's/^/stokerd: /' >>"$OUT/http-ingest.txt"
	tee -a "$SUMMARY" <"$OUT/http-ingest.txt" >&2
}

say ""
say "## HTTP ingest (nginx on cores $SERVER, clients on cores $CLIENT)"
if [ "$SKIP_HTTP" = 1 ]; then
	say "skipped (--skip-http)"
elif [ "$(left)" -lt 60 ]; then
	say "skipped: only $(left) s of the budget left"
else
	http_ingest
fi

say ""
say "total: $(elapsed) s of the ${BUDGET} s budget; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
