conveyor_add_test(decode_packed_bits_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/packed_bits.cpp)
conveyor_add_fuzzer(decode_packed_bits SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/decode_packed_bits.cpp
                    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/decode_packed_bits)
