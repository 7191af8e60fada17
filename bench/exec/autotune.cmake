conveyor_add_benchmark(bench_exec_autotune SOURCES ${CMAKE_CURRENT_LIST_DIR}/autotune.cpp)
