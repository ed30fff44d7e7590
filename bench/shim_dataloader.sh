#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# An unmodified PyTorch DataLoader script (bench/shim_loader.py: os.walk,
# open().read(), batch 32, 2 workers, shuffle, a fixed compute time per
# batch) over a bucket of small files, three ways in one run:
#   local   a local copy in the page cache: the floor
#   rclone  `rclone mount --vfs-cache-mode full` of the bucket: the FUSE
#           cache users reach for today
#   shim    the script under LD_PRELOAD=libstoker_shim.so with
#           STOKER_SHIM_MAP from a local path that does not exist to
#           s3://bkt/PREFIX/, through a fresh stokerd
# Epochs 1 and 2 of each, reported with the ratios the shim's goals name:
# shim epoch 2 / local, rclone epoch 1 / shim epoch 1.
#
# The bucket is s3rver (SigV4 verified) behind nginx with the Lua module
# adding --latency-ms to every request (ngx.sleep in access_by_lua_block):
# both rclone and stokerd go through that proxy.
#
# Usage: sudo bench/shim_dataloader.sh [--files N] [--kib K] [--latency-ms L]
#            [--compute-ms C] [--epochs E] [--build DIR] [--workdir DIR]
#            [--plan] [--modes LIST] [--out DIR]
#   defaults: 2,000 files of 100 KiB, +20 ms per request, 20 ms per batch,
#   2 epochs; --plan also runs the shim with STOKER_SHIM_PLAN: the first
#   epoch's sampler order, written ahead from a local copy of the listing
#   (shim_loader.py --write-plan), as a sampler could write it; --modes local,rclone,shim
#   (the default) runs only those named.
# Installs what it lacks (Debian 12, root): rclone fuse3 nginx
# libnginx-mod-http-lua nodejs npm python3-torch; @20minutes/s3rver@5.0.0.
set -euo pipefail

FILES=2000
KIB=100
LAT=20
COMPUTE=20
EPOCHS=2
BUILD=""
WORK=/var/tmp/stoker-shimbench
PLAN=0
OUT=""
MODES="local,rclone,shim"

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--files) FILES=$2; shift 2 ;;
	--kib) KIB=$2; shift 2 ;;
	--latency-ms) LAT=$2; shift 2 ;;
	--compute-ms) COMPUTE=$2; shift 2 ;;
	--epochs) EPOCHS=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	--workdir) WORK=$2; shift 2 ;;
	--plan) PLAN=1; shift ;;
	--modes) MODES=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "shim_dataloader: unknown option $1" >&2; usage 2 >&2 ;;
	esac
done

log() { echo "shim_dataloader: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, FUSE mounts, dropping the page cache)"

here=$(cd "$(dirname "$0")" && pwd)
[ -n "$BUILD" ] || BUILD="$here/../build"
STOKERD="$BUILD/prefetch/stokerd"
SHIM="$BUILD/shim/libstoker_shim.so"
want() { [[ ",$MODES," == *",$1,"* ]]; }
if want shim; then
	[ -x "$STOKERD" ] && [ -f "$SHIM" ] || die "no stokerd or libstoker_shim.so in $BUILD (build it first, or --build DIR)"
fi
PY=/usr/bin/python3 # Debian's, with python3-torch

need=()
command -v rclone >/dev/null || need+=(rclone)
command -v fusermount3 >/dev/null || need+=(fuse3)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
$PY -c 'import torch' 2>/dev/null || need+=(python3-torch)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	log "apt-get install ${need[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd -P)
S3RVER_VERSION=5.0.0
manifest="$WORK/npm/node_modules/@20minutes/s3rver/package.json"
if ! { [ -f "$manifest" ] && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
	"$manifest" "$S3RVER_VERSION"; }; then
	log "npm install @20minutes/s3rver@$S3RVER_VERSION into $WORK/npm"
	npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$WORK/npm" \
		"@20minutes/s3rver@$S3RVER_VERSION" >&2
fi

tmp=$(mktemp -d /tmp/stoker-shimbench.XXXXXX)
[ -n "$OUT" ] || OUT="$tmp/out"
mkdir -p "$OUT"
PIDS=()
MNT="$tmp/rclone-mnt"
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || true
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf -- "$tmp/local" "$tmp/rclone-cache" "$WORK/data"
	[ -n "${KEEP_TMP:-}" ] || rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url what
	for _ in $(seq 1 200); do
		curl -s -o /dev/null "$1" && return 0
		sleep 0.05
	done
	die "$2 did not answer at $1"
}

