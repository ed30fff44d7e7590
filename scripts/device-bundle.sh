#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Packs what scripts/device-check.sh needs on a GPU machine that has CUDA but
# none of our Debian libraries, no network and no apt: a Release build with
# CUDA (stokerd, stoker, stoker-bench, stoker-h2d and the gpu/ tests), nginx,
# curl and aria2c (plus GNU time and taskset, which a bare image may lack),
# and every shared library they load that is not glibc or the
# CUDA driver, taken from this machine (Debian 12; the GPU machine's glibc is
# newer, so these binaries run there).
#
# Usage: scripts/device-bundle.sh [--build DIR] [--out DIR]
#   --build DIR  the build directory (default build-devbundle, git-ignored)
#   --out DIR    where the bundle goes (default .devbundle, git-ignored
#                through .git/info/exclude)
#
# The bundle is two files: OUT/bundle.tar.gz (bin/ wrappers, libexec/ the real
# binaries, lib/ the libraries) and OUT/MANIFEST.txt.  The wrappers in bin/
# put the bundle's lib/ first in LD_LIBRARY_PATH for their own binary only,
# so python3 and the machine's tools never load our libraries.  libicudata
# (30 MiB, pulled in by aria2c's libxml2) is why it is a compressed tarball.
# Needs root here for apt-get when aria2, curl, nginx-light or time are missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
BUILD=build-devbundle
OUT=.devbundle
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "device-bundle: unknown option $1" >&2; exit 2 ;;
	esac
done
log() { echo "device-bundle: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- tools
need=()
command -v aria2c >/dev/null || need+=(aria2)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	log "apt-get install ${need[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "no CUDA toolkit (nvcc) here"

# ---------------------------------------------------------------- build
log "building Release with CUDA in $BUILD"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSTOKER_WITH_CUDA=ON >"$BUILD/devbundle-cmake.log" 2>&1 ||
	{ cat "$BUILD/devbundle-cmake.log" >&2; die "cmake failed"; }
grep -q 'stoker: CUDA path ON' "$BUILD/devbundle-cmake.log" || die "CUDA path is not ON (see $BUILD/devbundle-cmake.log)"
targets=(stokerd stoker-cli stoker-bench stoker-h2d test_gpu_stager_device test_gpu_stager)
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" >&2

bins=(
	"$BUILD/prefetch/stokerd"
	"$BUILD/client/stoker"
	"$BUILD/bench/stoker-bench"
	"$BUILD/bench/stoker-h2d"
	"$BUILD/tests/gpu/test_gpu_stager_device"
	"$BUILD/tests/gpu/test_gpu_stager"
	/usr/sbin/nginx
	"$(command -v curl)"
	"$(command -v aria2c)"
	/usr/bin/time
	"$(command -v taskset)"
)
for b in "${bins[@]}"; do [ -x "$b" ] || die "missing $b"; done

# ---------------------------------------------------------------- stage
stage=$(mktemp -d /tmp/stoker-devbundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/libexec" "$stage/lib"

# glibc (and the loader, the vDSO) and the CUDA driver come from the machine.
skip='^(linux-vdso\.so|ld-linux.*\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libcuda\.so|libnvidia-)'
libs_of() { # binary -> resolved library paths, one a line
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $2 == "=>" && $3 == "not" {print $1, "NOTFOUND"}'
}
for b in "${bins[@]}"; do
	name=$(basename "$b")
	cp -L "$b" "$stage/libexec/$name"
	case "$b" in "$BUILD"/*) strip --strip-unneeded "$stage/libexec/$name" ;; esac
	while read -r soname path; do
		[ "$path" != NOTFOUND ] || die "$b: $soname not found here"
		if [[ "$soname" =~ $skip ]]; then continue; fi
		[ -e "$stage/lib/$soname" ] || cp -L "$path" "$stage/lib/$soname"
	done < <(libs_of "$b")
	# A wrapper that finds the bundle from its own path, wherever it lies.
	cat >"$stage/bin/$name" <<EOF
#!/bin/sh
d=\$(cd "\$(dirname "\$0")/.." && pwd -P)
LD_LIBRARY_PATH="\$d/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$d/libexec/$name" "\$@"
EOF
	chmod 755 "$stage/bin/$name"
done
for l in "$stage"/lib/*; do chmod 644 "$l"; done

# Every library of every bundled binary and library must now resolve inside
# lib/ (or be glibc or the driver): what the GPU machine will see.
bad=0
for f in "$stage"/libexec/* "$stage"/lib/*; do
	while read -r soname path; do
		[[ "$soname" =~ $skip ]] && continue
		case "$path" in "$stage/lib/"*) ;; *) log "$f: $soname resolves to $path, not the bundle"; bad=1 ;; esac
	done < <(LD_LIBRARY_PATH="$stage/lib" libs_of "$f")
done
[ "$bad" = 0 ] || die "the bundle is incomplete"
for n in stokerd stoker stoker-bench stoker-h2d curl aria2c; do
	"$stage/bin/$n" --help >/dev/null 2>&1 || "$stage/bin/$n" --version >/dev/null 2>&1 ||
		die "$n does not start from the bundle"
done
"$stage/bin/nginx" -v >/dev/null 2>&1 || die "nginx does not start from the bundle"

# ---------------------------------------------------------------- pack
mkdir -p "$OUT"
rm -f "$OUT/bundle.tar.gz" "$OUT/MANIFEST.txt"
tar -C "$stage" -czf "$OUT/bundle.tar.gz" bin libexec lib
{
	echo "# stoker device bundle: unpack with tar -xzf bundle.tar.gz (scripts/device-check.sh does)"
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}')"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
	echo "cuda: $(/usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -1)"
	echo "versions: $("$stage/bin/nginx" -v 2>&1); $("$stage/bin/curl" --version | head -1 | cut -d' ' -f1-2); $("$stage/bin/aria2c" --version | head -1)"
	echo "unpacked: $(du -sh "$stage" | cut -f1); packed: $(du -sh "$OUT/bundle.tar.gz" | cut -f1)"
	echo
	(cd "$stage" && find bin libexec lib -type f -printf '%s\t%p\n' | sort -k2)
} >"$OUT/MANIFEST.txt"

# Keep the bundle out of git status without touching .gitignore.
case "$OUT" in
.devbundle | ./.devbundle | "$ROOT/.devbundle")
	excl=$(git rev-parse --git-path info/exclude 2>/dev/null || echo .git/info/exclude)
	mkdir -p "$(dirname "$excl")"
	grep -qx '/.devbundle/' "$excl" 2>/dev/null || echo '/.devbundle/' >>"$excl"
	;;
esac
log "bundle: $(du -sh "$OUT" | cut -f1) in $OUT ($(wc -l <"$OUT/MANIFEST.txt") lines of manifest)"
