conveyor_add_test(cache_memory_tier_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/memory_tier.cpp
  ${CMAKE_CURRENT_LIST_DIR}/memory_tier_arena.cpp ${CMAKE_CURRENT_LIST_DIR}/row_codec.cpp
  LABELS threaded)
