// The pipelines bench/core/trace_overhead.cpp times, included by two
// translation units: trace_overhead.cpp (spans compiled in) and
// trace_overhead_compiled_out.cpp (CONVEYOR_NO_TRACE). Everything here is in an
// anonymous namespace, so each unit's pipelines have types of their own and
// the two builds of the library's templates never meet at link time.
#pragma once

#include <time.h>  // clock_gettime (POSIX)

#include <chrono>
#include <conveyor/conveyor.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace trace_bench {

/// One epoch's cost: wall time, and CPU time of the calling thread and of the
/// whole process (robust to being descheduled on a shared machine).
struct epoch_cost {
  double wall = 0, thread_cpu = 0, process_cpu = 0;
};

namespace {

namespace cy = conveyor;

// The per-record work: xorshift bits expanded to floats (as a decoder would).
inline void fill_row(std::uint64_t index, std::span<float> row) {
  std::uint64_t state = index * 0x9e3779b97f4a7c15ull + 1;
  for (auto& value : row) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    value = static_cast<float>(state & 1u);
  }
}

inline double checksum(const float* data, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; i += 61) s += data[i];
  return s;
}

inline double cpu_seconds(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// What one epoch of `records` rows of `width` floats takes, in batches of
// `batch_rows`, through source | batch | map [| parallel(2) | prefetch(2)],
// traced into `trace` when it is not null.
inline epoch_cost one_epoch(std::uint64_t records, std::size_t width, std::size_t batch_rows,
                            bool threads, const std::shared_ptr<cy::trace_file>& trace,
                            double& sink) {
  auto scale = cy::map("scale", [](auto&& b) {
    for (auto& v : b.template get<"x">().values()) v *= 0.5f;
    return std::move(b);
  });
  auto run = [&](auto pipe) {
    epoch_cost cost{-cpu_seconds(CLOCK_MONOTONIC), -cpu_seconds(CLOCK_THREAD_CPUTIME_ID),
                    -cpu_seconds(CLOCK_PROCESS_CPUTIME_ID)};
    for (auto& b : pipe.epoch(0)) sink += checksum(b.template get<"x">().data(), b.rows() * width);
    cost.wall += cpu_seconds(CLOCK_MONOTONIC);
    cost.thread_cpu += cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    cost.process_cpu += cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    return cost;
  };
  // A lambda, not the function itself: its type is this unit's own (see the top).
  auto fill = [](std::uint64_t index, std::span<float> row) { fill_row(index, row); };
  auto base =
      cy::generate<cy::dense<"x", float>>(records, width, fill) | cy::batch(batch_rows) | scale;
  if (threads) {
    auto pipe = base | cy::parallel(2) | cy::prefetch(2);
    return trace ? run(pipe | cy::with_trace(trace)) : run(pipe);
  }
  return trace ? run(base | cy::with_trace(trace)) : run(base);
}

}  // namespace
}  // namespace trace_bench
