#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and trains the dataset
# extension attack's model in LibTorch from a conveyor pipeline
# (examples/dea_train): synthetic data with no argument, or a TSV of the
# attack's layout, e.g. bash scripts/demo.sh ../shared/data/fakename_1k_bf_encoded.tsv
# The pipeline-only demo (no LibTorch) is build/release/examples/demo/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVEYOR_BUILD_TESTS=OFF \
      -DCONVEYOR_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release --target dea_train demo
./build/release/examples/dea_train/dea_train "$@"
