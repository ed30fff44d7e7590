#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Cold ingest over HTTP: how fast does stokerd pull a dataset from an S3 (or
# plain HTTP) server into its RAM cache, next to the usual download tools
# fetching the same objects from the same loopback server?
#
# Cases (--cases, space- or comma-separated; default all three):
#   s3-large     LARGE objects (default 64 x 64 MiB) from s3rver, SigV4 where
#                the tool signs; stoker warms s3://bkt/PREFIX/ (listing included)
#   s3-small     SMALL objects (default 5,000 x 100 KiB) from s3rver
#   nginx-large  the s3-large files on disk, served by nginx (HTTP/1.1, Range);
#                stoker warms a manifest of http:// URLs
# Tools: stoker (fresh stokerd per run) three ways on s3rver: warm of the
# s3://bkt/PREFIX/ (lists, signs), of a manifest of s3:// URIs (signs, no
# listing) and of a manifest of the http:// URLs (unsigned, no listing);
# rclone copy and aws s3 cp --recursive (list, sign); curl --parallel
# --aws-sigv4 (URL list, signs); aria2c -i and curl --parallel (URL list,
# unsigned: s3rver serves unsigned GETs without verifying anything); and the
# server's ceiling (N curl processes, keep-alive, bodies to /dev/null;
# "ceiling-signed" is the same with curl --aws-sigv4; "ceiling-tmpfs" the
# same N curls writing the bodies to tmpfs files, a ceiling for a client that
# keeps the bytes).  Each stoker variant
# is compared with the peers that send the same requests.  The nginx case
# has stoker, aria2c, curl and the ceiling only.  Copies go to a tmpfs dir
# (/dev/shm), deleted between runs: stoker keeps the data in RAM too.
#
# Each tool's settings are tried once (tuning); then --rounds R rounds run
# every tool with its best setting, the order rotated each round, and the
# medians are reported: MB/s (10^6 B), objects/s, CPU seconds of the tool and
# of the server, and stoker / best peer, stoker / ceiling.  Each object is
# fetched once per run: the copy is cold, every byte crosses the socket.
# The server's files stay in the page cache (read once before each case), so
# the disk is out of the picture; --cold drops the page cache before every
# run instead.  Before every run of a tool that writes RAM (all but the
# ceilings), the script writes and frees as much tmpfs as the dataset: on VMs
# that hand freed guest memory back to the host (free page reporting), the
# first touch of it costs more than the transfer, for every tool alike.
#
# Usage: sudo bench/s3_ingest.sh [--quick] [--rounds R] [--build DIR]
#            [--cases LIST] [--large N:MIB] [--small N:KIB] [--cold]
#            [--no-pretouch] [--no-tune] [--workdir DIR] [--keep] [--out DIR]
#   --quick   8 x 64 MiB and 1,000 x 100 KiB, 1 round (a few minutes)
#   --keep    keep the uploaded objects and the s3rver install in WORKDIR
#             (default /var/tmp/stoker-s3bench) for the next run
# Installs what it lacks (Debian 12, root): apt-get rclone aria2 awscli curl
# nginx nodejs npm time python3 procps; npm @20minutes/s3rver@5.0.0 into
# WORKDIR/s3ingest-npm (started by tests/tools/s3rver.js, also on Node 18).
set -euo pipefail

ROUNDS=3
BUILD=""
CASES="s3-large s3-small nginx-large"
LARGE="64:64"
SMALL="5000:100"
CACHED=1
PRETOUCH=1
TUNE=1
WORK=/var/tmp/stoker-s3bench
KEEP=0
OUT=""
ARGS="$*"

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) LARGE="8:64"; SMALL="1000:100"; ROUNDS=1; shift ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	--cases) CASES=${2//,/ }; shift 2 ;;
	--large) LARGE=$2; shift 2 ;;
	--small) SMALL=$2; shift 2 ;;
	--server-cached) CACHED=1; shift ;;
	--cold) CACHED=0; shift ;;
	--no-pretouch) PRETOUCH=0; shift ;;
	--no-tune) TUNE=0; shift ;;
	--workdir) WORK=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "s3_ingest: unknown option $1" >&2; usage 2 ;;
	esac
done
LARGE_N=${LARGE%%:*}; LARGE_MIB=${LARGE##*:}
SMALL_N=${SMALL%%:*}; SMALL_KIB=${SMALL##*:}
for v in "$ROUNDS" "$LARGE_N" "$LARGE_MIB" "$SMALL_N" "$SMALL_KIB"; do
	case "$v" in ''|*[!0-9]*|0) echo "s3_ingest: counts must be positive integers" >&2; exit 2 ;; esac
done
for c in $CASES; do
	case "$c" in s3-large|s3-small|nginx-large) ;; *) echo "s3_ingest: unknown case $c" >&2; exit 2 ;; esac
done

