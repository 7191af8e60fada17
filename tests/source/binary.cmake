# Fixed-width records and .npy sources (core: no optional dependency).
conveyor_add_test(source_binary_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/binary.cpp)
conveyor_add_fuzzer(npy_fuzz
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/npy_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/npy_fuzz)
