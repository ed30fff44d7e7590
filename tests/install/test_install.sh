#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# stoker as C and C++ users get it from `cmake --install BUILD --prefix P`:
#  a. examples/ built as a project of its own with find_package(stoker)
#     (CMAKE_PREFIX_PATH=P), and a C++ project with the gpu component;
#  b. examples/epoch.c and the C++ file built with `cc $(pkg-config --cflags
#     --libs stoker)` (PKG_CONFIG_PATH=P's libdir/pkgconfig);
#  c. each binary run against P's stokerd, loading P's libstoker (checked with
#     ldd), reading the dataset it is given; and the clear error with no daemon;
#     P's stoker CLI runs from P's libdir too (RPATH);
#  d. the man pages stokerd(8) and stoker(1) installed, and rendered by man(1)
#     (groff where man is not installed).
# Usage: test_install.sh BUILD_DIR SOURCE_DIR WORKDIR VERSION MAN(ON|OFF) [SANITIZER_FLAGS]
# Exit 77 (skip) only when everything else passed and the build made no man
# pages (help2man missing at configure time; scripts/deps.sh installs it).
set -euo pipefail
build=$1 src=$2 work=$3 version=$4 man=$5 san=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
rm -rf "$work" && mkdir -p "$work/data"
prefix=$work/prefix

# A dataset whose byte sum the example prints.
printf 'hello from stoker\n' >"$work/data/a.txt"
printf 'second object\n' >"$work/data/b.txt"
head -c 100000 /dev/zero | tr '\0' 'x' >"$work/data/c.bin"
sum=$(cat "$work/data/a.txt" "$work/data/b.txt" "$work/data/c.bin" | od -An -v -tu1 |
	awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s }')
uri=file://$work/data/

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; fail "cmake --install"; }
for f in include/stoker.h include/stoker/gpu.h bin/stokerd bin/stoker; do
	[ -e "$prefix/$f" ] || fail "cmake --install wrote no $f"
done
# GNUInstallDirs' libdir: lib, or lib/<multiarch> for a /usr prefix on Debian.
so=$(find "$prefix" -name libstoker.so.0 | head -1)
[ -n "$so" ] || fail "cmake --install wrote no libstoker.so.0"
libdir=$(dirname "$so")
for f in libstoker.so libstoker_gpu.so libstoker_gpu.so.0 pkgconfig/stoker.pc \
	pkgconfig/stoker-gpu.pc cmake/stoker/stokerConfig.cmake \
	cmake/stoker/stokerConfigVersion.cmake cmake/stoker/stokerTargets.cmake; do
	[ -e "$libdir/$f" ] || fail "cmake --install wrote no $libdir/$f"
done

sock=$work/s.sock
"$prefix/bin/stokerd" --socket "$sock" --ram 64M --metrics off --foreground \
	--allow-root "$work/data" >"$work/stokerd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$work/stokerd.log" >&2; fail "the installed stokerd did not listen"; }
export STOKER_SOCKET=$sock

# Runs binary $1 and checks that it loaded the prefix's libstoker (not one
# from /usr/local or the build tree) and read the dataset.
check_run() {
	local bin=$1 what=$2 got out
	got=$(ldd "$bin" | awk '$1 == "libstoker.so.0" { print $3 }')
	[ "$(realpath "$got")" = "$(realpath "$so")" ] ||
		fail "$what loads libstoker.so.0 from '$got', not from the prefix ($so)"
	out=$("$bin" "$uri") || fail "$what: exit $? (stokerd.log: $(cat "$work/stokerd.log"))"
	echo "$what: $out"
	case $out in
	"3 objects, byte sum $sum,"*) ;;
	*) fail "$what printed '$out', expected '3 objects, byte sum $sum, ...'" ;;
	esac
}
check_cxx() {
	local bin=$1 what=$2 out mode=gpu
	[ -z "$san" ] || mode=nogpu # the CUDA runtime is not asked under the sanitizers
	out=$("$bin" "$uri" "$mode") || fail "$what: exit $?"
	echo "$what: $out"
	[ "$(echo "$out" | head -1)" = "object 0: hello from stoker" ] ||
		fail "$what printed '$out'"
}

