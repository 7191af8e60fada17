#!/usr/bin/env bash
# Prepares .gpu_carry/, the folder scripts/gpu_check.sh needs on a lent GPU
# machine (which has nvcc, CMake, ninja and PyTorch 2.x, but not Debian's
# Boost, doctest or DLPack headers, and cannot download anything).
#
#   scripts/gpu_carry.sh          # writes .gpu_carry/ (about 0.5 MiB)
#
# deps.tar.gz holds, under usr/: the Boost headers the GPU build reaches
# (found with g++ -MM over the sources it compiles, so not all 180 MiB of
# them) and Boost's CMake package files, doctest's header and CMake package,
# DLPack's header; beside it, the DEA file (../shared/data/fakename_1k_bf_encoded.tsv,
# which does not travel with the checkout). The relative layout of each package is kept, so that
# CMAKE_PREFIX_PATH=<unpacked>/usr finds them. .gpu_carry/ is added to
# .git/info/exclude (ignored, so it travels only when `carry` names it).
# Then, with the device tool: run(command="bash scripts/gpu_check.sh",
# carry=[".gpu_carry"], timeout_s=590).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.gpu_carry
mkdir -p "$dir"
grep -qxF "/$dir/" .git/info/exclude 2>/dev/null || echo "/$dir/" >>.git/info/exclude

# Every header the GPU build's translation units include, found by the
# preprocessor (-M lists system headers too; LibTorch and CUDA are on the
# device already, so only Boost, doctest and DLPack are kept).
torch_include=""
for d in /usr/include/torch/csrc/api/include /usr/include; do
  [[ -d "$d" ]] && torch_include+=" -I$d"
done
cuda_include=/usr/local/cuda/include
sources=(tests/gpu/host.cpp tests/torch/torch.cpp tests/torch/torch_cuda.cpp
         examples/raw_cuda_train/raw_cuda_train.cpp examples/dea_train/dea_train.cpp
         bench/torch/dea_torch.cpp tests/doctest_main.cpp)
cu_sources=(tests/gpu/device.cu bench/gpu/staging.cu)
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for src in "${sources[@]}" "${cu_sources[@]}"; do
  [[ -f "$src" ]] || continue
  g++ -std=c++20 -M -MT x -x c++ -Iinclude -Itests -Ibench -I"$cuda_include" $torch_include \
      -DCONVEYOR_SHARED_DATA_DIR='""' -DCONVEYOR_SOURCE_DIR='""' "$src" 2>/dev/null |
    tr ' \\' '\n\n' | grep -E '^/usr/include/(boost|doctest|dlpack)/' >>"$list" || true
done
sort -u -o "$list" "$list"
count=$(wc -l <"$list")
((count > 0)) || { echo "gpu_carry: found no Boost/doctest/DLPack header (are they installed?)" >&2; exit 1; }
# The CMake package files of Boost (headers only) and doctest.
cmake_files=$(ls -d /usr/lib/x86_64-linux-gnu/cmake/Boost-1.81.0 \
                     /usr/lib/x86_64-linux-gnu/cmake/boost_headers-1.81.0 \
                     /usr/lib/x86_64-linux-gnu/cmake/BoostDetectToolset-1.81.0.cmake \
                     /usr/lib/cmake/doctest 2>/dev/null)
# doctest's package sits in usr/lib/cmake, Boost's in usr/lib/x86_64-linux-gnu/cmake: both
# resolve their include directory relative to themselves, to usr/include.
tar -C / -czf "$dir/deps.tar.gz" $(sed 's|^/||' "$list") $(echo "$cmake_files" | sed 's|^/||')
rm -f "$dir/deps.tar.zst"
data=../shared/data/fakename_1k_bf_encoded.tsv
if [[ -f "$data" ]]; then
  install -m 644 "$data" "$dir/"
else
  echo "gpu_carry: $data not found: gpu_check.sh will use synthetic data" >&2
fi
echo "gpu_carry: $count headers and the CMake package files in $dir/deps.tar.gz ($(du -h "$dir/deps.tar.gz" | cut -f1)); $(ls "$dir" | tr '\n' ' ')"
