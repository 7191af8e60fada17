# Redis tier tests: protocol units (no server) and tests against real
# redis-server processes and fake servers (they skip without redis-server).
if(CONVEYOR_WITH_REDIS)
  conveyor_add_test(cache_redis_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/redis.cpp ${CMAKE_CURRENT_LIST_DIR}/redis_protocol.cpp
    LIBS conveyor::redis
    LABELS threaded)
  conveyor_add_fuzzer(resp_fuzz
    SOURCE ${CMAKE_CURRENT_LIST_DIR}/../fuzz/resp_fuzz.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../fuzz/corpus/resp_fuzz
    LIBS conveyor::redis)
endif()
