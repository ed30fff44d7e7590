#!/bin/bash
# SPDX-License-Identifier: MIT
# stokerd's memory per object and its time to open a manifest of N objects
# (default 1,000,000, ImageNet's shape: ~110 KB JPEGs in 1,000 directories).
#
#   bench/objmem.sh [N]         (BUILD=dir for another build tree)
#
# Nothing is fetched: the objects need not exist to be listed with their
# sizes.  Memory is stokerd's VmRSS (RssAnon: its heap; RssShmem: the
# resident tables it maps) after `stoker ls --manifest` minus before it,
# divided by N, next to the mean key length (a manifest's keys are its URIs).
set -euo pipefail
n=${1:-1000000}
build=${BUILD:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
stokerd=$here/$build/prefetch/stokerd
stoker=$here/$build/client/stoker
[ -x "$stokerd" ] && [ -x "$stoker" ] || {
	echo "objmem: build first (cmake --build $build)" >&2
	exit 2
}
dir=$(mktemp -d /var/tmp/stoker-objmem.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

python3 - "$dir" "$n" <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
with open(f"{d}/manifest.txt", "w") as f:
    for i in range(n):
        f.write(f"file://{d}/train/n{i % 1000:08d}/n{i % 1000:08d}_{i:07d}.JPEG {100000 + i % 20000}\n")
EOF
keylen=$(awk '{ s += length($1) } END { printf "%.0f", s / NR }' "$dir/manifest.txt")

"$stokerd" --foreground --socket "$dir/s" --allow-root "$dir" --ram 1G --log-level warn &
pid=$!
for _ in $(seq 100); do [ -S "$dir/s" ] && break; sleep 0.05; done

field() { awk -v f="$1:" '$1 == f { print $2 * 1024 }' "/proc/$pid/status"; }
rss0=$(field VmRSS) anon0=$(field RssAnon) shm0=$(field RssShmem)
t0=$(date +%s.%N)
"$stoker" --socket "$dir/s" ls --manifest "file://$dir/manifest.txt" | wc -l >"$dir/count"
t1=$(date +%s.%N)
rss1=$(field VmRSS) anon1=$(field RssAnon) shm1=$(field RssShmem)
listed=$(cat "$dir/count")
[ "$listed" -eq "$n" ] || {
	echo "objmem: listed $listed of $n objects" >&2
	exit 1
}
awk -v n="$n" -v t="$(echo "$t1 - $t0" | bc)" -v k="$keylen" \
	-v r="$((rss1 - rss0))" -v a="$((anon1 - anon0))" -v s="$((shm1 - shm0))" 'BEGIN {
	printf "objmem: %d objects, keys of %d bytes on average\n", n, k
	printf "objmem: open + list: %.2f s\n", t
	printf "objmem: stokerd RSS +%.0f B/object (heap %.0f, resident tables %.0f): %.0f B + the key\n",
		r / n, a / n, s / n, r / n - k
}'
