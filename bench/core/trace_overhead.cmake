# Tracing's cost: the same pipelines with spans compiled in (off, on) and compiled out, in one run.
conveyor_add_benchmark(bench_core_trace_overhead
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/trace_overhead.cpp ${CMAKE_CURRENT_LIST_DIR}/trace_overhead_compiled_out.cpp)
