conveyor_add_fuzzer(decode_bit_string SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/decode_bit_string.cpp
                    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/decode_bit_string)
conveyor_add_fuzzer(decode_int_set SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/decode_int_set.cpp
                    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/decode_int_set)
conveyor_add_fuzzer(decode_two_gram SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/decode_two_gram.cpp
                    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/decode_two_gram)
