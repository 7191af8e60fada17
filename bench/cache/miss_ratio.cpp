// Miss ratio of memory_tier's S3-FIFO and SIEVE against its LRU, replaying two
// traces through a single-shard tier (get; on a miss, put):
//   zipf       Zipf(1.0) over 100,000 keys
//   scan+zipf  blocks of 200,000 Zipf(1.0) requests alternating with a full
//              sequential scan of 100,000 other keys (a training epoch)
// at cache sizes of 0.1%, 1% and 10% of each trace's working set. Miss ratios
// are deterministic (fixed seeds); the figure of merit is the ratio to LRU
// (below 1: fewer misses than LRU).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "conveyor/cache/memory_tier.hpp"

namespace cy = conveyor;

namespace {

constexpr std::size_t value_size = 64;
constexpr std::uint64_t zipf_keys = 100'000;
constexpr std::uint64_t scan_keys = 100'000;

// Samples ranks 0..n-1 with probability proportional to 1/(rank+1)^exponent.
class zipf_sampler {
 public:
  zipf_sampler(std::uint64_t n, double exponent) : cdf_(n) {
    double sum = 0;
    for (std::uint64_t i = 0; i < n; ++i)
      cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), exponent);
    for (auto& value : cdf_) value /= sum;
  }
  std::uint64_t operator()(std::mt19937_64& random) const {
    double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    return static_cast<std::uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

struct request {
  std::uint64_t record;
  bool from_scan;
};

struct trace {
  const char* name;
  std::vector<request> requests;
  std::uint64_t working_set_keys;
};

trace zipf_trace(const zipf_sampler& zipf) {
  std::mt19937_64 random(1);
  trace out{"zipf", {}, zipf_keys};
  for (int i = 0; i < 800'000; ++i) out.requests.push_back({zipf(random), false});
  return out;
}

trace scan_zipf_trace(const zipf_sampler& zipf) {
  std::mt19937_64 random(2);
  trace out{"scan+zipf", {}, zipf_keys + scan_keys};
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int i = 0; i < 200'000; ++i) out.requests.push_back({zipf(random), false});
    for (std::uint64_t r = 0; r < scan_keys; ++r) out.requests.push_back({zipf_keys + r, true});
  }
  return out;
}

struct result {
  double miss_ratio;
  double zipf_miss_ratio;  // over the Zipf requests only
};

template <class Policy>
result replay(const trace& workload, double cache_fraction) {
  cy::memory_tier_options options;
  options.shard_count = 1;
  options.latency_sample_period = 0;
  options.capacity_bytes = static_cast<std::uint64_t>(
      cache_fraction * static_cast<double>(workload.working_set_keys *
                                           cy::memory_tier<Policy>::charged_bytes(value_size)));
  cy::memory_tier<Policy> tier(std::move(options));
  cy::byte_buffer value(value_size, std::byte{1}), out;
  std::uint64_t misses = 0, zipf_requests = 0, zipf_misses = 0;
  for (const request& r : workload.requests) {
    cy::cache_key key{9, 9, r.record};
    bool hit = tier.get(key, out);
    if (!hit) {
      ++misses;
      tier.put(key, value);
    }
    if (!r.from_scan) {
      ++zipf_requests;
      zipf_misses += hit ? 0 : 1;
    }
  }
  return {static_cast<double>(misses) / static_cast<double>(workload.requests.size()),
          static_cast<double>(zipf_misses) / static_cast<double>(zipf_requests)};
}

}  // namespace

int main() {
  zipf_sampler zipf(zipf_keys, 1.0);
  std::printf("miss ratio (all requests; Zipf requests only in brackets) and ratio to LRU\n");
  std::printf("%-10s %6s  %-22s %-22s %-22s %8s %8s\n", "trace", "cache", "lru", "s3fifo", "sieve",
              "s3f/lru", "sieve/lru");
  for (const trace& workload : {zipf_trace(zipf), scan_zipf_trace(zipf)}) {
    for (double fraction : {0.001, 0.01, 0.1}) {
      auto lru = replay<cy::eviction::lru>(workload, fraction);
      auto s3fifo = replay<cy::eviction::s3fifo>(workload, fraction);
      auto sieve = replay<cy::eviction::sieve>(workload, fraction);
      std::printf(
          "%-10s %5.1f%%  %.4f [%.4f]        %.4f [%.4f]        %.4f [%.4f]        %8.3f %8.3f\n",
          workload.name, fraction * 100, lru.miss_ratio, lru.zipf_miss_ratio, s3fifo.miss_ratio,
          s3fifo.zipf_miss_ratio, sieve.miss_ratio, sieve.zipf_miss_ratio,
          s3fifo.miss_ratio / lru.miss_ratio, sieve.miss_ratio / lru.miss_ratio);
    }
  }
}
