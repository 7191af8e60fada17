#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest.
#   CONVEYOR_SANITIZE=address,undefined scripts/test.sh   (ASan + UBSan build)
#   CONVEYOR_SANITIZE=thread scripts/test.sh -L threaded  (TSan, threaded tests)
# Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
sanitize="${CONVEYOR_SANITIZE:-}"
dir="build/test${sanitize:+-${sanitize//,/-}}"
type=RelWithDebInfo
[[ -n "$sanitize" ]] && type=Debug
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DCONVEYOR_SANITIZE="$sanitize" \
      -DCONVEYOR_BUILD_BENCHMARKS="$([[ -z "$sanitize" ]] && echo ON || echo OFF)" >/dev/null
cmake --build "$dir" -j "$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 600 "$@"
