conveyor_add_benchmark(bench_cache_miss_ratio SOURCES ${CMAKE_CURRENT_LIST_DIR}/miss_ratio.cpp)
