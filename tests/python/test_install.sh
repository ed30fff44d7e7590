#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python package as users install it, with no download and no PYTHONPATH
# into the source tree:
#  1. `cmake --install BUILD --prefix P`: the package lands in P's site
#     directory and finds P's libstoker through stoker/_install.py;
#  2. `pip install --no-build-isolation --no-deps --target T ./python`
#     (offline), libstoker found through $STOKER_LIB.
# Each imported copy connects to a real stokerd and reads an object.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR STOKERD SITEDIR_REL WORKDIR
set -euo pipefail
build=$1 src=$2 stokerd=$3 site_rel=$4 work=$5
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work/data"
printf 'hello from stoker\n' >"$work/data/a.txt"
sock=$work/s.sock
"$stokerd" --socket "$sock" --ram 64M --metrics off --foreground --allow-root "$work/data" >"$work/stokerd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done


# 1. cmake --install into a prefix of its own.
cmake --install "$build" --prefix "$work/prefix" >/dev/null
PYTHONPATH_SAVE=${PYTHONPATH:-}
export PYTHONPATH="$work/prefix/$site_rel"
lib=$(find "$work/prefix" -name 'libstoker.so.0' | head -1)
[ -n "$lib" ] || { echo "FAIL: cmake --install wrote no libstoker.so.0" >&2; exit 1; }
grep -q "LIBDIR = \"$work/prefix/" "$work/prefix/$site_rel/stoker/_install.py"
# The interpreter finds the package there; PYTHONPATH stands for a site dir here.
(cd "$work" && STOKER_SOCKET="$sock" "$py" - "$work/data" "$lib" <<'PYEOF'
import sys, stoker
data, lib = sys.argv[1], sys.argv[2]
assert stoker._lib.lib._name == lib, (stoker._lib.lib._name, lib)
with stoker.Client() as c, c.open("file://" + data + "/") as ds, ds.get(0) as v:
    assert bytes(v.buffer) == b"hello from stoker\n"
print("cmake --install: ok", stoker.__file__)
PYEOF
) || { echo "FAIL: the cmake-installed package" >&2; cat "$work/stokerd.log" >&2; exit 1; }
export PYTHONPATH=$PYTHONPATH_SAVE

# 2. pip, offline: setuptools only, no build isolation, no index.
if "$py" -m pip --version >/dev/null 2>&1; then
	cp -r "$src/python" "$work/pkg" # pip builds in the source folder
	PIP_NO_INDEX=1 "$py" -m pip install --quiet --no-build-isolation --no-deps \
		--target "$work/pipped" "$work/pkg" 2>"$work/pip.log" ||
		{ echo "FAIL: pip install" >&2; cat "$work/pip.log" >&2; exit 1; }
	(cd "$work" && PYTHONPATH="$work/pipped" STOKER_LIB="$lib" STOKER_SOCKET="$sock" "$py" - "$work/data" <<'PYEOF'
import sys, stoker
assert stoker.__file__.startswith(sys.path[1]) or "pipped" in stoker.__file__, stoker.__file__
with stoker.Client() as c, c.open("file://" + sys.argv[1] + "/") as ds, ds.get(0) as v:
    assert bytes(v.buffer) == b"hello from stoker\n"
print("pip install: ok", stoker.__file__)
PYEOF
	) || { echo "FAIL: the pip-installed package" >&2; exit 1; }
else
	echo "pip not installed (Debian: python3-pip): the pip install was not checked" >&2
	exit 77
fi
