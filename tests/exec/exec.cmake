# parallel(n), prefetch(n) and the queue they share.
conveyor_add_test(exec_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/exec.cpp LABELS threaded)
