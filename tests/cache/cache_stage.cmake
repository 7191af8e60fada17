# The cache stage: equivalence with the uncached pipeline over memory, disk and
# tiered tiers, key separation, damaged values, failing tiers; with Redis, a
# dead server and a server killed mid-epoch. A fuzzer for the stored-row check.
conveyor_add_test(cache_stage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cache_stage.cpp LABELS threaded)
if(CONVEYOR_WITH_REDIS)
  conveyor_add_test(cache_stage_redis_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cache_stage_redis.cpp
    LIBS conveyor::redis LABELS threaded)
endif()
conveyor_add_fuzzer(cache_row_fuzz
  SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/cache_row_fuzz.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/cache_row_fuzz)
