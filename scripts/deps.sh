#!/usr/bin/env bash
# Installs what conveyor's build, tests, examples and benchmarks need on Debian 12,
# only when something is missing (quick when everything is there). Run as root.
set -euo pipefail
# libdlpack-dev: <dlpack/dlpack.h> for the CUDA component's DLPack export. The CUDA
# toolkit itself (nvcc, the runtime) is not a Debian package here: CI machines have
# it in /usr/local/cuda; without it CMake builds no CUDA test or benchmark.
packages=(build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
          libboost1.81-all-dev libhdf5-dev hdf5-tools doctest-dev libbenchmark-dev redis-server redis-tools
          libdlpack-dev libtorch-dev doxygen)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