log() { echo "s3_ingest: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, and dropping the page cache between runs)"

# ---------------------------------------------------------------- binaries
here=$(cd "$(dirname "$0")" && pwd)
[ -n "$BUILD" ] || BUILD="$here/../build"
STOKERD="$BUILD/prefetch/stokerd"
STOKER="$BUILD/client/stoker"
if [ ! -x "$STOKERD" ] || [ ! -x "$STOKER" ]; then
	die "no stokerd/stoker in $BUILD (build it: cmake -S . -B build && cmake --build build; or --build DIR)"
fi

# Debian's packages, by absolute path: a pyenv or pip 'aws' may be first in PATH.
AWS=/usr/bin/aws
need=()
command -v rclone >/dev/null || need+=(rclone)
command -v aria2c >/dev/null || need+=(aria2)
[ -x "$AWS" ] || need+=(awscli)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
command -v ps >/dev/null || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
	log "apt-get install ${need[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
NGINX=/usr/sbin/nginx
S3RVER_VERSION=5.0.0
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd -P)
manifest="$WORK/s3ingest-npm/node_modules/@20minutes/s3rver/package.json"
if ! { [ -f "$manifest" ] && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
	"$manifest" "$S3RVER_VERSION"; }; then
	log "npm install @20minutes/s3rver@$S3RVER_VERSION into $WORK/s3ingest-npm"
	npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$WORK/s3ingest-npm" \
		"@20minutes/s3rver@$S3RVER_VERSION" >&2
fi

# ---------------------------------------------------------------- state, cleanup
tmp=$(mktemp -d /tmp/stoker-s3ingest.XXXXXX)
DST=/dev/shm/stoker-s3ingest-dst.$$
S3_PID=""
NGX_PID=""
DP=""
stop_pid() { # pid: SIGTERM, then wait for it (it is our child)
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	stop_pid "$DP"
	stop_pid "$NGX_PID"
	stop_pid "$S3_PID"
	rm -rf -- "$DST" "$tmp" /dev/shm/stoker-s3ingest-touch.$$.*
	if [ "$KEEP" = 0 ]; then
		rm -rf -- "$WORK/s3ingest-data" "$WORK/s3ingest-npm" "$WORK/s3ingest-manifests" "$WORK/s3ingest-stage"
		rmdir -- "$WORK" 2>/dev/null || true
	fi
}
RAM_TOOL=1
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "$OUT" ] || OUT="$tmp/out"
mkdir -p "$OUT"
RES="$OUT/runs.tsv"	# one line per run
: > "$RES"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url, what
	for _ in $(seq 1 200); do
		if curl -s -o /dev/null "$1"; then return 0; fi
		sleep 0.05
	done
	die "$2 did not answer at $1"
}

# ---------------------------------------------------------------- s3rver and the data
S3_PORT=$(free_port)
S3URL="http://127.0.0.1:$S3_PORT"
mkdir -p "$WORK/s3ingest-data"
node --openssl-legacy-provider "$here/../tests/tools/s3rver.js" --modules "$WORK/s3ingest-npm" -- \
	--directory "$WORK/s3ingest-data" --address 127.0.0.1 --port "$S3_PORT" --silent \
	--configure-bucket bkt \
	> "$OUT/s3rver.log" 2>&1 &
S3_PID=$!
wait_http "$S3URL/bkt" s3rver

LARGE_PREFIX="large-${LARGE_N}x${LARGE_MIB}M"
SMALL_PREFIX="small-${SMALL_N}x${SMALL_KIB}K"
LARGE_SIZE=$((LARGE_MIB << 20))
SMALL_SIZE=$((SMALL_KIB << 10))

# The object store's own files: PREFIX/KEY._S3rver_object (nginx serves them).
have_dataset() { # prefix count size
	local d="$WORK/s3ingest-data/bkt/$1"
	[ -d "$d" ] || return 1
	local got
	got=$(find "$d" -name '*._S3rver_object' -size "$3"c | wc -l)
	[ "$got" -eq "$2" ] && [ "$(find "$d" -name '*._S3rver_object' | wc -l)" -eq "$2" ]
}

