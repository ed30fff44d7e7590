#!/usr/bin/env bash
# Builds and runs the whole test suite twice: a normal build, then one with
# AddressSanitizer and UndefinedBehaviorSanitizer. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

run_suite() { # build-dir, extra cmake args...
	local dir=$1
	shift
	cmake -S . -B "$dir" -DSTOKER_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
	(cd "$dir" && ctest --output-on-failure -j"$jobs")
}

# The suite builds build/ as the demo does (Release), so the two commands
# share one build in either order, and a warning only -O3 shows fails here.
echo "== tests (Release, the demo's build)"
run_suite build -DCMAKE_BUILD_TYPE=Release
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSTOKER_ASAN=ON -DSTOKER_UBSAN=ON

echo "== format (clang-format, .clang-format)"
if command -v clang-format >/dev/null; then
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
else
	echo "clang-format not installed: format not checked"
fi
