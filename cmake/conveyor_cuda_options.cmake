# Settings for conveyor's own CUDA tests and benchmarks (never for consumers).
# Included by the top-level CMakeLists.txt when CONVEYOR_WITH_CUDA is on and the
# toolkit was found; tests/gpu and bench/gpu check TARGET conveyor_cuda_options.
include_guard(GLOBAL)

if(CONVEYOR_CCACHE AND NOT CMAKE_CUDA_COMPILER_LAUNCHER)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CONVEYOR_CCACHE})
endif()

# CMake 3.25 has no cuda_std_20 for nvcc 13 and drops CUDA_STANDARD 20 without a
# word, so the standard is passed to nvcc by hand. Architectures: Ampere (80,
# 86), Ada (89) and Hopper (90) as machine code, plus PTX for 90 so newer GPUs
# JIT it. nvcc does not take g++'s warning flags directly: -Xcompiler does.
add_library(conveyor_cuda_options INTERFACE)
target_compile_options(conveyor_cuda_options INTERFACE
  $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra>
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Werror=return-type>)
set(CONVEYOR_CUDA_ARCHITECTURES "80-real;86-real;89-real;90" CACHE STRING
    "GPU architectures of conveyor's CUDA tests and benchmarks (90: SASS and PTX)")

# conveyor_add_cuda_executable(NAME SOURCES a.cu b.cpp LIBS x): a program with
# .cu sources compiled by nvcc (C++20, the architectures above).
function(conveyor_add_cuda_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE conveyor::cuda conveyor_cuda_options ${ARG_LIBS})
  set_target_properties(${name} PROPERTIES CUDA_ARCHITECTURES "${CONVEYOR_CUDA_ARCHITECTURES}")
endfunction()
