conveyor_add_benchmark(bench_cache_tiered SOURCES ${CMAKE_CURRENT_LIST_DIR}/tiered.cpp)
