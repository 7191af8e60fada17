# Second epoch through cache(memory_tier / disk_tier) vs recomputed, synthetic
# bit strings and the DEA pipeline; ratios against the uncached run.
conveyor_add_benchmark(cache_stage_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/cache_stage.cpp)
target_compile_definitions(cache_stage_bench PRIVATE CONVEYOR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
