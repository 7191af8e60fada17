// conveyor/cache/detail/tier_counters.hpp: the atomic counters behind a tier's
// `stats()`, shared by the disk and shared-memory tiers.
//
// Why atomics and not a lock: counters are bumped on every get/put from any
// thread, often outside the tier's own lock; relaxed increments are enough
// because a snapshot only has to be consistent per counter.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "conveyor/cache/tier.hpp"
#include "conveyor/core/histogram.hpp"

namespace conveyor::detail {

struct tier_counters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, puts{0}, rejected_puts{0}, bytes_read{0},
      bytes_written{0}, evictions{0}, failures{0};
  latency_histogram get_latency, put_latency;

  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.fetch_add(by, std::memory_order_relaxed);
  }

  /// Counts one get (a hit of `bytes`, or a miss) and its latency since `start`.
  /// Returns `hit`, so a get can end with `return counters.record_get(...)`.
  bool record_get(bool hit, std::uint64_t bytes, std::chrono::steady_clock::time_point start) noexcept {
    if (hit) {
      bump(hits);
      bump(bytes_read, bytes);
    } else {
      bump(misses);
    }
    get_latency.record(std::chrono::steady_clock::now() - start);
    return hit;
  }

  /// Counts one put (stored `bytes`, or rejected) and its latency since `start`.
  bool record_put(bool stored, std::uint64_t bytes, std::chrono::steady_clock::time_point start) noexcept {
    if (stored) {
      bump(puts);
      bump(bytes_written, bytes);
    } else {
      bump(rejected_puts);
    }
    put_latency.record(std::chrono::steady_clock::now() - start);
    return stored;
  }

  /// A snapshot; size and capacity come from the tier.
  [[nodiscard]] tier_stats snapshot(std::uint64_t size_bytes, std::uint64_t capacity_bytes) const {
    tier_stats out;
    out.hits = hits.load(std::memory_order_relaxed);
    out.misses = misses.load(std::memory_order_relaxed);
    out.puts = puts.load(std::memory_order_relaxed);
    out.rejected_puts = rejected_puts.load(std::memory_order_relaxed);
    out.bytes_read = bytes_read.load(std::memory_order_relaxed);
    out.bytes_written = bytes_written.load(std::memory_order_relaxed);
    out.evictions = evictions.load(std::memory_order_relaxed);
    out.failures = failures.load(std::memory_order_relaxed);
    out.size_bytes = size_bytes;
    out.capacity_bytes = capacity_bytes;
    out.get_latency = get_latency;
    out.put_latency = put_latency;
    return out;
  }
};

}  // namespace conveyor::detail
