# tiered's write-back hand-over: lookups, erases and newer puts while a victim
# moves from the top tier to the one below, and a stress run of every call.
conveyor_add_test(cache_tiered_write_back_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tiered_write_back.cpp LABELS threaded)
