// What tracing costs (core/trace.hpp).
//
// The same pipeline, in one run, three ways: spans compiled out
// (CONVEYOR_NO_TRACE, in trace_overhead_compiled_out.cpp), spans compiled in
// with tracing off (the default build), and tracing on (writing a Chrome trace
// to a temporary file, flushed at the epoch's end, inside the timed epoch).
// Target: off costs at most 1% (ratio compiled out / off >= 0.99).
// Two shapes: a sequential pipeline (source | batch | map, all on the calling
// thread), timed by that thread's CPU time, and a threaded one
// (| parallel(2) | prefetch(2)), timed by the process's CPU time (every
// thread's work) and by wall time. CPU time is what makes a 1% figure
// readable on a shared machine: a descheduled thread does not look slow.
// Each shape runs records of 256 floats in batches of 256 (about 1 us of work
// per record) and, to make spans as frequent as possible relative to the
// work, 16 floats in batches of 4 (fewer records when threaded: every batch
// is a handoff between threads). Each figure is the best of N interleaved
// repetitions (N = argv[1], default 15), and, because one repetition's
// out and off run back to back, the median of the N paired ratios.
// Last, the span itself: a loop of 100 million spans with tracing off against
// the same loop with null_trace_span (what CONVEYOR_NO_TRACE selects), in
// thread CPU time, as nanoseconds per span. Multiplied by the spans per batch
// (3 to 7, printed above) and divided by a batch's time, it bounds what "off"
// can cost whatever the noise of the pipeline figures.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "trace_overhead_body.hpp"

trace_bench::epoch_cost epoch_compiled_out(std::uint64_t records, std::size_t width,
                                           std::size_t batch_rows, bool threads, double& sink);

namespace {

struct shape {
  const char* label;
  std::uint64_t records;
  std::size_t width;
  std::size_t batch_rows;
  bool threads;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Seconds of this thread's CPU for `count` spans of type Span over a slot that is null (tracing
// off).
template <class Span>
double span_loop(std::uint64_t count,
                 const std::atomic<const conveyor::detail::trace_label*>& slot) {
  double begin = trace_bench::cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  for (std::uint64_t i = 0; i < count; ++i) {
    Span span(slot, conveyor::detail::span_kind::call, 0, i);
    asm volatile("" : : "r"(i) : "memory");  // one iteration per span, nothing hoisted or merged
  }
  return trace_bench::cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - begin;
}

struct best {
  trace_bench::epoch_cost cost{1e9, 1e9, 1e9};
  void add(const trace_bench::epoch_cost& c) {
    cost.wall = std::min(cost.wall, c.wall);
    cost.thread_cpu = std::min(cost.thread_cpu, c.thread_cpu);
    cost.process_cpu = std::min(cost.process_cpu, c.process_cpu);
  }
};

}  // namespace

int main(int argc, char** argv) {
  int repetitions = argc > 1 ? std::stoi(argv[1]) : 15;
  auto path = (std::filesystem::temp_directory_path() / "conveyor-trace-overhead.json").string();
  const shape shapes[] = {
      {"sequential, batches of 256 x 256 floats", 100'000, 256, 256, false},
      {"sequential, batches of 4 x 16 floats", 200'000, 16, 4, false},
      {"threaded, batches of 256 x 256 floats", 100'000, 256, 256, true},
      {"threaded, batches of 4 x 16 floats", 40'000, 16, 4, true},
  };
  double sink = 0;
  std::printf(
      "best of %d interleaved repetitions; ratios are compiled out / traced build (1.000: same "
      "cost)\n",
      repetitions);
  for (const auto& s : shapes) {
    best out, off, on;
    std::vector<double> paired;
    std::uint64_t spans = 0;
    for (int i = 0; i < repetitions; ++i) {
      auto o = epoch_compiled_out(s.records, s.width, s.batch_rows, s.threads, sink);
      auto f = trace_bench::one_epoch(s.records, s.width, s.batch_rows, s.threads, nullptr, sink);
      out.add(o);
      off.add(f);
      paired.push_back(s.threads ? o.process_cpu / f.process_cpu : o.thread_cpu / f.thread_cpu);
      auto file = std::make_shared<conveyor::trace_file>(path);
      on.add(trace_bench::one_epoch(s.records, s.width, s.batch_rows, s.threads, file, sink));
      spans = file->events_written();
    }
    std::printf("%s: %llu batches, %llu spans when on\n", s.label,
                static_cast<unsigned long long>(s.records / s.batch_rows),
                static_cast<unsigned long long>(spans));
    auto line = [](const char* what, double o, double f, double n) {
      std::printf(
          "  %-12s compiled out %8.1f ms  off %8.1f ms  on %8.1f ms   off: %.3f%s  on: %.3f\n",
          what, o * 1e3, f * 1e3, n * 1e3, o / f, " (target >= 0.99)", o / n);
    };
    if (s.threads) {
      line("process CPU", out.cost.process_cpu, off.cost.process_cpu, on.cost.process_cpu);
      line("wall", out.cost.wall, off.cost.wall, on.cost.wall);
    } else {
      line("thread CPU", out.cost.thread_cpu, off.cost.thread_cpu, on.cost.thread_cpu);
    }
    std::printf(
        "  off: median of %d paired ratios %.3f; %.1f us of work per batch (compiled out, best)\n",
        repetitions, median(paired),
        (s.threads ? out.cost.process_cpu : out.cost.thread_cpu) * 1e6 /
            static_cast<double>(s.records / s.batch_rows));
  }
  {
    constexpr std::uint64_t count = 100'000'000;
    std::atomic<const conveyor::detail::trace_label*> off_slot{nullptr};
    double with_span = 1e9, without = 1e9;
    for (int i = 0; i < 5; ++i) {
      without = std::min(without, span_loop<conveyor::detail::null_trace_span>(count, off_slot));
      with_span =
          std::min(with_span, span_loop<conveyor::detail::active_trace_span>(count, off_slot));
    }
    std::printf(
        "one span, tracing off: %.2f ns (loop with the span %.2f ns, without %.2f ns per "
        "iteration)\n",
        (with_span - without) * 1e9 / count, with_span * 1e9 / count, without * 1e9 / count);
  }
  std::filesystem::remove(path);
  std::printf("(checksum %.0f)\n", sink);
}