upload_dataset() { # prefix count size name-format parallel
	local prefix=$1 n=$2 size=$3 fmt=$4 par=$5
	if have_dataset "$prefix" "$n" "$size"; then
		log "$prefix: already in $WORK/s3ingest-data (kept from an earlier run)"
		return
	fi
	log "$prefix: writing $n x $size random bytes and PUTting them to s3rver ..."
	rm -rf "$WORK/s3ingest-data/bkt/$prefix" "$WORK/s3ingest-stage"
	mkdir -p "$WORK/s3ingest-stage"
	# Random content, one object per file; unsigned PUTs (s3rver accepts them).
	python3 - "$WORK/s3ingest-stage" "$n" "$size" "$fmt" "$S3URL/bkt/$prefix" > "$tmp/upload.cfg" <<'EOF'
import os, sys
stage, n, size, fmt, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
for i in range(n):
    name = fmt % i
    with open(os.path.join(stage, name), "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            f.write(os.urandom(k))
            left -= k
    print(f'upload-file = "{stage}/{name}"\nurl = "{base}/{name}"\noutput = "/dev/null"')
EOF
	curl -sS --fail --no-progress-meter -Z --parallel-max "$par" -K "$tmp/upload.cfg" >&2 ||
		die "$prefix: upload failed"
	rm -rf "$WORK/s3ingest-stage"
	have_dataset "$prefix" "$n" "$size" || die "$prefix: s3rver does not hold $n objects of $size bytes after the upload"
}

want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
if want s3-large || want nginx-large; then
	upload_dataset "$LARGE_PREFIX" "$LARGE_N" "$LARGE_SIZE" "shard-%05d.bin" 4
fi
if want s3-small; then
	upload_dataset "$SMALL_PREFIX" "$SMALL_N" "$SMALL_SIZE" "obj-%06d.bin" 32
fi
sync

# URL lists (plain GETs: s3rver serves unsigned requests) and stoker manifests.
mkdir -p "$WORK/s3ingest-manifests"
# CASE.urls: plain URLs for aria2c and curl; CASE.manifest: "URI SIZE" lines
# for stoker, of the same URLs (nginx) or of s3://bkt/PREFIX/KEY (s3rver);
# CASE-http.manifest: the plain URLs with sizes.
make_lists() { # case prefix count size fmt base-url suffix
	local c=$1 prefix=$2 n=$3 size=$4 fmt=$5 base=$6 suffix=$7
	python3 - "$n" "$size" "$fmt" "$base/$prefix" "$suffix" "$tmp/$c" "$WORK/s3ingest-manifests/$c.manifest" \
		"$SERVER" "s3://bkt/$prefix" <<'EOF'
import sys
n, size, fmt, base, suffix, out, manifest, server, s3base = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:10]
names = [fmt % i for i in range(n)]
urls = [f"{base}/{x}{suffix}" for x in names]
with open(out + ".urls", "w") as f:
    f.write("".join(u + "\n" for u in urls))
uris = [f"{s3base}/{x}" for x in names] if server == "s3rver" else urls
with open(manifest, "w") as f:
    f.write("".join(f"{u} {size}\n" for u in uris))
with open(manifest.replace(".manifest", "-http.manifest"), "w") as f:
    f.write("".join(f"{u} {size}\n" for u in urls))
EOF
}

