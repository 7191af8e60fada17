// conveyor/core/stats.hpp: what every stage counts, and the table it prints.
//
// Each stage of a pipeline owns one `stage_counters` (atomics, updated once per
// batch, never per record). `pipeline.stats()` snapshots them into a
// `pipeline_stats`, whose operator<< prints one row per stage: throughput,
// busy time, time starved (waiting on upstream) and blocked (waiting on
// downstream), queue occupancy and latency percentiles. The stage with the
// highest busy share is the bottleneck.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/detail/json.hpp"
#include "conveyor/core/histogram.hpp"

namespace conveyor {

namespace detail {
struct trace_label;  // detail/trace_buffers.hpp
}  // namespace detail

/// Why an execution stage runs with its current workers or queue depth:
/// `fixed` (set by the user), or, under autotune, `searching` (still
/// measuring) or the reason it settled: `consumer_bound` (downstream is the
/// slowest part, more would not help), `upstream_bound` (a deeper queue would
/// not help: upstream is slower on average), `cpu_bound` (one more worker did
/// not raise throughput: the cores are busy), `memory_bound` (memory_budget
/// allows no more batches in flight), `at_limit` (the largest value allowed).
enum class tuning_state : std::uint8_t { fixed, searching, consumer_bound, upstream_bound, cpu_bound, memory_bound, at_limit };

/// "fixed", "searching", "consumer-bound", "upstream-bound", "cpu-bound", "memory-bound", "at-limit".
constexpr std::string_view to_string(tuning_state t) noexcept {
  constexpr std::string_view names[] = {"fixed",     "searching",    "consumer-bound", "upstream-bound",
                                        "cpu-bound", "memory-bound", "at-limit"};
  return names[static_cast<std::size_t>(t)];
}

/// Live counters of one stage. Thread-safe; all updates are relaxed atomics.
struct stage_counters {
  explicit stage_counters(std::string stage_name) : name(std::move(stage_name)) {}

  std::string name;
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> busy_ns{0};
  std::atomic<std::uint64_t> starved_ns{0};   ///< waiting on upstream
  std::atomic<std::uint64_t> blocked_ns{0};   ///< waiting on downstream (queue full)
  std::atomic<std::uint64_t> skipped{0};      ///< records dropped by the skip policy
  std::atomic<std::uint64_t> retries{0};      ///< I/O attempts repeated by retry(n)
  std::atomic<std::uint64_t> queue_samples{0};
  std::atomic<std::uint64_t> queue_sum{0};
  std::atomic<std::uint64_t> queue_max{0};
  std::atomic<std::uint64_t> queue_capacity{0};
  std::atomic<std::uint64_t> workers{0};  ///< parallel: threads producing batches now
  std::atomic<tuning_state> tuning{tuning_state::fixed};
  latency_histogram latency;  ///< busy time per batch
  /// Where this stage's trace spans go; null while tracing is off (trace.hpp).
  std::atomic<const detail::trace_label*> trace{nullptr};

  void add_batch(std::uint64_t batch_rows, std::uint64_t batch_bytes, std::chrono::nanoseconds busy) noexcept {
    batches.fetch_add(1, std::memory_order_relaxed);
    rows.fetch_add(batch_rows, std::memory_order_relaxed);
    bytes.fetch_add(batch_bytes, std::memory_order_relaxed);
    busy_ns.fetch_add(static_cast<std::uint64_t>(busy.count()), std::memory_order_relaxed);
    latency.record(busy);
  }
  void add_starved(std::chrono::nanoseconds t) noexcept {
    starved_ns.fetch_add(static_cast<std::uint64_t>(t.count()), std::memory_order_relaxed);
  }
  void add_blocked(std::chrono::nanoseconds t) noexcept {
    blocked_ns.fetch_add(static_cast<std::uint64_t>(t.count()), std::memory_order_relaxed);
  }
  void sample_queue(std::uint64_t occupancy) noexcept {
    queue_samples.fetch_add(1, std::memory_order_relaxed);
    queue_sum.fetch_add(occupancy, std::memory_order_relaxed);
    auto seen = queue_max.load(std::memory_order_relaxed);
    while (occupancy > seen && !queue_max.compare_exchange_weak(seen, occupancy, std::memory_order_relaxed)) {
    }
  }
};

/// A snapshot of one stage.
struct stage_stats {
  std::string name;
  std::uint64_t batches = 0, rows = 0, bytes = 0, skipped = 0, retries = 0;
  std::chrono::nanoseconds busy{0}, starved{0}, blocked{0};
  std::chrono::nanoseconds p50{0}, p95{0}, p99{0};
  double queue_mean = 0;
  std::uint64_t queue_max = 0, queue_capacity = 0;
  std::uint64_t workers = 0;  ///< parallel's threads (chosen by autotune or fixed); 0 for other stages
  tuning_state tuning = tuning_state::fixed;

