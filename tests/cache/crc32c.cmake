# CRC32C: check values, the interleaved SSE4.2 path against the portable one.
conveyor_add_test(cache_crc32c_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/crc32c.cpp)
