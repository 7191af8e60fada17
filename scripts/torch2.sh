#!/usr/bin/env bash
# Builds and runs conveyor's torch tests (ctest -R torch: the test programs and
# the torch compile-fail cases) against LibTorch 2.x from PyPI's torch wheel.
# CI tests against Debian's LibTorch 1.13 (scripts/test.sh); this checks 2.x.
#
#   python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch
#   scripts/torch2.sh                        # uses /work/venv-torch if present
#   TORCH_PYTHON=/path/to/python scripts/torch2.sh
#
# The wheel is CUDA-enabled: its TorchConfig looks for the CUDA toolkit, and
# with CMake 3.25 needs TORCH_CUDA_ARCH_LIST set (its architecture detection
# fails under C++20); its libraries need the wheel's nvidia/*/lib folders on
# -Wl,-rpath-link to link. Without a GPU the CUDA test checks the error.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${TORCH_PYTHON:-}"
if [[ -z "$python" ]]; then
  python=python3
  [[ -x /work/venv-torch/bin/python ]] && python=/work/venv-torch/bin/python
fi
prefix="$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
version="$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
site="$(dirname "$(dirname "$prefix")")/.."
rpath_link=""
for lib in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do
  [[ -d "$lib" ]] && rpath_link+=" -Wl,-rpath-link,$(cd "$lib" && pwd)"
done
echo "LibTorch $version from $prefix"
dir="${TORCH2_BUILD_DIR:-build/torch2}"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix" \
      -DTORCH_CUDA_ARCH_LIST="8.0;9.0" -DCMAKE_EXE_LINKER_FLAGS="$rpath_link" \
      -DCONVEYOR_WITH_CUDA=OFF -DCONVEYOR_BUILD_EXAMPLES=OFF -DCONVEYOR_BUILD_BENCHMARKS=OFF >/dev/null
# torch_cuda_test exists where CMake found the CUDA toolkit (the wheel's configure needs it).
targets=(torch_test)
ninja -C "$dir" -t targets all 2>/dev/null | grep -q '^torch_cuda_test:' && targets+=(torch_cuda_test)
cmake --build "$dir" --target "${targets[@]}" -j "${JOBS:-$(nproc)}"
ctest --test-dir "$dir" -R torch --output-on-failure --timeout 600
