# LibTorch component (opt-in): only when CMake found Torch for conveyor::torch.
# One translation unit: LibTorch's headers cost ~20 s of compile time each.
if(CONVEYOR_WITH_TORCH AND TARGET torch)
  conveyor_add_test(torch_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/torch.cpp LIBS conveyor::torch LABELS threaded)
  # to_torch(torch::kCUDA) after to_cuda (g++ with the CUDA runtime's headers):
  # the types and refusals run here; the GPU cases print SKIPPED without one.
  if(TARGET CUDA::cudart)
    conveyor_add_test(torch_cuda_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/torch_cuda.cpp
                      LIBS conveyor::torch conveyor::cuda LABELS gpu)
  endif()
  # The compile-fail cases that need LibTorch's headers (tests/compile_fail/torch/).
  get_target_property(conveyor_torch_includes torch INTERFACE_INCLUDE_DIRECTORIES)
  string(REPLACE ";" "|" conveyor_torch_includes "${conveyor_torch_includes}")
  file(GLOB cases CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/compile_fail/torch/*.cpp)
  foreach(case IN LISTS cases)
    get_filename_component(name ${case} NAME_WE)
    add_test(NAME compile_fail_torch_${name}
      COMMAND ${CMAKE_COMMAND} -DCOMPILER=${CMAKE_CXX_COMPILER} -DSOURCE=${case}
              -DINCLUDES=${PROJECT_SOURCE_DIR}/include "-DEXTRA_INCLUDES=${conveyor_torch_includes}"
              -P ${PROJECT_SOURCE_DIR}/tests/compile_fail/check_compile_fail.cmake)
  endforeach()
endif()
