# redis_tier get_many throughput vs redis-benchmark on the same local server.
if(CONVEYOR_WITH_REDIS)
  conveyor_add_benchmark(bench_cache_redis SOURCES ${CMAKE_CURRENT_LIST_DIR}/redis.cpp LIBS conveyor::redis)
  target_include_directories(bench_cache_redis PRIVATE ${PROJECT_SOURCE_DIR}/tests/cache ${PROJECT_SOURCE_DIR}/tests)
endif()
