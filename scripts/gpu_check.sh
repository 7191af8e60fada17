#!/usr/bin/env bash
# scripts/gpu_check.sh: every check of the CUDA and LibTorch-on-CUDA paths that
# needs a GPU, in one call of the device tool (a lent machine with nvcc 13,
# CMake, ninja and PyTorch 2.x in python3; it cannot download anything).
#
# Here, first (once per session; needs Debian's Boost, doctest and DLPack):
#   scripts/gpu_carry.sh        # .gpu_carry/: the headers the machine lacks + the DEA file
# Then, with the device tool:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu_carry"], timeout_s=590)
#
# It configures build/gpu against the machine's PyTorch (its LibTorch and
# CMake prefix) and the carried headers (CMAKE_POLICY_VERSION_MINIMUM=3.5, in
# case its pip CMake is 4.x and a carried package file is older), builds the GPU tests, the two
# benchmarks and both examples for the machine's architecture only, then runs,
# each under a timeout inside a budget of GPU_CHECK_BUDGET_S seconds (540):
#   ctest -L gpu (gpu_device_test, torch_cuda_test, raw_cuda_train) and torch_test
#   gpu_staging_bench      staging vs a bare cudaMemcpyAsync loop; packed vs float32
#   raw_cuda_train         the DEA file, 10 epochs (plain CUDA kernels, cuda_sink)
#   dea_train              the DEA file, default step; then synthetic data with a
#                          step of >= 1 ms (--batch 1024 --hidden 8192): step time
#                          and the share of time spent waiting for data
#   dea_torch_bench        conveyor vs torch::data on this machine's CPUs
# Logs go to $OUT (the device tool brings back at most 8 files):
#   summary.txt (GPU, versions, each step's exit status and time, key lines),
#   build.log, ctest.log, gpu_staging_bench.log, raw_cuda_train.log,
#   dea_train.log, dea_torch_bench.log.
# Without $OUT they go to build/gpu/out. Exit status: 0 when every step
# passed, 1 otherwise; without a GPU (no nvidia-smi, or it lists none) it says
# "skipped" and exits 0. GPU_CHECK_CONFIGURE_ONLY=1 stops after the configure
# step, GPU or not (to test the script and the carried headers on a CPU machine).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${OUT:-$root/build/gpu/out}"
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-540}))
failed=0

# step NAME LOG LIMIT COMMAND...: runs COMMAND with its output appended to
# $out/LOG, under min(LIMIT, time left); records the exit status.
step() {
  local name=$1 log=$2 limit=$3
  shift 3
  local left=$((deadline - SECONDS))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    say "$(printf '%-24s SKIPPED (out of time)' "$name")"
    failed=1
    return 1
  fi
  local start=$SECONDS
  echo "=== $name: $*" >>"$out/$log"
  timeout --kill-after=10 "$limit" "$@" >>"$out/$log" 2>&1
  local rc=$?
  say "$(printf '%-24s rc=%-3d %4d s%s' "$name" "$rc" "$((SECONDS - start))" \
         "$( ((rc == 124 || rc == 137)) && echo '  (timed out)')")"
  ((rc == 0)) || failed=1
  return $rc
}

say "gpu_check: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
gpu=yes
if ! command -v nvidia-smi >/dev/null 2>&1; then
  gpu="no GPU (nvidia-smi not found)"
elif ! nvidia-smi -L >/dev/null 2>&1 || [[ -z "$(nvidia-smi -L 2>/dev/null)" ]]; then
  gpu="no GPU (nvidia-smi lists none)"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$summary" 2>&1
fi
if [[ "$gpu" != yes && "${GPU_CHECK_CONFIGURE_ONLY:-0}" != 1 ]]; then
  say "gpu_check: skipped: $gpu"
  exit 0
fi

# The carried headers (scripts/gpu_carry.sh), unpacked outside the tree.
deps=/tmp/conveyor_gpu_deps
carry=$root/.gpu_carry
if [[ ! -f "$carry/deps.tar.gz" ]]; then
  say "gpu_check: $carry/deps.tar.gz is missing: run scripts/gpu_carry.sh here and carry .gpu_carry"
  exit 1
fi
rm -rf "$deps" && mkdir -p "$deps" && tar -C "$deps" -xzf "$carry/deps.tar.gz"
data="$carry/fakename_1k_bf_encoded.tsv"
# dea_torch_bench reads ../shared/data (compiled in); give it the carried file.
if [[ -f "$data" && ! -f "$root/../shared/data/fakename_1k_bf_encoded.tsv" ]]; then
  mkdir -p "$root/../shared/data" && install -m 644 "$data" "$root/../shared/data/"
