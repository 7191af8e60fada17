conveyor_add_test(cache_shm_tier_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/shm_tier.cpp LIBS rt LABELS threaded)