# ---------------------------------------------------------------- the data, s3rver, the proxy
PREFIX="ds-${FILES}x${KIB}K"
log "writing $FILES files of $KIB KiB (10 class directories) to $tmp/local"
$PY - "$tmp/local" "$FILES" "$((KIB << 10))" <<'EOF'
import os, random, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
for i in range(n):
    d = os.path.join(root, f"c{i % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
EOF
S3_PORT=$(free_port)
rm -rf "$WORK/data" && mkdir -p "$WORK/data"
node --openssl-legacy-provider "$here/../tests/tools/s3rver.js" --modules "$WORK/npm" -- \
	--directory "$WORK/data" --address 127.0.0.1 --port "$S3_PORT" --silent \
	--configure-bucket bkt > "$OUT/s3rver.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$S3_PORT/bkt" s3rver
log "uploading to s3rver (unsigned PUTs)"
(cd "$tmp/local" && find . -type f | sed 's|^\./||' | while read -r k; do
	printf 'upload-file = "%s"\nurl = "http://127.0.0.1:%s/bkt/%s/%s"\noutput = "/dev/null"\n' \
		"$tmp/local/$k" "$S3_PORT" "$PREFIX" "$k"
done) > "$tmp/upload.cfg"
curl -sS --fail --no-progress-meter -Z --parallel-max 16 -K "$tmp/upload.cfg" >&2 || die "upload failed"

PX_PORT=$(free_port)
cat > "$tmp/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
error_log $tmp/nginx-error.log;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx-body;
	proxy_temp_path $tmp/nginx-proxy;
	upstream s3 { server 127.0.0.1:$S3_PORT; keepalive 64; }
	server {
		listen 127.0.0.1:$PX_PORT;
		location / {
			access_by_lua_block { ngx.sleep($LAT / 1000) }
			proxy_pass http://s3;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$http_host;
			proxy_buffering off;
		}
	}
}
EOF
/usr/sbin/nginx -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" &
PIDS+=($!)
PX="http://127.0.0.1:$PX_PORT"
wait_http "$PX/bkt" "nginx (latency proxy)"

RESULTS="$OUT/results.tsv"
: > "$RESULTS"
run_loader() { # mode root [env...]
	local mode=$1 root=$2
	shift 2
	sync
	echo 3 > /proc/sys/vm/drop_caches
	log "$mode: $PY shim_loader.py $root (epochs $EPOCHS, compute $COMPUTE ms/batch)"
	env "$@" $PY "$here/shim_loader.py" "$root" --epochs "$EPOCHS" --compute-ms "$COMPUTE" \
		> "$OUT/$mode.json" 2> "$OUT/$mode.err" || { cat "$OUT/$mode.err" >&2; die "$mode: the loader failed"; }
	$PY - "$mode" "$OUT/$mode.json" "$FILES" >> "$RESULTS" <<'EOF'
import json, sys
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
j = json.load(open(path))
for i, e in enumerate(j["epochs"]):
    if e["samples"] != n:
        sys.exit(f"{mode}: epoch {i + 1} read {e['samples']} samples, want {n}")
    print(f"{mode}\t{i + 1}\t{e['seconds']:.3f}\t{e['compute_s']:.3f}\t{j['list_s']:.3f}")
EOF
}