fi

python="${GPU_CHECK_PYTHON:-python3}"
torch_prefix="$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
torch_version="$("$python" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null)"
if [[ -z "$torch_prefix" ]]; then
  say "gpu_check: no PyTorch in $python: the LibTorch targets are not built"
  torch_prefix=""
fi
# The wheel's CUDA libraries (nvidia/*/lib) must be on -rpath-link to link.
rpath_link=""
if [[ -n "$torch_prefix" ]]; then
  site="$(dirname "$(dirname "$torch_prefix")")/.."
  for lib in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do
    [[ -d "$lib" ]] && rpath_link+=" -Wl,-rpath-link,$(cd "$lib" && pwd)"
  done
fi
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
arch=90
if [[ "$gpu" == yes ]]; then
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
  [[ -n "$cc" ]] && arch="$cc"
fi
say "LibTorch: ${torch_version:-none}; nvcc: $("$nvcc" --version 2>/dev/null | tail -1); cmake: $(cmake --version | head -1); architecture: $arch; cores: $(nproc)"

build="${GPU_CHECK_BUILD_DIR:-build/gpu}"
step configure build.log 300 \
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$deps/usr;$torch_prefix" \
    -DBoost_DIR="$deps/usr/lib/x86_64-linux-gnu/cmake/Boost-1.81.0" \
    -Ddoctest_DIR="$deps/usr/lib/cmake/doctest" \
    -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include" \
    -DCMAKE_CUDA_FLAGS="-isystem $deps/usr/include" \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCONVEYOR_WITH_CUDA=ON \
    -DCONVEYOR_CUDA_ARCHITECTURES="$arch" -DTORCH_CUDA_ARCH_LIST="${arch:0:1}.${arch:1}" \
    -DCONVEYOR_WITH_HDF5=OFF -DCONVEYOR_WITH_REDIS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_EXE_LINKER_FLAGS="$rpath_link" || { say "gpu_check: configure failed (build.log)"; exit 1; }
if [[ "${GPU_CHECK_CONFIGURE_ONLY:-0}" == 1 ]]; then
  say "gpu_check: configured $build (GPU_CHECK_CONFIGURE_ONLY=1: nothing built or run)"
  exit 0
fi

targets=(gpu_host_test gpu_device_test gpu_staging_bench raw_cuda_train)
[[ -n "$torch_prefix" ]] && targets+=(torch_test torch_cuda_test dea_train dea_torch_bench)
step build build.log 420 cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

# Tests: the GPU ones, and torch_test against this LibTorch with a GPU present.
step ctest_gpu ctest.log 240 ctest --test-dir "$build" -L gpu --output-on-failure --timeout 200
[[ -n "$torch_prefix" ]] &&
  step torch_test ctest.log 120 ctest --test-dir "$build" -R '^(torch_test|gpu_host_test)$' --output-on-failure
grep -E "tests passed|Skipped|Failed|\(Not Run\)" "$out/ctest.log" | sed 's/^/  /' >>"$summary"

step gpu_staging_bench gpu_staging_bench.log 120 "$build/bench/gpu/gpu_staging_bench"
grep -iE "ratio|GPU|samples/s|SKIPPED" "$out/gpu_staging_bench.log" | sed 's/^/  /' >>"$summary"

if [[ -f "$data" ]]; then
  step raw_cuda_train raw_cuda_train.log 120 "$build/examples/raw_cuda_train/raw_cuda_train" "$data" --epochs 10
else
  step raw_cuda_train raw_cuda_train.log 120 "$build/examples/raw_cuda_train/raw_cuda_train" --epochs 3
fi
grep -E "^(check|epoch|validation|FAIL)" "$out/raw_cuda_train.log" | sed 's/^/  /' >>"$summary"

if [[ -n "$torch_prefix" ]]; then
  [[ -f "$data" ]] && step dea_train dea_train.log 120 "$build/examples/dea_train/dea_train" "$data" --epochs 10
  step dea_train_1ms_step dea_train.log 150 \
    "$build/examples/dea_train/dea_train" --epochs 3 --batch 1024 --hidden 8192
  grep -E "^(staging|device|epoch|validation|FAIL)" "$out/dea_train.log" | sed 's/^/  /' >>"$summary"
  step dea_torch_bench dea_torch_bench.log 150 "$build/bench/torch/dea_torch_bench" 100000 256 2 3
  grep -E "ratio|MISMATCH" "$out/dea_torch_bench.log" | sed 's/^/  /' >>"$summary"
fi

say "gpu_check: $( ((failed)) && echo 'FAILED (see the logs)' || echo 'all steps passed'), $SECONDS s"
exit $failed
