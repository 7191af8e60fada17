conveyor_add_fuzzer(delimited_fuzz
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/delimited_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/delimited_fuzz)