# ---------------------------------------------------------------- measuring
CLK=$(getconf CLK_TCK)
NCPU=$(nproc)
# user+nice+system+irq+softirq of all CPUs (a task's stime includes the
# softirq work, e.g. loopback TCP, done on its ticks).
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }
# This machine may be shared: before a run, wait (up to 20 s) until the rest
# of it uses less than 15% of one CPU for a second, so that others' bursts do
# not land in a measurement.  What others still used shows as "other CPU".
wait_quiet() {
	local i a b
	for i in $(seq 1 20); do
		a=$(busy_ticks); sleep 1; b=$(busy_ticks)
		[ $((b - a)) -gt $((CLK * 15 / 100)) ] || return 0
	done
	log "the machine stayed busy ($((b - a)) ticks/s of CPU used by others); measuring anyway"
}
pid_ticks() { # pids... -> utime+stime summed (ticks)
	local t=0 p v
	for p in "$@"; do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
server_pids() {
	# shellcheck disable=SC2046 # one pid per word
	if [ "$SERVER" = nginx ]; then echo "$NGX_PID" $(ps -o pid= --ppid "$NGX_PID"); else echo "$S3_PID"; fi
}
drop_caches() {
	sync
	if [ "$CACHED" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

# A run: the tool function prepares, calls t_begin right before the timed
# command and t_end right after it, sets TOOL_TICKS (its CPU) and GOT_BYTES /
# GOT_OBJS (what it verifiably received).
# Writes and frees SIZE bytes of tmpfs (NCPU writers): afterwards the guest's
# free pages are backed by the host again, as they always are on bare metal.
pretouch() { # bytes
	local each=$(( $1 / NCPU / 1048576 + 1 )) i pids=()
	for i in $(seq 1 "$NCPU"); do
		head -c "${each}M" /dev/zero > "/dev/shm/stoker-s3ingest-touch.$$.$i" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	rm -f /dev/shm/stoker-s3ingest-touch.$$.*
}
t_begin() {
	wait_quiet
	drop_caches
	if [ "$PRETOUCH" = 1 ] && [ "$RAM_TOOL" = 1 ]; then pretouch $((TOTAL + TOTAL / 8 + (64 << 20))); fi
	B0=$(busy_ticks)
	# shellcheck disable=SC2046
	S0=$(pid_ticks $(server_pids))
	T0=$(date +%s.%N)
}
t_end() {
	T1=$(date +%s.%N)
	B1=$(busy_ticks)
	# shellcheck disable=SC2046
	S1=$(pid_ticks $(server_pids))
}
time_ticks() { # /usr/bin/time -f '%U %S' output -> ticks
	awk -v clk="$CLK" 'END {printf "%d\n", ($1 + $2) * clk + 0.5}' "$1"
}
sum_writeout() { # files with "CODE SIZE" lines -> sets GOT_OBJS GOT_BYTES (2xx only)
	read -r GOT_OBJS GOT_BYTES < <(cat "$@" | awk '$1 ~ /^2/ {n++; b += $2} END {printf "%d %.0f\n", n, b}')
}
sum_dir() { # dir -> sets GOT_OBJS GOT_BYTES
	read -r GOT_OBJS GOT_BYTES < <(find "$1" -type f -printf '%s\n' | awk '{n++; b += $1} END {printf "%d %.0f\n", n, b}')
}

# ---- the tools.  $1 = setting; globals: CASE URI_S3 LIST NOBJ SIZE ...

tool_stoker() {
	local sock="$tmp/stk.sock" uri out rc
	rm -f "$sock"
	local ram=$(( (TOTAL + TOTAL / 4) / 1048576 + 256 ))M
	# shellcheck disable=SC2086 # $1, the setting, is a list of words
	env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
		AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
		"$STOKERD" --foreground --socket "$sock" --ram "$ram" --s3-endpoint "$S3URL" \
		--allow-root "$WORK/s3ingest-manifests" --log-level warn $1 >> "$OUT/stokerd.log" 2>&1 &
	DP=$!
	for _ in $(seq 1 200); do
		"$STOKER" --socket "$sock" stats >/dev/null 2>&1 && break
		sleep 0.05
	done
	if [ "$STK_MANIFEST" = 2 ]; then
		uri=(--manifest "file://$WORK/s3ingest-manifests/$CASE-http.manifest")
	elif [ "$SERVER" = nginx ] || [ "$STK_MANIFEST" = 1 ]; then
		uri=(--manifest "file://$WORK/s3ingest-manifests/$CASE.manifest")
	else uri=("s3://bkt/$PREFIX/"); fi
	local d0
	d0=$(pid_ticks "$DP")
	t_begin
	rc=0
	/usr/bin/time -f '%U %S' -o "$tmp/time" "$STOKER" --socket "$sock" warm "${uri[@]}" > "$tmp/warm.out" 2>> "$OUT/stoker.err" || rc=$?
	t_end
	TOOL_TICKS=$(( $(pid_ticks "$DP") - d0 + $(time_ticks "$tmp/time") ))
	out=$(cat "$tmp/warm.out")
	GOT_OBJS=0; GOT_BYTES=0
	if [ "$rc" = 0 ] && [[ "$out" == "warm: all $NOBJ objects resident"* ]]; then
		# What the daemon fetched from the backend (every byte, once).
		GOT_BYTES=$("$STOKER" --socket "$sock" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch_bytes"])')
		GOT_OBJS=$NOBJ
	else
		log "stoker warm exit $rc: $out"
	fi
	stop_pid "$DP"; DP=""
}

# The same objects named by a manifest of s3:// URIs with sizes: no listing,
# like aria2c and curl, which are handed the URL list.
tool_stoker-manifest() { STK_MANIFEST=1; tool_stoker "$1"; STK_MANIFEST=0; }
# ... and a manifest of the plain http:// URLs: unsigned GETs, as aria2c and
# curl send them (s3rver spends CPU verifying every SigV4 signature).
tool_stoker-http() { STK_MANIFEST=2; tool_stoker "$1"; STK_MANIFEST=0; }
STK_MANIFEST=0

RCLONE_COMMON=(--no-check-dest --ignore-checksum --s3-no-head-object --use-mmap)
tool_rclone() {
	: > "$tmp/rclone.conf"
	t_begin
	# AWS_CA_BUNDLE (set on some hosts) makes rclone's AWS SDK refuse its
	# own HTTP transport; nothing here is TLS.
	# shellcheck disable=SC2086
	env -u AWS_CA_BUNDLE RCLONE_CONFIG="$tmp/rclone.conf" RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other \
		RCLONE_CONFIG_S3_ENDPOINT="$S3URL" RCLONE_CONFIG_S3_ACCESS_KEY_ID=S3RVER \
		RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true \
		RCLONE_CONFIG_S3_REGION=us-east-1 \
		/usr/bin/time -f '%U %S' -o "$tmp/time" \
		rclone copy "s3:bkt/$PREFIX" "$DST" "${RCLONE_COMMON[@]}" $1 \
		2>> "$OUT/rclone.err" || log "rclone failed (see $OUT/rclone.err)"
	t_end
	TOOL_TICKS=$(time_ticks "$tmp/time")
	sum_dir "$DST"
}

tool_aws() {
	local kv
	export AWS_CONFIG_FILE="$tmp/aws.config" AWS_SHARED_CREDENTIALS_FILE="$tmp/aws.creds"
	: > "$AWS_CONFIG_FILE"; : > "$AWS_SHARED_CREDENTIALS_FILE"
	"$AWS" configure set default.region us-east-1
	"$AWS" configure set default.s3.addressing_style path
	for kv in $1; do "$AWS" configure set "default.s3.${kv%%=*}" "${kv#*=}"; done
	t_begin
	env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_EC2_METADATA_DISABLED=true \
		/usr/bin/time -f '%U %S' -o "$tmp/time" \
		"$AWS" s3 cp --recursive "s3://bkt/$PREFIX/" "$DST" --endpoint-url "$S3URL" \
		--no-progress --only-show-errors 2>> "$OUT/aws.err" >&2 || log "aws s3 cp failed (see $OUT/aws.err)"
	t_end
	unset AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
	TOOL_TICKS=$(time_ticks "$tmp/time")
	sum_dir "$DST"
}

tool_aria2c() {
	t_begin
	# shellcheck disable=SC2086
	/usr/bin/time -f '%U %S' -o "$tmp/time" \
		aria2c -i "$LIST" -d "$DST" --file-allocation=none --allow-overwrite=true \
		--auto-file-renaming=false --console-log-level=error --summary-interval=0 \
		--download-result=hide --show-console-readout=false --max-tries=3 --retry-wait=1 \
		$1 >> "$OUT/aria2c.err" 2>&1 || log "aria2c failed (see $OUT/aria2c.err)"
	t_end
	TOOL_TICKS=$(time_ticks "$tmp/time")
	sum_dir "$DST"
	if find "$DST" -name '*.aria2' | grep -q .; then GOT_OBJS=0; fi
}

tool_curl() { # curl --parallel, one process, to files on tmpfs [extra curl args...]
	local par=$1; shift
	awk -v d="$DST" '{n = $0; sub(/.*\//, "", n); printf "url = \"%s\"\noutput = \"%s/%s\"\n", $0, d, n}' \
		"$LIST" > "$tmp/curl.cfg"
	t_begin
	/usr/bin/time -f '%U %S' -o "$tmp/time" \
		curl -s --no-progress-meter -Z --parallel-max "$par" "$@" -K "$tmp/curl.cfg" \
		-w '%{http_code} %{size_download}\n' > "$tmp/curl.w" 2>> "$OUT/curl.err" || true
	t_end
	TOOL_TICKS=$(time_ticks "$tmp/time")
	sum_writeout "$tmp/curl.w"
	local files bytes
	read -r files bytes < <(find "$DST" -type f -printf '%s\n' | awk '{n++; b += $1} END {printf "%d %.0f\n", n, b}')
	[ "$files" = "$GOT_OBJS" ] && [ "$bytes" = "$GOT_BYTES" ] || GOT_OBJS=0
}

# The same, signing every request as an S3 client must (curl's own SigV4).
tool_curl-signed() {
	tool_curl "$1" --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD"
}

ceiling_run() { # N extra-curl-args...: N curl processes, keep-alive, bodies to /dev/null (or $CEIL_DIR)
	local n=$1 i; shift
	rm -f "$tmp"/ceil.*
	awk -v n="$n" -v p="$tmp/ceil." -v d="${CEIL_DIR:-}" '{
		o = "/dev/null"; if (d != "") { o = $0; sub(/.*\//, "", o); o = d "/" o }
		f = p (NR % n) ".cfg"; printf "url = \"%s\"\noutput = \"%s\"\n", $0, o > f }' "$LIST"
	: > "$tmp/ceil.args"
	if [ $# -gt 0 ]; then printf '%s\0' "$@" > "$tmp/ceil.args"; fi
	t_begin
	# shellcheck disable=SC2016 # a script for bash -c
	/usr/bin/time -f '%U %S' -o "$tmp/time" bash -c '
		tmp=$1; shift
		mapfile -d "" extra < "$tmp/ceil.args"
		for c in "$tmp"/ceil.*.cfg; do
			curl -s "${extra[@]}" -K "$c" -w "%{http_code} %{size_download}\n" > "$c.w" &
		done
		wait' _ "$tmp"
	t_end
	TOOL_TICKS=$(time_ticks "$tmp/time")
	sum_writeout "$tmp"/ceil.*.w
}
tool_ceiling() { ceiling_run "$1"; }
# The same N curls keeping the bytes (files in tmpfs, as stoker keeps them in
# memfds): what a client that stores what it receives can hope for here.
tool_ceiling-tmpfs() { CEIL_DIR=$DST ceiling_run "$1"; }
tool_ceiling-signed() {
	ceiling_run "$1" --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD"
}

# One run of a tool with a setting; appends to $RES, prints a progress line.
run() { # phase tool setting round
	local phase=$1 tool=$2 setting=$3 round=$4
	rm -rf "$DST"; mkdir -p "$DST"
	TOOL_TICKS=0; GOT_OBJS=0; GOT_BYTES=0
	case "$tool" in ceiling | ceiling-signed) RAM_TOOL=0 ;; *) RAM_TOOL=1 ;; esac
	"tool_$tool" "$setting"
	rm -rf "$DST"
	local ok=1
	if [ "$GOT_OBJS" != "$NOBJ" ] || [ "$GOT_BYTES" != "$TOTAL" ]; then
		ok=0
		log "$CASE $tool [$setting]: got $GOT_OBJS objects, $GOT_BYTES bytes; want $NOBJ, $TOTAL: run not counted"
	fi
	local srv=$((S1 - S0)) busy=$((B1 - B0))
	python3 - "$CASE" "$phase" "$tool" "$setting" "$round" "$T0" "$T1" "$TOTAL" "$NOBJ" \
		"$TOOL_TICKS" "$srv" "$busy" "$CLK" "$ok" >> "$RES" <<'EOF'
import sys
case, phase, tool, setting, rnd = sys.argv[1:6]
t0, t1 = float(sys.argv[6]), float(sys.argv[7])
total, nobj, tool_t, srv_t, busy_t, clk, ok = map(int, sys.argv[8:15])
wall = t1 - t0
other = max(0.0, (busy_t - tool_t - srv_t) / clk)
print("\t".join([case, phase, tool, setting, rnd, f"{wall:.3f}", f"{total / wall / 1e6:.1f}",
                 f"{nobj / wall:.1f}", f"{tool_t / clk:.2f}", f"{srv_t / clk:.2f}",
                 f"{other:.2f}", str(ok)]))
EOF
	tail -n 1 "$RES" | awk -F'\t' -v ncpu="$NCPU" '{
		printf "s3_ingest: %-11s %-6s %-14s %-58s %7.1f MB/s %8.1f obj/s  cpu: tool %.1fs server %.1fs other %.1fs%s\n",
		$1, $2 ($5 ? "#" $5 : ""), $3, "[" $4 "]", $7, $8, $9, $10, $11, ($12 == 1 ? "" : "  FAILED") }' >&2
}

# ---------------------------------------------------------------- settings tried
settings() { # case tool -> one setting per line (--no-tune uses the first)
	case "$1:$2" in
	*-large:stoker)
		printf '%s\n' "--http-max-conns 64" "--http-max-conns 16" \
			"--http-max-conns 32 --http-threads 1" "--http-max-conns 64 --part-size 64M" ;;
	s3-small:stoker)
		printf '%s\n' "--http-max-conns 64 --max-inflight 64" "--http-max-conns 64 --max-inflight 128" \
			"--http-max-conns 128 --max-inflight 256" ;;
	s3-large:rclone)
		printf '%s\n' "--transfers 16" "--transfers 8 --multi-thread-cutoff 16M --multi-thread-streams 4" ;;
	s3-small:rclone)
		printf '%s\n' "--transfers 32 --checkers 32" "--transfers 64 --checkers 64" ;;
	s3-large:aws)
		printf '%s\n' "max_concurrent_requests=10" "max_concurrent_requests=32" ;;
	s3-small:aws)
		printf '%s\n' "max_concurrent_requests=10" "max_concurrent_requests=64" ;;
	*-large:aria2c)
		printf '%s\n' "-j 32 -x 1 -s 1" "-j 8 -x 8 -s 8 -k 8M" ;;
	s3-small:aria2c)
		printf '%s\n' "-j 64 -x 1 -s 1" "-j 128 -x 1 -s 1" ;;
	*-large:curl*) printf '%s\n' 16 64 ;;
	s3-small:curl*) printf '%s\n' 64 128 ;;
	*:ceiling) printf '%s\n' 4 8 16 ;;
	*:ceiling-tmpfs) printf '%s\n' 4 8 ;;
	*:ceiling-signed) printf '%s\n' 4 8 ;;
	esac
}
tools_of() {
	case "$1" in
	s3-*) echo "stoker stoker-manifest stoker-http rclone aws aria2c curl curl-signed ceiling ceiling-tmpfs ceiling-signed" ;;
	nginx-*) echo "stoker aria2c curl ceiling ceiling-tmpfs" ;;
	esac
}
label() {
	case "$1" in
	stoker) echo "stoker warm" ;;
	stoker-manifest) echo "stoker warm --manifest" ;;
	stoker-http) echo "stoker warm --manifest http" ;;
	rclone) echo "rclone copy" ;;
	aws) echo "aws s3 cp" ;;
	aria2c) echo "aria2c" ;;
	curl) echo "curl --parallel" ;;
	curl-signed) echo "curl --parallel --aws-sigv4" ;;
	ceiling) echo "ceiling (N curls)" ;;
	ceiling-tmpfs) echo "ceiling, kept in tmpfs" ;;
	ceiling-signed) echo "ceiling, SigV4" ;;
	esac
}

