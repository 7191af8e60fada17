# The compact forms a cache keeps: packed_bit_string and multi_hot, checked
# against bits and two_grams through decode(...).
conveyor_add_test(decode_multi_hot_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/multi_hot.cpp)
