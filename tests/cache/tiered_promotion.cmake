# tiered's promotion guard: a promotion held open in a gated lower tier while
# an erase or a newer put runs, and a stress run of rewrites and erases.
conveyor_add_test(cache_tiered_promotion_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tiered_promotion.cpp LABELS threaded)
