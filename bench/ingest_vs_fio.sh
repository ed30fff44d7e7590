#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Cold file:// ingest: how fast does stokerd pull a dataset from a local disk
# into its RAM cache, next to fio reading the same files with io_uring,
# O_DIRECT, 1 MiB blocks, queue depth 32 (the disk's practical ceiling).
#
# Rounds alternate fio, stoker, fio, stoker, ... and every round starts from a
# dropped page cache (echo 3 > /proc/sys/vm/drop_caches, which needs root).
# The stoker figure is bytes resident / time of one stk_warm() of the whole
# dataset in a freshly started daemon (stoker-bench --warm-only).  Medians of
# the rounds are reported; figures on 2 shared cores vary by +-30%.
#
# CPU is user + system seconds per GB: fio's whole run, and stokerd's during
# the warm (the daemon's start, and with --prefault the population of its RAM
# budget, come before).  --prefault starts stokerd with --prefault: its pages
# exist before the ingest, which then writes without first-touch faults.
#
# --tier1 measures tier 1 instead (issue 12): stokerd runs with --nvme-dir
# (a temp dir on the dataset's filesystem), a first warm that is not counted
# writes every object there, and each stoker round is a warm of a fresh
# daemon that promotes every object from tier 1 into RAM (checked: its
# nvme_reads); fio reads the tier-1 directory's own files.  That is tier 1's
# read throughput through the daemon, with its checksums, next to what a
# client handed the files' fds could read at best.
#
# Usage: bench/ingest_vs_fio.sh [--dir DIR] [--files N] [--size-mib M]
#                               [--rounds R] [--build DIR] [--prefault]
#                               [--tier1] [--keep] [--json]
set -euo pipefail

DIR=""
FILES=64
SIZE_MIB=16
ROUNDS=3
BUILD=""
KEEP=0
JSON=0
TIER1=0

usage() {
	sed -n '3,30p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--dir) DIR=$2; shift 2 ;;
	--files) FILES=$2; shift 2 ;;
	--size-mib) SIZE_MIB=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	--prefault) export STOKER_PREFAULT=1; shift ;;
	--tier1) TIER1=1; shift ;;
	--keep) KEEP=1; shift ;;
	--json) JSON=1; shift ;;
	-h|--help) usage 0 ;;
	*) echo "ingest_vs_fio: unknown option $1" >&2; usage 2 ;;
	esac
done
for v in "$FILES" "$SIZE_MIB" "$ROUNDS"; do
	case "$v" in ''|*[!0-9]*|0) echo "ingest_vs_fio: counts must be positive integers" >&2; exit 2 ;; esac
done

log() { echo "ingest_vs_fio: $*" >&2; }

# Binaries: --build DIR, else ./build next to the source tree, else PATH.
here=$(cd "$(dirname "$0")" && pwd)
[ -n "$BUILD" ] || BUILD="$here/../build"
find_bin() { # name, path inside the build tree
	if [ -x "$BUILD/$2" ]; then echo "$BUILD/$2"
	elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
	else log "cannot find $1 (build it, or pass --build DIR)"; exit 1
	fi
}
BENCH=$(find_bin stoker-bench bench/stoker-bench)
STOKERD=$(find_bin stokerd prefetch/stokerd)
command -v fio >/dev/null || { log "fio is not installed"; exit 1; }
PY=python3

if [ "$(id -u)" -ne 0 ]; then
	log "WARNING: not root, so the page cache cannot be dropped between rounds;"
	log "         rounds after the first read from RAM and the figures are NOT cold."
	CAN_DROP=0
else
	CAN_DROP=1
