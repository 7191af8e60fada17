conveyor_add_test(cache_tiered_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tiered.cpp LABELS threaded)
