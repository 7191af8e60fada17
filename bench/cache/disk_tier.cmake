conveyor_add_benchmark(disk_tier_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/disk_tier.cpp LIBS rt)
