#!/usr/bin/env bash
# The main job on its embedded default: installs what is missing, builds, and
# runs the bench demo (a built-in dataset behind an emulated slow backend, read
# by a simulated trainer directly and through stoker; prints the stall avoided).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bench/stoker-bench --demo "$@"
