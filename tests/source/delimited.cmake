conveyor_add_test(source_delimited_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/delimited.cpp)