# ---------------------------------------------------------------- go
start_nginx() {
	local port; port=$(free_port)
	mkdir -p "$tmp/nginx"
	sed -e "s|@ROOT@|$WORK/s3ingest-data/bkt|; s|@PORT@|$port|; s|@PREFIX@|$tmp/nginx|g" \
		"$here/nginx.conf.in" > "$tmp/nginx/nginx.conf"
	"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
	NGX_PID=$!
	NGXURL="http://127.0.0.1:$port"
	wait_http "$NGXURL/" nginx
}

START=$(date +%s)
{
	echo "# stoker cold ingest over HTTP: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "command: bench/s3_ingest.sh $ARGS"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "versions: $(rclone version 2>/dev/null | head -1); $("$AWS" --version 2>&1); $(aria2c --version | head -1); $(curl --version | head -1 | cut -d' ' -f1-2); $("$NGINX" -v 2>&1); node $(node --version); s3rver $S3RVER_VERSION"
	if [ "$CACHED" = 0 ]; then echo "server reads: cold (page cache dropped before every run)"
	else echo "server reads: from the page cache (the server's files are read once before each case and stay cached)"; fi
	if [ "$PRETOUCH" = 1 ]; then echo "memory: dataset-sized tmpfs written and freed before every run of a tool that writes RAM (host-backed free pages)"
	else echo "memory: no pre-touch (--no-pretouch): fresh guest memory may cost a host fault on first touch"; fi
} > "$OUT/header.txt"
cat "$OUT/header.txt" >&2