fi
drop_caches() {
	sync
	if [ "$CAN_DROP" = 1 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

MADE=""
NV=""
cleanup() {
	if [ -n "$MADE" ] && [ "$KEEP" = 0 ]; then rm -rf -- "$MADE"; fi
	if [ -n "$NV" ]; then rm -rf -- "$NV"; fi
}
trap cleanup EXIT INT TERM

if [ -z "$DIR" ]; then
	DIR=$(mktemp -d /var/tmp/stoker-ingest.XXXXXX)
	MADE=$DIR
	log "writing $FILES files x $SIZE_MIB MiB to $DIR ..."
	for i in $(seq -f %04g 0 $((FILES - 1))); do
		# Random content: nothing on the way may compress or dedupe it.
		head -c $((SIZE_MIB << 20)) /dev/urandom > "$DIR/shard-$i.bin"
	done
	sync
fi
DIR=$(cd "$DIR" && pwd -P)
fstype=$(stat -f -c %T "$DIR")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
	log "WARNING: $DIR is on $fstype: both sides read RAM, not a disk"
fi
TOTAL=$(find "$DIR" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
NFILES=$(find "$DIR" -type f | wc -l)
[ "$TOTAL" -gt 0 ] || { log "$DIR holds no data"; exit 1; }
RAM_MIB=$(( (TOTAL + TOTAL / 4) / 1048576 + 256 ))
log "dataset $DIR: $NFILES files, $TOTAL bytes ($fstype); daemon --ram ${RAM_MIB}M"

tmp=$(mktemp -d /tmp/stoker-ingest-out.XXXXXX)
trap 'cleanup; rm -rf -- "$tmp"' EXIT INT TERM

FIO_DIR=$DIR
if [ "$TIER1" = 1 ]; then
	# Beside the dataset, so both sides read the same disk; the daemons
	# stoker-bench starts take tier 1 from the flags' env twins.
	NV=$(mktemp -d "$(dirname "$DIR")/stoker-tier1.XXXXXX")
	export STOKER_NVME_DIR=$NV STOKER_NVME=$(( (TOTAL + TOTAL / 4) / 1048576 + 64 ))M
	FIO_DIR=$NV
fi

run_fio() { # round -> MB/s on stdout
	drop_caches
	# One job over every file below DIR (opendir recurses), each read once
	# from start to end; the byte count is checked below.
	/usr/bin/time -f "%U %S" -o "$tmp/cpu-fio-$1" \
	fio --name=ingest --opendir="$FIO_DIR" --ioengine=io_uring --direct=1 --bs=1M \
		--iodepth=32 --rw=read --numjobs=1 --thread --output-format=json \
		--output="$tmp/fio-$1.json" >/dev/null
	$PY - "$tmp/fio-$1.json" "$TOTAL" "$TIER1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["jobs"][0]["read"]
want = int(sys.argv[2])
# Tier 1's records carry headers and padding: its files hold a little more.
if r["io_bytes"] < want if sys.argv[3] == "1" else r["io_bytes"] != want:
    print(f"ingest_vs_fio: fio read {r['io_bytes']} bytes, the dataset has {want}",
          file=sys.stderr)
    sys.exit(1)
print(f"{r['io_bytes'] / (r['runtime'] / 1000.0) / 1e6:.1f}")
EOF
}

run_stoker() { # round -> MB/s on stdout
	drop_caches
	"$BENCH" --warm-only --dataset "$DIR" --stokerd "$STOKERD" --ram "${RAM_MIB}M" \
		--json > "$tmp/stoker-$1.json" 2> "$tmp/stoker-$1.err" || {
		log "stoker-bench --warm-only failed:"; cat "$tmp/stoker-$1.err" >&2; exit 1; }
	$PY - "$tmp/stoker-$1.json" "$TOTAL" "$TIER1" "$NFILES" <<'EOF'
import json, sys
w = json.load(open(sys.argv[1]))["warm"]
want = int(sys.argv[2])
if not w["complete"] or w["bytes"] != want:
    print(f"ingest_vs_fio: stoker warmed {w['bytes']} of {want} bytes", file=sys.stderr)
    sys.exit(1)
if sys.argv[3] == "1" and w.get("promoted") != int(sys.argv[4]):
    print(f"ingest_vs_fio: {w.get('promoted')} of {sys.argv[4]} objects came from tier 1",
          file=sys.stderr)
    sys.exit(1)
print(f"{w['mb_per_s']:.1f}")
print(f"{w['daemon_cpu_s']:.3f} 0", file=open(sys.argv[1] + ".cpu", "w"))
EOF
	mv "$tmp/stoker-$1.json.cpu" "$tmp/cpu-stoker-$1"
}

# CPU seconds (user + system) per GB read, from the round's /usr/bin/time output.
cpu_per_gb() { awk -v b="$TOTAL" '{ printf "%.3f", ($1 + $2) / (b / 1e9) }' "$1"; }

if [ "$TIER1" = 1 ]; then
	log "filling tier 1 ($NV, $STOKER_NVME) with a warm that is not counted ..."
	"$BENCH" --warm-only --dataset "$DIR" --stokerd "$STOKERD" --ram "${RAM_MIB}M" \
		--json > "$tmp/fill.json" 2> "$tmp/fill.err" || {
		log "stoker-bench --warm-only failed:"; cat "$tmp/fill.err" >&2; exit 1; }
fi

FIO=()
STK=()
FIOC=()
STKC=()
for r in $(seq 1 "$ROUNDS"); do
	f=$(run_fio "$r")
	FIOC+=("$(cpu_per_gb "$tmp/cpu-fio-$r")")
	log "round $r: fio $f MB/s, ${FIOC[-1]} CPU-s/GB"
	s=$(run_stoker "$r")
	STKC+=("$(cpu_per_gb "$tmp/cpu-stoker-$r")")
	log "round $r: stoker $s MB/s, ${STKC[-1]} CPU-s/GB"
	FIO+=("$f")
	STK+=("$s")
done

$PY - "$JSON" "$CAN_DROP" "$DIR" "$TOTAL" "$NFILES" "${FIO[*]}" "${STK[*]}" "${FIOC[*]}" \
	"${STKC[*]}" <<'EOF'
import json, os, statistics, sys
as_json, cold, d, total, nfiles = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5])
fio = [float(x) for x in sys.argv[6].split()]
stk = [float(x) for x in sys.argv[7].split()]
fioc = [float(x) for x in sys.argv[8].split()]
stkc = [float(x) for x in sys.argv[9].split()]
mf, ms = statistics.median(fio), statistics.median(stk)
cf, cs = statistics.median(fioc), statistics.median(stkc)
if as_json:
    print(json.dumps({"dataset": d, "bytes": total, "files": nfiles, "cold": cold,
                      "fio_mb_per_s": fio, "stoker_mb_per_s": stk,
                      "fio_cpu_s_per_gb": fioc, "stoker_cpu_s_per_gb": stkc,
                      "prefault": bool(os.environ.get("STOKER_PREFAULT")),
                      "tier1": bool(os.environ.get("STOKER_NVME_DIR")),
                      "fio_median_mb_per_s": mf, "stoker_median_mb_per_s": ms,
                      "ratio_stoker_fio": ms / mf if mf else None,
                      "cpu_ratio_stoker_fio": cs / cf if cf else None}, indent=2))
    sys.exit(0)
tier1 = bool(os.environ.get("STOKER_NVME_DIR"))
print(f"cold {'tier-1 reads' if tier1 else 'file:// ingest'} of {d}: {nfiles} files, "
      f"{total / 1e6:.1f} MB" + ("" if cold else "  (NOT cold: not root)"))
print("fio: io_uring, O_DIRECT, bs=1M, iodepth=32; stoker: stk_warm() in a fresh stokerd"
      + (", every object promoted from tier 1 (fio reads tier 1's files)" if tier1 else ""))
print("CPU: user + system seconds per GB read (fio: its run; stoker: stokerd during the warm)"
      + ("; stokerd --prefault" if os.environ.get("STOKER_PREFAULT") else ""))
print(f"{'round':>6} {'fio MB/s':>10} {'stoker MB/s':>12} {'stoker/fio':>11}"
      f" {'fio CPU/GB':>11} {'stoker CPU/GB':>14} {'CPU ratio':>10}")
for i, (f, s, a, b) in enumerate(zip(fio, stk, fioc, stkc), 1):
    print(f"{i:>6} {f:>10.1f} {s:>12.1f} {s / f if f else 0:>11.2f}"
          f" {a:>11.3f} {b:>14.3f} {b / a if a else 0:>10.2f}")
print(f"{'median':>6} {mf:>10.1f} {ms:>12.1f} {ms / mf if mf else 0:>11.2f}"
      f" {cf:>11.3f} {cs:>14.3f} {cs / cf if cf else 0:>10.2f}")
EOF
