# Second epoch through cache(memory_tier / disk_tier) vs recomputed, synthetic
# bit strings and the DEA pipeline; ratios against the uncached run.
conveyor_add_benchmark(cache_stage_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/cache_stage.cpp)
target_compile_definitions(cache_stage_bench PRIVATE CONVEYOR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
if(CONVEYOR_WITH_HDF5 AND (TARGET hdf5::hdf5 OR TARGET HDF5::HDF5 OR HDF5_FOUND))
  target_link_libraries(cache_stage_bench PRIVATE conveyor::hdf5)
  target_compile_definitions(cache_stage_bench PRIVATE CONVEYOR_BENCH_HDF5=1)
endif()
