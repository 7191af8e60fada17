#!/usr/bin/env bash
# The main demo: installs what is missing, builds, runs a pipeline and prints
# its throughput and stats table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVEYOR_BUILD_TESTS=OFF \
      -DCONVEYOR_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release --target demo
./build/release/examples/demo/demo "$@"
