#!/usr/bin/env bash
# Builds stoker's container image (deploy/Containerfile) with nothing but
# Debian's package mirror: no Docker Hub, no Docker engine.
#
#   deploy/build-image.sh [--smoke | --smoke-only] [--tag REPO] [--jobs N]
#                         [--rebuild-base] [--no-cache]
#
#   1. Installs what is missing of mmdebstrap, buildah, podman and runc (Debian 12,
#      as scripts/deps.sh does; needs root).
#   2. mmdebstrap makes a bookworm root filesystem (variant minbase, with
#      the slim images' dpkg excludes: no man pages, docs or locales) as a
#      tarball, and `podman import` makes it the base image
#      localhost/stoker-base:bookworm (kept; --rebuild-base makes it again).
#   3. `buildah bud --isolation chroot` builds deploy/Containerfile with
#      the repository's working tree as the context (.containerignore keeps
#      build trees and .git out) and tags REPO:VERSION and REPO:latest (REPO:
#      localhost/stoker).  --jobs: make -j in the build stage (2).
#   4. --smoke then runs, in the image: stokerd --help, the user and the absence
#      of compilers, a short stoker-bench demo (`--demo --steps 24`),
#      stoker-install-client into a shared directory, and from that copy, mounted
#      elsewhere, the shim (LD_PRELOAD) in the plain base image reading from a
#      stokerd in the stoker image and `import stoker` (PYTHONPATH) reading
#      an object.  It says which runner ran them: podman, or, where podman
#      cannot start containers, chroot into a working container's root
#      filesystem (buildah from + mount) in a private mount namespace.
#
# Time on this project's 2 shared cores: 7.5 min the first time with other
# builds running (mmdebstrap 2.5 min, the image 3.7 min: apt and the compile;
# 1.5 min with the machine quiet), ~1 min after a source change (cached
# layers: only the compile reruns), the smoke test 15 s (35 s with vfs).
#
# Everything lives under STOKER_IMAGE_DIR (default /var/tmp/stoker-image): the
# base tarball and a containers/storage root of its own, so the host's
# podman storage is untouched.  Use the image with the same flags, e.g.
#   podman --root /var/tmp/stoker-image/storage-overlay \
#     --runroot /var/tmp/stoker-image/run-overlay --storage-driver overlay \
#     save localhost/stoker:latest -o stoker.tar      # for `ctr import`, a registry...
#
# What works on this project's machines (Debian 12 in a Firecracker VM, root,
# no systemd, hybrid cgroups, no CAP_SYS_RESOURCE), found by trying:
#   - storage driver overlay (native kernel overlayfs on ext4), with cached
#     layers (--layers), so a rebuild after a source change redoes only the
#     compile; vfs (STOKER_STORAGE_DRIVER=vfs, chosen where overlay does not
#     mount) also works, without --layers, as each layer would be a full copy.
#   - buildah bud --isolation chroot (RUN steps need no OCI runtime; the network
#     is the host's, which apt-get in the build stage needs).
#   - podman run with --runtime runc: crun 1.8 refuses hybrid cgroups
#     ("cgroups in hybrid mode not supported").  And --ulimit nofile=N:N
#     --ulimit nproc=M:M below the current hard limits: podman's defaults
#     (1048576 open files) need CAP_SYS_RESOURCE ("setrlimit RLIMIT_NOFILE:
#     Operation not permitted").
# STOKER_IMAGE_RUNNER=podman|chroot forces the smoke test's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

dir=${STOKER_IMAGE_DIR:-/var/tmp/stoker-image}
mirror=${STOKER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${STOKER_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
base=localhost/stoker-base:bookworm
version=$(sed -n 's/^project(stoker VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
tag=localhost/stoker
jobs=2
smoke=0 build=1 rebuild_base=0 nocache=()

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1 ;;
	--smoke-only) smoke=1 build=0 ;;
	--tag) tag=${2:?--tag NAME}; shift ;;
	--jobs) jobs=${2:?--jobs N}; shift ;;
	--rebuild-base) rebuild_base=1 ;;
	--no-cache) nocache=(--no-cache) ;;
	-h|--help) usage; exit 0 ;;
	*) echo "build-image.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
image=$tag:${version:-latest}
say() { echo "build-image.sh: $*" >&2; }
t0=$SECONDS

