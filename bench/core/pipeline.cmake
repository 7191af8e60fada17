conveyor_add_benchmark(bench_core_pipeline SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline.cpp)
conveyor_add_benchmark(bench_core_queue SOURCES ${CMAKE_CURRENT_LIST_DIR}/queue.cpp)
