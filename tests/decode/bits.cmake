conveyor_add_test(decode_bits_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/bits.cpp)
