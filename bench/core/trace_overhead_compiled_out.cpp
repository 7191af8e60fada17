// The same pipelines as trace_overhead.cpp with the spans compiled out
// (CONVEYOR_NO_TRACE): the baseline "tracing off" is measured against.
#define CONVEYOR_NO_TRACE 1
#include "trace_overhead_body.hpp"

trace_bench::epoch_cost epoch_compiled_out(std::uint64_t records, std::size_t width,
                                           std::size_t batch_rows, bool threads, double& sink) {
  return trace_bench::one_epoch(records, width, batch_rows, threads, nullptr, sink);
}
