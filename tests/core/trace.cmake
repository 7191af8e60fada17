# Observability: stats as JSON, tracing (core/trace.hpp) and the progress line.
conveyor_add_test(core_trace_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/trace.cpp ${CMAKE_CURRENT_LIST_DIR}/progress.cpp
  LABELS threaded)
