conveyor_add_test(core_histogram_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/histogram.cpp ${CMAKE_CURRENT_LIST_DIR}/error.cpp)
