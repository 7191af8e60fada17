# parallel(autotune), prefetch(autotune) and memory_budget(bytes).
conveyor_add_test(exec_autotune_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/autotune.cpp LABELS threaded)
