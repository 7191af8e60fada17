conveyor_add_test(decode_int_set_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/int_set.cpp)
