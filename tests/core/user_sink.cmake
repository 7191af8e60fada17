# A user's sink against the public stage protocol: delivered_batch (core/stage.hpp).
conveyor_add_test(core_user_sink_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/user_sink.cpp)