# ---- 1. tools ---------------------------------------------------------------
need=()
for p in mmdebstrap buildah podman runc uidmap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || { say "need root to install: ${need[*]}"; exit 1; }
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(id -u)" -eq 0 ] || { say "run as root (rootless storage and mmdebstrap's unshare mode are untested)"; exit 1; }

# ---- storage: overlay where the kernel mounts it, else vfs --------------------
mkdir -p "$dir"
driver=${STOKER_STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
	p=$(mktemp -d "$dir/.probe.XXXXXX")
	mkdir "$p/l" "$p/u" "$p/w" "$p/m"
	if mount -t overlay overlay -o "lowerdir=$p/l,upperdir=$p/u,workdir=$p/w" "$p/m" 2>/dev/null; then
		umount "$p/m"; driver=overlay
	else
		driver=vfs
	fi
	rm -rf "$p"
fi
store=(--root "$dir/storage-$driver" --runroot "$dir/run-$driver" --storage-driver "$driver")
pm() { podman "${store[@]}" "$@"; }
bh() { buildah "${store[@]}" "$@"; }
say "storage: $driver under $dir"

# ---- 2. base image ------------------------------------------------------------
tarball=$dir/base-bookworm.tar
if [ "$build" = 1 ] && { [ "$rebuild_base" = 1 ] || ! pm image exists "$base"; }; then
	if [ "$rebuild_base" = 1 ] || [ ! -s "$tarball" ]; then
		say "mmdebstrap: bookworm minbase from $mirror"
		nice -n 10 mmdebstrap --variant=minbase --components=main --format=tar \
			--dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--dpkgopt='path-include=/usr/share/locale/locale.alias' \
			--aptopt='Acquire::Retries "3"' \
			bookworm "$tarball.tmp" \
			"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
			"deb $security bookworm-security main" 2>&1 | grep -v '^I: ' >&2 || true
		[ -s "$tarball.tmp" ] || { say "mmdebstrap failed"; exit 1; }
		mv -f "$tarball.tmp" "$tarball"
	fi
	say "podman import $tarball as $base"
	pm import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
fi

# ---- 3. the image -----------------------------------------------------------
if [ "$build" = 1 ]; then
	say "buildah bud deploy/Containerfile -> $image (this takes minutes)"
	tb=$SECONDS
	# Cached layers with overlay; with vfs each would be a full copy of the tree.
	layers=--layers=true; [ "$driver" = overlay ] || layers=--layers=false
	nice -n 10 buildah "${store[@]}" bud --isolation chroot "$layers" "${nocache[@]}" \
		--build-arg BASE="$base" --build-arg JOBS="$jobs" \
		-f deploy/Containerfile -t "$image" -t "$tag:latest" "$repo" >"$dir/build.log" 2>&1 ||
		{ tail -40 "$dir/build.log" >&2; say "build failed; the whole log is $dir/build.log"; exit 1; }
	say "built $image in $((SECONDS - tb)) s ($(pm image inspect --format '{{.Size}}' "$image" |
		awk '{printf "%.0f MB", $1 / 1e6}')); log: $dir/build.log"
fi
pm image exists "$image" || { say "no image $image: build it first"; exit 1; }
pm image exists "$base" || { say "no base image $base (the smoke test's plain trainer): build first"; exit 1; }
[ "$smoke" = 1 ] || { say "done in $((SECONDS - t0)) s"; exit 0; }

