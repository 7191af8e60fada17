# Runs ports/conveyor/portfile.cmake without the vcpkg tool (which cannot be
# installed where CI runs): the vcpkg functions the portfile calls are defined
# here as their documented behaviour for a header-only, release-only port, and
# each one checks what vcpkg's post-build checks would.
#   cmake -DPORT_DIR=ports/conveyor -DFEATURES="core;hdf5" -DPACKAGES_DIR=... -DBUILDTREES_DIR=... -P run_port.cmake
# What it cannot show: that vcpkg resolves the port's dependencies (Boost, HDF5
# come from the system here), and vcpkg's own post-build checks.
cmake_minimum_required(VERSION 3.25)
foreach(var PORT_DIR FEATURES PACKAGES_DIR BUILDTREES_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_port.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${PORT_DIR}/vcpkg.json" manifest)
string(JSON PORT GET "${manifest}" name)
string(JSON VERSION GET "${manifest}" version)
set(CURRENT_PACKAGES_DIR "${PACKAGES_DIR}")
set(CURRENT_BUILDTREES_DIR "${BUILDTREES_DIR}")
set(TARGET_TRIPLET x64-linux)
set(VCPKG_TARGET_IS_LINUX ON)
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}" "${CURRENT_BUILDTREES_DIR}")
file(MAKE_DIRECTORY "${CURRENT_BUILDTREES_DIR}")

function(vcpkg_check_features)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "OUT_FEATURE_OPTIONS" "FEATURES;INVERTED_FEATURES")
  set(options "")
  foreach(kind FEATURES INVERTED_FEATURES)
    set(pairs ${arg_${kind}})
    while(pairs)
      list(POP_FRONT pairs feature option)
      set(enabled OFF)
      if(feature IN_LIST FEATURES)
        set(enabled ON)
      endif()
      if(kind STREQUAL "INVERTED_FEATURES")
        if(enabled)
          set(enabled OFF)
        else()
          set(enabled ON)
        endif()
      endif()
      list(APPEND options "-D${option}=${enabled}")
    endwhile()
  endforeach()
  set(${arg_OUT_FEATURE_OPTIONS} "${options}" PARENT_SCOPE)
endfunction()

function(vcpkg_cmake_configure)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE")
  if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
    message(FATAL_ERROR "run_port.cmake: a header-only port sets VCPKG_BUILD_TYPE release")
  endif()
  list(JOIN arg_OPTIONS " " shown)
  message(STATUS "vcpkg_cmake_configure: ${shown}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${arg_SOURCE_PATH}" -B "${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel" -G Ninja
            -DCMAKE_BUILD_TYPE=Release "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}"
            ${arg_OPTIONS} ${arg_OPTIONS_RELEASE}
    OUTPUT_FILE "${CURRENT_BUILDTREES_DIR}/config-${TARGET_TRIPLET}-rel-out.log"
    ERROR_FILE "${CURRENT_BUILDTREES_DIR}/config-${TARGET_TRIPLET}-rel-err.log"
    RESULT_VARIABLE result)
  if(result)
    file(READ "${CURRENT_BUILDTREES_DIR}/config-${TARGET_TRIPLET}-rel-err.log" err)
    message(FATAL_ERROR "vcpkg_cmake_configure failed:\n${err}")
  endif()
endfunction()

function(vcpkg_cmake_install)
  execute_process(COMMAND ${CMAKE_COMMAND} --install "${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel"
                  OUTPUT_QUIET RESULT_VARIABLE result)
  if(result)
    message(FATAL_ERROR "vcpkg_cmake_install failed")
  endif()
endfunction()

# vcpkg moves CONFIG_PATH to share/<PACKAGE_NAME> and rewrites absolute paths;
# conveyor installs there already, relocatable, so there must be nothing to do.
function(vcpkg_cmake_config_fixup)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "PACKAGE_NAME;CONFIG_PATH" "")
  if(NOT arg_PACKAGE_NAME)
    set(arg_PACKAGE_NAME "${PORT}")
  endif()
  if(NOT arg_CONFIG_PATH)
    set(arg_CONFIG_PATH "share/${arg_PACKAGE_NAME}")
  endif()
  if(NOT arg_CONFIG_PATH STREQUAL "share/${arg_PACKAGE_NAME}")
    message(FATAL_ERROR "vcpkg_cmake_config_fixup: the config should already be in share/${arg_PACKAGE_NAME}")
  endif()
  file(GLOB configs "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}/*.cmake")
  if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}/${arg_PACKAGE_NAME}-config.cmake")
    message(FATAL_ERROR "vcpkg_cmake_config_fixup: no ${arg_CONFIG_PATH}/${arg_PACKAGE_NAME}-config.cmake")
  endif()
  foreach(config IN LISTS configs)
    file(READ "${config}" text)
    string(FIND "${text}" "${CURRENT_PACKAGES_DIR}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "vcpkg_cmake_config_fixup: ${config} names the absolute package path")
    endif()
  endforeach()
endfunction()

# vcpkg rewrites prefix= to ${pcfiledir}-relative and checks the .pc files.
function(vcpkg_fixup_pkgconfig)
  file(GLOB_RECURSE pcs "${CURRENT_PACKAGES_DIR}/*.pc")
  if(NOT pcs)
    message(FATAL_ERROR "vcpkg_fixup_pkgconfig: no .pc file installed")
  endif()
  foreach(pc IN LISTS pcs)
    file(READ "${pc}" text)
    string(FIND "${text}" "${CURRENT_PACKAGES_DIR}" at)
    if(NOT at EQUAL -1 OR NOT text MATCHES "prefix=\\\${pcfiledir}")
      message(FATAL_ERROR "vcpkg_fixup_pkgconfig: ${pc} is not relative to its own directory")
    endif()
  endforeach()
endfunction()

# vcpkg requires share/<port>/copyright. conveyor has no LICENSE file yet: say so
# loudly (a real vcpkg build stops here) rather than invent one.
function(vcpkg_install_copyright)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "FILE_LIST")
  foreach(file IN LISTS arg_FILE_LIST)
    if(NOT EXISTS "${file}")
      message(WARNING "vcpkg_install_copyright: ${file} does not exist; vcpkg would stop here (share/${PORT}/copyright is required)")
      return()
    endif()
  endforeach()
  file(INSTALL ${arg_FILE_LIST} DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
  list(GET arg_FILE_LIST 0 first)
  get_filename_component(name "${first}" NAME)
  file(RENAME "${CURRENT_PACKAGES_DIR}/share/${PORT}/${name}" "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright")
endfunction()

include("${PORT_DIR}/portfile.cmake")

foreach(required include/conveyor/conveyor.hpp share/${PORT}/usage share/${PORT}/conveyor-config.cmake
                 share/${PORT}/conveyor-config-version.cmake share/pkgconfig/conveyor.pc)
  if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${required}")
    message(FATAL_ERROR "run_port.cmake: the port did not install ${required}")
  endif()
endforeach()
message(STATUS "run_port.cmake: ${PORT} ${VERSION} [${FEATURES}] installed to ${CURRENT_PACKAGES_DIR}")
