# docs/gpu.md's example: a .cu file compiled by nvcc (conveyor_add_cuda_executable,
# cmake/conveyor_cuda_options.cmake), as examples/raw_cuda_train is. Built where
# nvcc and <dlpack/dlpack.h> are found, not in sanitized builds; it prints
# "skipped: no CUDA device" (ctest: skipped) on a machine without a GPU. (The
# .cu path is listed by hand: conveyor_docs_example_skipped names a .cpp.)
if(NOT TARGET conveyor_cuda_options OR CONVEYOR_SANITIZE)
  set_property(GLOBAL APPEND PROPERTY CONVEYOR_DOCS_EXAMPLES_SKIPPED
               "${CMAKE_CURRENT_LIST_DIR}/gpu_pipeline.cu nvcc not found, or a sanitized build")
  return()
endif()
find_path(CONVEYOR_DLPACK_HEADER_DIR dlpack/dlpack.h)
if(NOT CONVEYOR_DLPACK_HEADER_DIR)
  set_property(GLOBAL APPEND PROPERTY CONVEYOR_DOCS_EXAMPLES_SKIPPED
               "${CMAKE_CURRENT_LIST_DIR}/gpu_pipeline.cu <dlpack/dlpack.h> not found")
  return()
endif()
conveyor_add_cuda_executable(docs_gpu_pipeline SOURCES ${CMAKE_CURRENT_LIST_DIR}/gpu_pipeline.cu)
target_include_directories(docs_gpu_pipeline PRIVATE ${CONVEYOR_DLPACK_HEADER_DIR})
if(CONVEYOR_BUILD_TESTS)
  add_test(NAME docs_example_gpu_pipeline COMMAND docs_gpu_pipeline WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs_example_gpu_pipeline PROPERTIES LABELS gpu SKIP_REGULAR_EXPRESSION "skipped: no CUDA device")
endif()
