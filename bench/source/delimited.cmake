conveyor_add_benchmark(delimited_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/delimited.cpp)
target_compile_definitions(delimited_bench PRIVATE CONVEYOR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