# a. CMake: examples/ on its own, and a C++ project with COMPONENTS gpu.
flags="-Wall -Wextra -Werror $san"
for p in examples:"$src/examples" cxx:"$here/cxx"; do
	name=${p%%:*} dir=${p#*:}
	cmake -S "$dir" -B "$work/$name" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
		-DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$san" \
		>"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; fail "configuring $dir"; }
	grep -qx "stoker_DIR:PATH=$libdir/cmake/stoker" "$work/$name/CMakeCache.txt" ||
		fail "$name: find_package(stoker) found $(grep stoker_DIR "$work/$name/CMakeCache.txt")"
	cmake --build "$work/$name" >>"$work/$name.log" 2>&1 ||
		{ cat "$work/$name.log" >&2; fail "building $dir against the prefix"; }
done
check_run "$work/examples/stoker-example-epoch" "find_package: examples/epoch.c"
check_cxx "$work/cxx/cxx-consumer" "find_package: C++ with stoker::stoker_gpu"

# b. pkg-config, from the prefix's libdir (a multiarch one included).
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion stoker)" = "$version" ] || fail "pkg-config --modversion stoker"
[ "$(pkg-config --variable=prefix stoker-gpu)" = "$prefix" ] || fail "stoker-gpu.pc's prefix"
rpath="-Wl,-rpath,$(pkg-config --variable=libdir stoker)"
# shellcheck disable=SC2046,SC2086 # pkg-config's output and $flags are meant to be split
cc $flags "$src/examples/epoch.c" -o "$work/epoch-pc" $(pkg-config --cflags --libs stoker) \
	"$rpath" || fail "cc \$(pkg-config --cflags --libs stoker) examples/epoch.c"
# shellcheck disable=SC2046,SC2086
c++ $flags "$here/cxx/main.cpp" -o "$work/cxx-pc" $(pkg-config --cflags --libs stoker-gpu) \
	"$rpath" || fail "c++ \$(pkg-config --cflags --libs stoker-gpu)"
check_run "$work/epoch-pc" "pkg-config: examples/epoch.c"
check_cxx "$work/cxx-pc" "pkg-config: C++ with stoker-gpu"

# c. With no daemon: exit 1 and a sentence, not a crash.
if out=$(STOKER_SOCKET=$work/none.sock "$work/epoch-pc" "$uri" 2>&1); then
	fail "epoch with no daemon exited 0: $out"
else
	rc=$?
	if [ "$rc" != 1 ] || [[ $out != "$uri: "?* ]]; then
		fail "epoch with no daemon: exit $rc, '$out'"
	fi
	echo "no daemon: $out"
fi
# The installed CLI finds the installed libstoker through its RPATH.
got=$(ldd "$prefix/bin/stoker" | awk '$1 == "libstoker.so.0" { print $3 }')
[ "$(realpath "$got")" = "$(realpath "$so")" ] || fail "bin/stoker loads libstoker from '$got'"
[ "$("$prefix/bin/stoker" --version)" = "stoker $version" ] || fail "stoker --version"
[ "$("$prefix/bin/stokerd" --version)" = "stokerd $version" ] || fail "stokerd --version"
[ "$("$prefix/bin/stoker" ls "$uri" | wc -l)" = 3 ] || fail "installed stoker ls"

# d. Man pages.
if [ "$man" != ON ]; then
	echo "SKIP: the build made no man pages (help2man was missing at configure time)" >&2
	exit 77
fi
render() { # man page file -> text
	if command -v man >/dev/null; then
		MANPAGER=cat MANWIDTH=100 man -l "$1" 2>&1
	else
		groff -man -Tutf8 "$1" 2>&1 | sed 's/.\x08//g'
	fi
}
check_man() { # FILE NAME SECTION WORD...
	local f=$1 name=$2 sec=$3 txt w
	shift 3
	[ -s "$f" ] || fail "no man page $f"
	txt=$(render "$f")
	for w in "${name^^}($sec)" NAME SYNOPSIS DESCRIPTION "SEE ALSO" "$version" "$@"; do
		grep -qF -- "$w" <<<"$txt" || fail "$f renders without '$w'"
	done
	if command -v man >/dev/null; then # found where man looks, by name and section
		MANPAGER="cat" man -M "$prefix/share/man" "$sec" "$name" >/dev/null 2>&1 ||
			fail "man -M $prefix/share/man $sec $name"
	fi
	echo "man: $name($sec) renders ($(wc -l <<<"$txt") lines)"
}
check_man "$prefix/share/man/man8/stokerd.8" stokerd 8 --allow-root STOKER_INSECURE --version
check_man "$prefix/share/man/man1/stoker.1" stoker 1 --socket STOKER_TIMEOUT warm
echo "install_consumers: ok"
