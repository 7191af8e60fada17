conveyor_add_test(cache_disk_tier_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/disk_tier.cpp LABELS threaded)
conveyor_add_fuzzer(disk_record_fuzz
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/disk_record_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/disk_record_fuzz)