# ---- 4. smoke test ---------------------------------------------------------
# Runners: ctr IMAGE USER MOUNTS CMD...   (MOUNTS: "host:ctr,host:ctr" or "")
#          ctr_bg NAME IMAGE USER MOUNTS CMD...  ctr_stop NAME
hn=$(ulimit -Hn); [ "$hn" = unlimited ] || [ "$hn" -gt 1048576 ] && hn=1048576
hu=$(ulimit -Hu); [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ] && hu=32768
ulim=(--ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu")
mnt_args() { local IFS=,; for m in $1; do [ -n "$m" ] && printf -- '-v\n%s\n' "$m"; done; }

podman_ok() {
	local rt
	for rt in runc crun; do
		command -v "$rt" >/dev/null || continue
		if pm run --rm --runtime "$rt" --network none "${ulim[@]}" "$base" true 2>"$dir/podman-probe.log"; then
			runtime=$rt; return 0
		fi
	done
	return 1
}
runner=${STOKER_IMAGE_RUNNER:-}
if [ -z "$runner" ]; then
	if podman_ok; then runner=podman; else runner=chroot; fi
elif [ "$runner" = podman ]; then
	podman_ok || { say "podman cannot run containers here: $(tail -1 "$dir/podman-probe.log")"; exit 1; }
fi

declare -A bg_pid=() mounted=() roots=()
cleanup() {
	local n
	for n in "${!bg_pid[@]}"; do ctr_stop "$n"; done
	for n in "${!mounted[@]}"; do bh rm "${mounted[$n]}" >/dev/null 2>&1 || true; done
	rm -rf "$dir/smoke"
}
trap cleanup EXIT

if [ "$runner" = podman ]; then
	say "smoke: runner podman (runtime $runtime, storage $driver, --network none)"
	ctr() {
		local img=$1 user=$2 mounts=$3; shift 3
		local -a v; mapfile -t v < <(mnt_args "$mounts")
		pm run --rm --runtime "$runtime" --network none "${ulim[@]}" --user "$user" \
			"${v[@]}" --entrypoint '' "$img" "$@"
	}
	ctr_bg() {
		local name=$1 img=$2 user=$3 mounts=$4; shift 4
		local -a v; mapfile -t v < <(mnt_args "$mounts")
		pm rm -f "$name" >/dev/null 2>&1 || true
		pm run -d --name "$name" --runtime "$runtime" --network none "${ulim[@]}" --user "$user" \
			"${v[@]}" --entrypoint '' "$img" "$@" >/dev/null
		bg_pid[$name]=podman
	}
	ctr_stop() {
		pm logs "$1" >"$dir/$1.log" 2>&1 || true
		pm rm -f "$1" >/dev/null 2>&1 || true
		unset "bg_pid[$1]"
	}
else
	if [ -n "${STOKER_IMAGE_RUNNER:-}" ]; then why="STOKER_IMAGE_RUNNER=chroot"
	else why="podman cannot start containers here: $(tail -1 "$dir/podman-probe.log" 2>/dev/null)"; fi
	say "smoke: runner chroot ($why); storage $driver"
	# A working container per image (buildah from + mount: a writable root
	# filesystem), and a private mount namespace per run with /proc, /dev and
	# MOUNTS bound in.
	rootfs() {
		if [ -z "${mounted[$1]:-}" ]; then
			local c; c=$(bh from --pull-never --name "stoker-smoke-$RANDOM" "$1")
			mounted[$1]=$c
			roots[$1]=$(bh mount "$c")
		fi
	}
	chroot_cmd() {
		local img=$1 user=$2 mounts=$3; shift 3
		unshare --mount --pid --fork --kill-child --propagation private sh -ec '
			r=$1 user=$2 mounts=$3; shift 3
			mount -t proc proc "$r/proc"
			mount --rbind /dev "$r/dev"
			IFS=,
			for m in $mounts; do
				mkdir -p "$r${m#*:}"; mount --bind "${m%%:*}" "$r${m#*:}"
			done
			exec chroot --userspec="$user" "$r" /usr/bin/env -i HOME=/tmp STOKER_FOREGROUND=1 \
				PATH=/opt/stoker/bin:/usr/local/bin:/usr/bin:/bin "$@"' sh "${roots[$img]}" "$user" "$mounts" "$@"
	}
	rootfs "$image"; rootfs "$base" # here, not in the $(...) subshells below
	ctr() { chroot_cmd "$@"; }
	ctr_bg() {
		local name=$1; shift
		chroot_cmd "$@" >"$dir/$name.log" 2>&1 &
		bg_pid[$name]=$!
	}
	ctr_stop() {
		kill "${bg_pid[$1]}" 2>/dev/null || true
		wait "${bg_pid[$1]}" 2>/dev/null || true
		unset "bg_pid[$1]"
	}
fi

fail() { say "SMOKE FAILED: $*"; exit 1; }
ts=$SECONDS
u=65532:65532

out=$(ctr "$image" "$u" "" /opt/stoker/bin/stokerd --help 2>&1) || fail "stokerd --help: $out"
grep -q '^usage: stokerd' <<<"$out" || fail "stokerd --help printed: $out"
say "smoke: stokerd --help ok"
cfg=$(pm image inspect --format '{{.Config.User}} {{json .Config.Entrypoint}}' "$image")
[ "$cfg" = '65532:65532 ["/opt/stoker/bin/stokerd"]' ] || fail "image user and entrypoint: $cfg"
if [ "$runner" = podman ]; then # the image's own entrypoint and user
	out=$(pm run --rm --runtime "$runtime" --network none "${ulim[@]}" "$image" --version 2>&1) ||
		fail "entrypoint --version: $out"
	say "smoke: entrypoint and user from the image config: $out"
fi
out=$(ctr "$image" "$u" "" sh -c 'id -u; for t in gcc cc cmake make; do command -v $t; done; true' 2>&1)
[ "$out" = 65532 ] || fail "id / build tools in the image: $out"
say "smoke: runs as uid 65532, no gcc/cc/cmake/make"

out=$(ctr "$image" "$u" "" stoker-bench --demo --steps 24 2>&1) || fail "stoker-bench --demo: $out"
grep -q '^stall avoided (measured)' <<<"$out" || fail "stoker-bench --demo printed: $out"
say "smoke: stoker-bench --demo --steps 24 ok: $(grep '^stall avoided (measured)' <<<"$out")"

# The client pieces: copied by an "init container" into a shared directory
# at /mnt/client, then used from it mounted at /mnt/trainer/stoker by a
# trainer (the plain base image for the shim, which has neither stoker nor
# python; the stoker image for python), talking to stokerd in the stoker image.
s=$dir/smoke
rm -rf "$s"; mkdir -p "$s/client" "$s/sock" "$s/data"
chmod 1777 "$s/client"; chown 65532:65532 "$s/sock"
head -c 300000 /dev/urandom >"$s/data/a.bin"; echo hello >"$s/data/b.txt"; chmod -R a+rX "$s/data"

out=$(ctr "$image" "$u" "$s/client:/mnt/client" stoker-install-client /mnt/client 2>&1) ||
	fail "stoker-install-client: $out"
for f in lib/libstoker_shim.so lib/libstoker.so.0 python/stoker/__init__.py python/stoker/libstoker.so.0; do
	[ -e "$s/client/$f" ] || fail "stoker-install-client left no $f: $(ls -lR "$s/client")"
done
say "smoke: stoker-install-client copied $(find "$s/client" -type f | wc -l) files"

ctr_bg smoke-stokerd "$image" "$u" "$s/sock:/run/stoker,$s/data:/mnt/data" \
	stokerd --foreground --socket /run/stoker/stoker.sock --allow-root /mnt/data --metrics off --ram 64M
for _ in $(seq 100); do [ -S "$s/sock/stoker.sock" ] && break; sleep 0.1; done
[ -S "$s/sock/stoker.sock" ] || { ctr_stop smoke-stokerd; fail "stokerd made no socket: $(cat "$dir/smoke-stokerd.log")"; }

out=$(ctr "$base" 0:0 "$s/client:/mnt/trainer/stoker,$s/sock:/run/stoker,$s/data:/mnt/local" \
	env STOKER_SOCKET=/run/stoker/stoker.sock STOKER_SHIM_MAP=/mnt/ds=file:///mnt/data/ \
	LD_PRELOAD=/mnt/trainer/stoker/lib/libstoker_shim.so \
	sh -c 'grep -q libstoker_shim /proc/self/maps && echo preloaded; cmp /mnt/ds/a.bin /mnt/local/a.bin && cat /mnt/ds/b.txt' 2>&1) ||
	fail "the shim from the copy, in the base image: $out"
[ "$(printf '%s\n' "$out" | tr '\n' ' ')" = "preloaded hello " ] || fail "the shim from the copy printed: $out"
say "smoke: LD_PRELOAD=<copy>/lib/libstoker_shim.so in the plain base image read /mnt/ds/* from stokerd"

out=$(ctr "$image" "$u" "$s/client:/mnt/trainer/stoker,$s/sock:/run/stoker,$s/data:/mnt/local" \
	env PYTHONPATH=/mnt/trainer/stoker/python STOKER_SOCKET=/run/stoker/stoker.sock python3 -c '
import stoker, stoker._lib as L
assert stoker.__file__.startswith("/mnt/trainer/stoker/python/"), stoker.__file__
assert L.lib._name.startswith("/mnt/trainer/stoker/python/stoker/"), L.lib._name
ds = stoker.Client().open("file:///mnt/data/")
v = ds.get(ds.find("a.bin"))
assert bytes(v.buffer) == open("/mnt/local/a.bin", "rb").read()
print("ok", len(ds), L.lib._name)' 2>&1) || fail "import stoker from the copy: $out"
grep -q '^ok 2 ' <<<"$out" || fail "python from the copy printed: $out"
say "smoke: PYTHONPATH=<copy>/python: import stoker loaded ${out##* } and read a.bin"
ctr_stop smoke-stokerd

say "smoke: all passed with runner $runner in $((SECONDS - ts)) s (total $((SECONDS - t0)) s)"
