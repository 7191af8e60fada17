conveyor_add_test(core_half_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/half.cpp)
