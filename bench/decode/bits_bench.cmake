conveyor_add_benchmark(decode_bits_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/bits_bench.cpp)
