# Wrap and stream stages of a user's, written with core/stream.hpp's public names alone.
conveyor_add_test(core_user_stages_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/user_stages.cpp LABELS threaded)
