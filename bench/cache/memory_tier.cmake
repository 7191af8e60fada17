conveyor_add_benchmark(bench_cache_memory_tier SOURCES ${CMAKE_CURRENT_LIST_DIR}/memory_tier.cpp)