  /// Rows per second of busy time: what the stage could sustain alone.
  [[nodiscard]] double rows_per_busy_second() const noexcept {
    return busy.count() == 0 ? 0.0 : static_cast<double>(rows) * 1e9 / static_cast<double>(busy.count());
  }
};

/// A snapshot of a whole pipeline, stages in upstream-to-downstream order.
struct pipeline_stats {
  std::vector<stage_stats> stages;
  std::chrono::nanoseconds wall{0};  ///< time the consumer spent iterating
  std::uint64_t rows_delivered = 0;

  [[nodiscard]] double rows_per_second() const noexcept {
    return wall.count() == 0 ? 0.0 : static_cast<double>(rows_delivered) * 1e9 / static_cast<double>(wall.count());
  }
  /// The stage with the most busy time: the bottleneck.
  [[nodiscard]] const stage_stats* bottleneck() const noexcept {
    const stage_stats* worst = nullptr;
    for (const auto& s : stages)
      if (worst == nullptr || s.busy > worst->busy) worst = &s;
    return worst;
  }

  /// The snapshot as one JSON object, for dashboards and logs (see
  /// docs/observability.md for the fields; times in nanoseconds).
  [[nodiscard]] std::string to_json() const;

  friend std::ostream& operator<<(std::ostream& out, const pipeline_stats& stats) {
    auto ms = [](std::chrono::nanoseconds t) { return static_cast<double>(t.count()) / 1e6; };
    auto us = [](std::chrono::nanoseconds t) { return static_cast<double>(t.count()) / 1e3; };
    char line[256];
    std::snprintf(line, sizeof line, "%-24s %8s %10s %12s %9s %10s %10s %10s %8s %8s %8s %9s %7s\n", "stage",
                  "batches", "rows", "rows/s(busy)", "MB", "busy ms", "starved ms", "blocked ms", "p50 us",
                  "p95 us", "p99 us", "queue avg", "skipped");
    out << line;
    const stage_stats* worst = stats.bottleneck();
    for (const auto& s : stats.stages) {
      // Long names (a file name) are cut to keep the columns aligned.
      std::string label = s.name.size() > 24 ? s.name.substr(0, 21) + "..." : s.name;
      std::snprintf(line, sizeof line, "%-24s %8llu %10llu %12.0f %9.1f %10.1f %10.1f %10.1f %8.1f %8.1f %8.1f %9.2f %7llu%s\n",
                    label.c_str(), static_cast<unsigned long long>(s.batches),
                    static_cast<unsigned long long>(s.rows), s.rows_per_busy_second(),
                    static_cast<double>(s.bytes) / 1e6, ms(s.busy), ms(s.starved), ms(s.blocked), us(s.p50),
                    us(s.p95), us(s.p99), s.queue_mean, static_cast<unsigned long long>(s.skipped),
                    &s == worst ? "  <- busiest" : "");
      out << line;
    }
    std::snprintf(line, sizeof line, "delivered %llu rows in %.1f ms: %.0f rows/s\n",
                  static_cast<unsigned long long>(stats.rows_delivered), ms(stats.wall), stats.rows_per_second());
    out << line;
    // Autotuned stages: what they chose and why.
    for (const auto& s : stats.stages) {
      if (s.tuning == tuning_state::fixed) continue;
      std::snprintf(line, sizeof line, "autotune: %s %s%llu (%s)\n", s.name.c_str(),
                    s.workers != 0 ? "workers " : "depth ",
                    static_cast<unsigned long long>(s.workers != 0 ? s.workers : s.queue_capacity),
                    std::string(to_string(s.tuning)).c_str());
      out << line;
    }
    return out;
  }
};

inline std::string pipeline_stats::to_json() const {
  using detail::append_json_number;
  auto field = [](std::string& out, std::string_view name) {
    detail::append_json_string(out, name);
    out += ':';
  };
  auto ns = [](std::chrono::nanoseconds t) { return static_cast<std::uint64_t>(t.count() < 0 ? 0 : t.count()); };
  std::string out = "{";
  field(out, "wall_ns");
  append_json_number(out, ns(wall));
  out += ',';
  field(out, "rows_delivered");
  append_json_number(out, rows_delivered);
  out += ',';
  field(out, "rows_per_second");
  append_json_number(out, rows_per_second());
  out += ',';
  field(out, "bottleneck");
  if (const stage_stats* worst = bottleneck())
    detail::append_json_string(out, worst->name);
  else
    out += "null";
  out += ',';
  field(out, "stages");
  out += '[';
  for (const auto& s : stages) {
    if (&s != stages.data()) out += ',';
    out += '{';
    field(out, "name");
    detail::append_json_string(out, s.name);
    const std::pair<std::string_view, std::uint64_t> counts[] = {
        {"batches", s.batches},       {"rows", s.rows},           {"bytes", s.bytes},
        {"busy_ns", ns(s.busy)},      {"starved_ns", ns(s.starved)}, {"blocked_ns", ns(s.blocked)},
        {"p50_ns", ns(s.p50)},        {"p95_ns", ns(s.p95)},      {"p99_ns", ns(s.p99)},
        {"queue_max", s.queue_max},   {"queue_capacity", s.queue_capacity},
        {"skipped", s.skipped},       {"retries", s.retries},     {"workers", s.workers}};
    for (const auto& [name, value] : counts) {
      out += ',';
      field(out, name);
      append_json_number(out, value);
    }
    out += ',';
    field(out, "queue_mean");
    append_json_number(out, s.queue_mean);
    out += ',';
    field(out, "rows_per_busy_second");
    append_json_number(out, s.rows_per_busy_second());
    out += ',';
    field(out, "tuning");
    detail::append_json_string(out, to_string(s.tuning));
    out += '}';
  }
  out += "]}";
  return out;
}

/// The counters of all stages of one pipeline, kept across epochs. Stable
/// addresses: stages hold pointers to their counters.
class stats_registry {
 public:
  stage_counters& add(std::string name) {
    std::lock_guard lock(mutex_);
    return stages_.emplace_back(std::move(name));
  }
  void add_wall(std::chrono::nanoseconds t, std::uint64_t rows) noexcept {
    wall_ns_.fetch_add(static_cast<std::uint64_t>(t.count()), std::memory_order_relaxed);
    rows_.fetch_add(rows, std::memory_order_relaxed);
  }
  [[nodiscard]] pipeline_stats snapshot() const {
    std::lock_guard lock(mutex_);
    pipeline_stats out;
    for (const auto& c : stages_) {
      stage_stats s;
      s.name = c.name;
      s.batches = c.batches.load(std::memory_order_relaxed);
      s.rows = c.rows.load(std::memory_order_relaxed);
      s.bytes = c.bytes.load(std::memory_order_relaxed);
      s.skipped = c.skipped.load(std::memory_order_relaxed);
      s.retries = c.retries.load(std::memory_order_relaxed);
      s.busy = std::chrono::nanoseconds(c.busy_ns.load(std::memory_order_relaxed));
      s.starved = std::chrono::nanoseconds(c.starved_ns.load(std::memory_order_relaxed));
      s.blocked = std::chrono::nanoseconds(c.blocked_ns.load(std::memory_order_relaxed));
      s.p50 = c.latency.percentile(0.50);
      s.p95 = c.latency.percentile(0.95);
      s.p99 = c.latency.percentile(0.99);
      auto samples = c.queue_samples.load(std::memory_order_relaxed);
      s.queue_mean = samples == 0 ? 0.0
                                  : static_cast<double>(c.queue_sum.load(std::memory_order_relaxed)) /
                                        static_cast<double>(samples);
      s.queue_max = c.queue_max.load(std::memory_order_relaxed);
      s.queue_capacity = c.queue_capacity.load(std::memory_order_relaxed);
      s.workers = c.workers.load(std::memory_order_relaxed);
      s.tuning = c.tuning.load(std::memory_order_relaxed);
      out.stages.push_back(std::move(s));
    }
    out.wall = std::chrono::nanoseconds(wall_ns_.load(std::memory_order_relaxed));
    out.rows_delivered = rows_.load(std::memory_order_relaxed);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::deque<stage_counters> stages_;
  std::atomic<std::uint64_t> wall_ns_{0};
  std::atomic<std::uint64_t> rows_{0};
};

}  // namespace conveyor
