# Finds what conveyor's components need; shared by the build and the installed
# package config so both resolve dependencies the same way.
include_guard(GLOBAL)

macro(conveyor_find_boost)
  if(NOT TARGET Boost::headers)
    find_package(Boost 1.81 REQUIRED)
  endif()
endmacro()

function(conveyor_link_core target)
  conveyor_find_boost()
  find_package(Threads REQUIRED)
  target_link_libraries(${target} INTERFACE Boost::headers Threads::Threads)
endfunction()

# The installed conveyor::hdf5 names hdf5::hdf5, which the package config finds
# for the hdf5 component, whether or not this build found HDF5: nothing installed
# was compiled against it, and the package is the same with or without it.
function(conveyor_link_hdf5 target)
  target_link_libraries(${target} INTERFACE $<INSTALL_INTERFACE:hdf5::hdf5>)
  find_package(HDF5 COMPONENTS C QUIET)
  if(HDF5_FOUND)
    if(TARGET hdf5::hdf5)
      target_link_libraries(${target} INTERFACE $<BUILD_INTERFACE:hdf5::hdf5>)
    else()
      target_include_directories(${target} SYSTEM INTERFACE $<BUILD_INTERFACE:${HDF5_C_INCLUDE_DIRS};${HDF5_INCLUDE_DIRS}>)
      target_link_libraries(${target} INTERFACE $<BUILD_INTERFACE:${HDF5_C_LIBRARIES}>)
      target_compile_definitions(${target} INTERFACE $<BUILD_INTERFACE:${HDF5_C_DEFINITIONS}>)
    endif()
  endif()
endfunction()

# CUDA runtime for conveyor::cuda (headers in include/conveyor/gpu/). Without a
# toolkit the target exists but links nothing CUDA, and conveyor's own build
# compiles nothing that includes a gpu/ header. <dlpack/dlpack.h> (Debian's
# libdlpack-dev) is found on the default include path.
# The installed conveyor::cuda names CUDA::cudart, which the package config
# finds for the cuda component, whether or not this build found the toolkit.
function(conveyor_link_cuda target)
  target_link_libraries(${target} INTERFACE $<INSTALL_INTERFACE:CUDA::cudart>)
  find_package(CUDAToolkit QUIET)
  if(TARGET CUDA::cudart)
    target_link_libraries(${target} INTERFACE $<BUILD_INTERFACE:CUDA::cudart>)
  endif()
endfunction()

# LibTorch (1.13 from Debian's libtorch-dev, or 2.x from PyPI's torch wheel
# through CMAKE_PREFIX_PATH). Not found: conveyor::torch links nothing and the
# torch tests, examples and benchmarks are skipped (they check TARGET torch).
# Installed, conveyor::torch links conveyor::torch_libraries, which the package
# config makes from the consumer's own TORCH_LIBRARIES: those hold absolute
# paths (libc10.so) of whichever LibTorch is found, so the build's must not be
# exported, and the package is the same whether or not this build found it.
function(conveyor_link_torch target)
  target_link_libraries(${target} INTERFACE $<INSTALL_INTERFACE:conveyor::torch_libraries>)
  find_package(Torch QUIET)
  if(Torch_FOUND OR TORCH_FOUND)
    target_link_libraries(${target} INTERFACE "$<BUILD_INTERFACE:${TORCH_LIBRARIES}>")
  endif()
endfunction()
