# An overlay port that builds from this source tree:
#   vcpkg install conveyor[hdf5,redis] --overlay-ports=<conveyor>/ports
# For a registry, replace SOURCE_PATH with vcpkg_from_github(OUT_SOURCE_PATH
# SOURCE_PATH REPO <owner>/conveyor REF "v${VERSION}" SHA512 <sha> HEAD_REF main).
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

# Header-only: one (release) configure installs headers, the CMake package and conveyor.pc.
set(VCPKG_BUILD_TYPE release)

# Each optional component is a feature whose dependency vcpkg installs; the
# package config finds it when a consumer asks for the component. A feature
# that is off keeps CMake from looking for its dependency at all, so the build
# never picks up whatever else happens to be installed. (Not
# CMAKE_REQUIRE_FIND_PACKAGE_HDF5 for features that are on: FindHDF5's own
# probe for an HDF5 CMake config would then be required too, and fail.)
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  INVERTED_FEATURES
    hdf5  CMAKE_DISABLE_FIND_PACKAGE_HDF5
    torch CMAKE_DISABLE_FIND_PACKAGE_Torch
    cuda  CMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DCONVEYOR_BUILD_TESTS=OFF
    -DCONVEYOR_BUILD_EXAMPLES=OFF
    -DCONVEYOR_BUILD_BENCHMARKS=OFF
    -DCONVEYOR_BUILD_FUZZERS=OFF
    -DCONVEYOR_WITH_CUDA=OFF
    ${FEATURE_OPTIONS}
)
vcpkg_cmake_install()
# The config is installed to share/conveyor already: nothing to move.
vcpkg_cmake_config_fixup(PACKAGE_NAME conveyor CONFIG_PATH share/conveyor)
vcpkg_fixup_pkgconfig()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
