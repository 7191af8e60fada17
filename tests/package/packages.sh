#!/usr/bin/env bash
# The packaging checks (.ci/run's "packages" stage), each the way a user would
# consume conveyor. Needs conan (pip install conan) and pkg-config; the project's
# own build needs neither.
#   bash tests/package/packages.sh BUILD_DIR   (a configured build tree to install from)
# 1. one version: CMakeLists.txt = conanfile.py = both vcpkg.json = CHANGELOG.md;
#    the vcpkg manifests have the fields vcpkg requires
# 2. find_package of a component whose dependency is hidden fails with what to install
# 3. pkg-config: compile and run a pipeline with conveyor.pc's flags
# 4. add_subdirectory and 5. FetchContent from the local source tree
# 6. conan create with Debian's Boost and HDF5 as platform packages, test_package runs
# 7. the vcpkg port's configure and install steps, then find_package of the result
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:?usage: packages.sh BUILD_DIR}" && pwd)"
jobs="${CONVEYOR_PACKAGE_JOBS:-$(nproc)}"
# Under build/ (inside CCACHE_BASEDIR) so consumers of the source tree hit ccache across runs.
work="${CONVEYOR_PACKAGE_WORK:-$root/build/packages}"
rm -rf "$work" && mkdir -p "$work"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
consumer="$root/tests/package/consumer"
step() { echo "--- packages: $1"; }
# consume MODE BUILD_DIR [cmake args...] [-- targets]: configure, build, run what was built.
consume() {
  local mode=$1 dir=$2; shift 2
  local args=() targets=()
  while (($#)) && [[ $1 != -- ]]; do args+=("$1"); shift; done
  (($#)) && shift && targets=("$@")
  cmake -S "$consumer" -B "$dir" -G Ninja -DCONVEYOR_CONSUME="$mode" "${launcher[@]}" "${args[@]}" >"$dir.log" 2>&1 ||
    { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" ${targets[@]/#/--target } >>"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
  for exe in consumer consumer_components; do
    [[ -x "$dir/$exe" ]] && "$dir/$exe"
  done
  return 0
}

step "one version, manifests"
python3 "$root/tests/package/check_manifests.py"

step "find_package of a component whose dependency is missing"
cmake --install "$build" --prefix "$work/install" >/dev/null
mkdir -p "$work/missing"
if cmake -S "$consumer" -B "$work/missing" -G Ninja -DCMAKE_PREFIX_PATH="$work/install" \
     -DCMAKE_DISABLE_FIND_PACKAGE_HDF5=ON >"$work/missing.log" 2>&1; then
  echo "configured although HDF5 was hidden"; exit 1
fi
grep -q "component 'hdf5' needs HDF5, which was not found: install HDF5's C library (Debian: libhdf5-dev" "$work/missing.log" ||
  { cat "$work/missing.log"; echo "the failure does not say what to install"; exit 1; }
grep -m1 "component 'hdf5' needs" "$work/missing.log" | sed 's/^ */  /'

step "pkg-config"
export PKG_CONFIG_PATH="$work/install/share/pkgconfig"
[[ "$(pkg-config --modversion conveyor)" == "$(sed -nE 's/^project\(conveyor VERSION ([0-9.]+).*/\1/p' "$root/CMakeLists.txt")" ]]
# shellcheck disable=SC2046
${launcher:+ccache} c++ -std=c++20 -O1 $(pkg-config --cflags conveyor) "$consumer/main.cpp" -o "$work/pkgconfig_consumer" \
  $(pkg-config --libs conveyor)
"$work/pkgconfig_consumer"

step "add_subdirectory"
consume add_subdirectory "$work/subdirectory" -DCONVEYOR_SOURCE_DIR="$root"

step "FetchContent from a local path"
consume fetchcontent "$work/fetchcontent" -DCONVEYOR_SOURCE_DIR="$root" -- consumer

step "conan create (Boost and HDF5 from Debian as platform packages)"
export CONAN_HOME="$work/conan-home"
conan profile detect >/dev/null 2>&1
conan create "$root" -pr:a "$root/tests/package/conan/debian12" -c tools.cmake.cmaketoolchain:generator=Ninja \
  -c tools.build:jobs="$jobs" -c tools.cmake.cmake_layout:test_folder="$work/conan-test-package" \
  >"$work/conan.log" 2>&1 || { cat "$work/conan.log"; exit 1; }
sed -n '/Testing the package: Executing test/,$p' "$work/conan.log" | grep '^test_package:'

step "vcpkg port (configure and install steps without the vcpkg tool), then find_package"
cmake -DPORT_DIR="$root/ports/conveyor" -DFEATURES="core;hdf5;redis" -DPACKAGES_DIR="$work/vcpkg/packages" \
  -DBUILDTREES_DIR="$work/vcpkg/buildtrees" -P "$root/tests/package/vcpkg/run_port.cmake" 2>&1 | grep -v '^-- Installing'
consume find_package "$work/vcpkg-consumer" -DCMAKE_PREFIX_PATH="$work/vcpkg/packages" -- consumer
echo "--- packages: all passed"
