// conveyor/core/histogram.hpp: a lock-free latency histogram with percentiles.
//
// Log-linear buckets (8 sub-buckets per power of two) over nanoseconds give
// percentiles within 12.5% relative error from 1 ns to about 584 years with a
// fixed 4 KiB of counters. `record` is wait-free (one relaxed fetch_add) and may
// be called from any thread; `percentile` reads a consistent-enough snapshot.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>

namespace conveyor {

class latency_histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 3;
  static constexpr unsigned sub_buckets = 1u << sub_bucket_bits;
  static constexpr unsigned bucket_count = (64 - sub_bucket_bits + 1) * sub_buckets;

  latency_histogram() = default;
  latency_histogram(const latency_histogram& other) { merge(other); }
  latency_histogram& operator=(const latency_histogram& other) {
    if (this != &other) {
      reset();
      merge(other);
    }
    return *this;
  }

  /// Thread-safe, wait-free, never allocates.
  void record(std::chrono::nanoseconds latency) noexcept {
    auto ns = latency.count() < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(latency.count());
    counts_[index_of(ns)].fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Number of recorded samples.
  [[nodiscard]] std::uint64_t count() const noexcept { return total_.load(std::memory_order_relaxed); }

  /// The latency below which a fraction `q` (0..1) of the samples lie; the upper
  /// edge of the bucket that holds that sample. Zero when nothing was recorded.
  [[nodiscard]] std::chrono::nanoseconds percentile(double q) const noexcept {
    std::uint64_t total = 0;
    for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
    if (total == 0) return std::chrono::nanoseconds{0};
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < bucket_count; ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen >= rank) return std::chrono::nanoseconds{static_cast<std::int64_t>(upper_edge(i))};
    }
    return std::chrono::nanoseconds{static_cast<std::int64_t>(upper_edge(bucket_count - 1))};
  }

  /// Adds another histogram's samples to this one.
  void merge(const latency_histogram& other) noexcept {
    for (unsigned i = 0; i < bucket_count; ++i)
      counts_[i].fetch_add(other.counts_[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
    total_.fetch_add(other.total_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

  void reset() noexcept {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    total_.store(0, std::memory_order_relaxed);
  }

 private:
  // Values below 2^sub_bucket_bits map one to one; above, the top bit picks the
  // power of two and the next sub_bucket_bits bits pick the sub-bucket.
  static constexpr unsigned index_of(std::uint64_t ns) noexcept {
    if (ns < sub_buckets) return static_cast<unsigned>(ns);
    unsigned top = 63u - static_cast<unsigned>(std::countl_zero(ns));
    unsigned shift = top - sub_bucket_bits;
    auto sub = static_cast<unsigned>((ns >> shift) & (sub_buckets - 1));
    return (shift + 1) * sub_buckets + sub;
  }
  static constexpr std::uint64_t upper_edge(unsigned index) noexcept {
    if (index < sub_buckets) return index;
    unsigned shift = index / sub_buckets - 1;
    std::uint64_t sub = index % sub_buckets;
    std::uint64_t base = (sub_buckets | sub) << shift;
    return base + ((std::uint64_t{1} << shift) - 1);
  }

  std::array<std::atomic<std::uint64_t>, bucket_count> counts_{};
  std::atomic<std::uint64_t> total_{0};
};

}  // namespace conveyor