# ---------------------------------------------------------------- local: the floor
if want local; then
	cat "$tmp"/local/*/* > /dev/null
	run_loader local "$tmp/local"
fi

# ---------------------------------------------------------------- rclone mount
if want rclone; then
mkdir -p "$MNT"
RCLONE_ENV=(RCLONE_CONFIG_S3B_TYPE=s3 RCLONE_CONFIG_S3B_PROVIDER=Other
	RCLONE_CONFIG_S3B_ENDPOINT="$PX" RCLONE_CONFIG_S3B_ACCESS_KEY_ID=S3RVER
	RCLONE_CONFIG_S3B_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_S3B_REGION=us-east-1
	RCLONE_CONFIG_S3B_FORCE_PATH_STYLE=true)
env -u AWS_CA_BUNDLE "${RCLONE_ENV[@]}" rclone mount "s3b:bkt/$PREFIX" "$MNT" --vfs-cache-mode full \
	--cache-dir "$tmp/rclone-cache" --dir-cache-time 1h > "$OUT/rclone.log" 2>&1 &
RCLONE_PID=$!
PIDS+=($RCLONE_PID)
for _ in $(seq 1 200); do mountpoint -q "$MNT" && break; sleep 0.05; done
mountpoint -q "$MNT" || die "rclone mount did not come up (see $OUT/rclone.log)"
run_loader rclone "$MNT"
fusermount3 -u "$MNT" || true
fi

# ---------------------------------------------------------------- the shim
shim_run() { # mode [env...]
	local mode=$1
	shift
	local sock="$tmp/$mode.sock"
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
		"$STOKERD" -f --socket "$sock" --ram 1G --s3-endpoint "$PX" --metrics off \
		> "$OUT/stokerd-$mode.log" 2>&1 &
	local dp=$!
	PIDS+=($dp)
	for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.02; done
	run_loader "$mode" "/nonexistent/stoker-shimbench/$PREFIX" LD_PRELOAD="$SHIM" \
		STOKER_SOCKET="$sock" \
		STOKER_SHIM_MAP="/nonexistent/stoker-shimbench/$PREFIX=s3://bkt/$PREFIX/" "$@"
	kill -TERM "$dp"
	wait "$dp" || true
}
want shim && shim_run shim
if want shim && [ "$PLAN" = 1 ]; then
	$PY "$here/shim_loader.py" "$tmp/local" --write-plan "$tmp/plan.txt" \
		--as "/nonexistent/stoker-shimbench/$PREFIX"
	shim_run shim-plan STOKER_SHIM_PLAN="$tmp/plan.txt"
fi

# ---------------------------------------------------------------- report
$PY - "$RESULTS" "$FILES" "$KIB" "$LAT" "$COMPUTE" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
t = {(m, int(e)): float(s) for m, e, s, c, ls in rows}
comp = {(m, int(e)): float(c) for m, e, s, c, ls in rows}
print(f"{sys.argv[2]} files of {sys.argv[3]} KiB, +{sys.argv[4]} ms per request (nginx+Lua in "
      f"front of s3rver), {sys.argv[5]} ms compute per batch of 32, 2 workers, shuffle")
print(f"{'mode':10} {'epoch':>5} {'seconds':>8} {'compute':>8} {'stall':>6}")
for (m, e), s in t.items():
    c = comp[(m, e)]
    print(f"{m:10} {e:5d} {s:8.2f} {c:8.2f} {max(0.0, 1 - c / s):6.0%}")
def r(a, b):
    return f"{t[a] / t[b]:.2f}" if a in t and b in t and t[b] > 0 else "n/a"
print(f"shim epoch 2 / local epoch 2: {r(('shim', 2), ('local', 2))}  (goal <= 1.05)")
print(f"rclone epoch 1 / shim epoch 1: {r(('rclone', 1), ('shim', 1))}  (goal >= 10)")
if ("shim-plan", 1) in t:
    print(f"rclone epoch 1 / shim with a plan epoch 1: {r(('rclone', 1), ('shim-plan', 1))}")
EOF
log "raw figures in $OUT"
