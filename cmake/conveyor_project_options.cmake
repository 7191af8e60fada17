# Settings for conveyor's own tests, examples and benchmarks (never for consumers).
include_guard(GLOBAL)

find_program(CONVEYOR_CCACHE ccache)
if(CONVEYOR_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CONVEYOR_CCACHE})
endif()

add_library(conveyor_project_options INTERFACE)
target_compile_options(conveyor_project_options INTERFACE -Wall -Wextra -Wpedantic -Werror=return-type)
if(CONVEYOR_SANITIZE)
  target_compile_options(conveyor_project_options INTERFACE
    -fsanitize=${CONVEYOR_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(conveyor_project_options INTERFACE -fsanitize=${CONVEYOR_SANITIZE})
endif()

find_package(doctest QUIET)

# conveyor_add_test(NAME SOURCES a.cpp b.cpp LIBS x y LABELS threaded)
# One executable per area keeps translation units few; doctest's main comes from
# tests/doctest_main.cpp compiled once into an object library. Tests include
# shared helpers from tests/support/ as "support/temp_dir.hpp".
function(conveyor_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} $<TARGET_OBJECTS:conveyor_doctest_main>)
  target_link_libraries(${name} PRIVATE conveyor::core conveyor_project_options doctest::doctest ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    CONVEYOR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data"
    CONVEYOR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  if(ARG_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()

# conveyor_add_fuzzer(NAME SOURCE file.cpp CORPUS dir LIBS x): a libFuzzer target
# when CONVEYOR_BUILD_FUZZERS is on (clang), and always a replay test that runs
# the seed corpus through the same entry point, so the harness cannot rot. Both
# include the shared helpers of tests/support/ as "support/temp_dir.hpp".
function(conveyor_add_fuzzer name)
  cmake_parse_arguments(ARG "" "SOURCE;CORPUS" "LIBS" ${ARGN})
  add_executable(${name}_replay ${ARG_SOURCE} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
  target_link_libraries(${name}_replay PRIVATE conveyor::core conveyor_project_options ${ARG_LIBS})
  target_include_directories(${name}_replay PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${ARG_CORPUS})
  if(CONVEYOR_BUILD_FUZZERS)
    add_executable(${name} ${ARG_SOURCE})
    target_link_libraries(${name} PRIVATE conveyor::core ${ARG_LIBS})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined -g -O1)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  endif()
endfunction()