for CASE in $CASES; do
	case "$CASE" in
	s3-large) SERVER=s3rver; PREFIX=$LARGE_PREFIX; NOBJ=$LARGE_N; SIZE=$LARGE_SIZE
		make_lists "$CASE" "$PREFIX" "$NOBJ" "$SIZE" "shard-%05d.bin" "$S3URL/bkt" "" ;;
	s3-small) SERVER=s3rver; PREFIX=$SMALL_PREFIX; NOBJ=$SMALL_N; SIZE=$SMALL_SIZE
		make_lists "$CASE" "$PREFIX" "$NOBJ" "$SIZE" "obj-%06d.bin" "$S3URL/bkt" "" ;;
	nginx-large) SERVER=nginx; PREFIX=$LARGE_PREFIX; NOBJ=$LARGE_N; SIZE=$LARGE_SIZE
		start_nginx
		make_lists "$CASE" "$PREFIX" "$NOBJ" "$SIZE" "shard-%05d.bin" "$NGXURL" "._S3rver_object" ;;
	esac
	TOTAL=$((NOBJ * SIZE))
	LIST="$tmp/$CASE.urls"
	# The server's files (objects, and s3rver's metadata) into the page cache.
	if [ "$CACHED" = 1 ]; then find "$WORK/s3ingest-data/bkt/$PREFIX" -type f -exec cat {} + > /dev/null; fi
	log "case $CASE: $NOBJ objects x $SIZE bytes from $SERVER"
	# One untimed pass first: the first run of a case ran slowest whatever
	# the tool (a fresh server warming up), and tuning starts with stoker.
	run warmup ceiling 4 0
	declare -A BEST=()
	for tool in $(tools_of "$CASE"); do
		if [ "$tool" = stoker-manifest ] || [ "$tool" = stoker-http ]; then
			BEST[$tool]=${BEST[stoker]}	# tuned as stoker
		elif [ "$TUNE" = 1 ]; then
			while read -r s; do run tune "$tool" "$s" 0; done < <(settings "$CASE" "$tool")
			BEST[$tool]=$(awk -F'\t' -v c="$CASE" -v t="$tool" '$1 == c && $2 == "tune" && $3 == t && $12 == 1 {
				if ($7 > m) { m = $7; s = $4 } } END { print s }' "$RES")
			[ -n "${BEST[$tool]}" ] || BEST[$tool]=$(settings "$CASE" "$tool" | head -1)
		else
			BEST[$tool]=$(settings "$CASE" "$tool" | head -1)
		fi
	done
	read -r -a tools <<< "$(tools_of "$CASE")"
	for r in $(seq 1 "$ROUNDS"); do
		n=${#tools[@]}
		for i in $(seq 0 $((n - 1))); do
			tool=${tools[$(( (i + r - 1) % n ))]}
			run round "$tool" "${BEST[$tool]}" "$r"
		done
	done
	if [ "$SERVER" = nginx ]; then stop_pid "$NGX_PID"; NGX_PID=""; fi
	unset BEST
done
END=$(date +%s)

# ---------------------------------------------------------------- report
python3 - "$RES" "$OUT/header.txt" "$((END - START))" "$TUNE" <<'EOF'
import sys, statistics
from collections import defaultdict
res, header, secs, tune = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rows = [l.rstrip("\n").split("\t") for l in open(res) if l.strip()]
labels = {"stoker": "stoker warm", "stoker-manifest": "stoker warm --manifest (s3:// URIs, no listing)", "stoker-http": "stoker warm --manifest (http:// URLs, unsigned, no listing)", "rclone": "rclone copy", "aws": "aws s3 cp --recursive",
          "aria2c": "aria2c -i", "curl": "curl --parallel", "curl-signed": "curl --parallel --aws-sigv4", "ceiling": "ceiling: N curls", "ceiling-tmpfs": "ceiling: N curls into tmpfs",
          "ceiling-signed": "ceiling: N curls, SigV4"}
print(open(header).read().rstrip())
print(f"total time: {secs // 60} min {secs % 60} s")
cases = []
for r in rows:
    if r[0] not in cases:
        cases.append(r[0])
for case in cases:
    cr = [r for r in rows if r[0] == case]
    nobj = None
    print(f"\n## {case}")
    if tune:
        print("\ntuning (one run each, MB/s):")
        for r in cr:
            if r[1] == "tune":
                print(f"  {labels[r[2]]:<26} {r[3]:<62} {float(r[6]):8.1f}" + ("" if r[11] == "1" else "  FAILED"))
    med = {}
    for tool in dict.fromkeys(r[2] for r in cr if r[1] == "round"):
        runs = [r for r in cr if r[1] == "round" and r[2] == tool and r[11] == "1"]
        bad = sum(1 for r in cr if r[1] == "round" and r[2] == tool and r[11] != "1")
        if not runs:
            med[tool] = None
            continue
        col = lambda i: statistics.median(float(r[i]) for r in runs)
        med[tool] = dict(setting=runs[0][3], mbs=col(6), objs=col(7), tool_cpu=col(8),
                         srv_cpu=col(9), other=col(10), runs=[float(r[6]) for r in runs], bad=bad)
    # Like is compared with like: each stoker variant against the peers that
    # send the server the same requests (listing or not, signed or not).
    if case.startswith("s3-"):
        groups = [("lists the prefix, signs", "stoker", ["rclone", "aws"], "ceiling-signed"),
                  ("URL list, signs", "stoker-manifest", ["curl-signed"], "ceiling-signed"),
                  ("URL list, unsigned", "stoker-http", ["curl", "aria2c"], "ceiling", "ceiling-tmpfs")]
    else:
        groups = [("URL list", "stoker", ["curl", "aria2c"], "ceiling", "ceiling-tmpfs")]
    groups = [g if len(g) == 5 else g + (None,) for g in groups]
    pair = {}
    for _, st_tool, peer_tools, ceil, kept in groups:
        for t in peer_tools + [ceil, kept]:
            if t:
                pair[t] = st_tool
    print(f"\nmedians of {max((len(m['runs']) for m in med.values() if m), default=0)} rounds:")
    print("| tool | setting | MB/s | objects/s | runs (MB/s) | tool CPU s | server CPU s | other CPU s | its stoker / this |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for tool, m in med.items():
        if not m:
            print(f"| {labels[tool]} | | failed | | | | | | |")
            continue
        st = med.get(pair.get(tool, ""))
        ratio = f"{st['mbs'] / m['mbs']:.2f}" if st else ""
        runs = ", ".join(f"{x:.0f}" for x in m["runs"]) + (f" ({m['bad']} failed)" if m["bad"] else "")
        print(f"| {labels[tool]} | `{m['setting']}` | {m['mbs']:.1f} | {m['objs']:.1f} | {runs} | "
              f"{m['tool_cpu']:.2f} | {m['srv_cpu']:.2f} | {m['other']:.2f} | {ratio} |")
    print()
    for name, st_tool, peer_tools, ceil, kept in groups:
        st = med.get(st_tool)
        if not st:
            continue
        peers = {t: med[t] for t in peer_tools if med.get(t)}
        line = f"{name}: {labels[st_tool]} {st['mbs']:.0f} MB/s"
        if peers:
            bp = max(peers, key=lambda t: peers[t]["mbs"])
            line += f"; / best peer ({labels[bp]}) = {st['mbs'] / peers[bp]['mbs']:.2f}"
        for c in (ceil, kept):
            if c and med.get(c):
                line += f"; / {labels[c]} = {st['mbs'] / med[c]['mbs']:.2f}"
        print(line)
print("\nMB/s = 10^6 bytes / wall seconds of the tool's command (stoker: `stoker warm`, "
      "listing included; rclone and aws list too; aria2c and curl get the URL list). "
      "Ratios pair each stoker variant with the peers that make the same requests: "
      "listing and signing (rclone, aws), a URL list signed (curl --aws-sigv4), a URL "
      "list unsigned (curl, aria2c; s3rver skips verifying them). The SigV4 ceiling has no listing. "
      "CPU: user+sys seconds of the tool (stoker: stokerd + the CLI), of the server "
      "process(es), and of everything else on the machine during the run.")
EOF
log "runs: $RES (use --out DIR to keep it)"
