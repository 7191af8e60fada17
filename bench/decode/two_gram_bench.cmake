conveyor_add_benchmark(decode_two_gram_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/two_gram_bench.cpp)
target_compile_definitions(decode_two_gram_bench PRIVATE CONVEYOR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
