conveyor_add_fuzzer(memory_tier_fuzz
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/memory_tier_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/memory_tier_fuzz)
