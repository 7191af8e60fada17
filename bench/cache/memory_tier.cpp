// Hit throughput of memory_tier against a mutex-guarded std::unordered_map +
// std::list LRU doing the same lookups (copying each value out), at 1 and 2
// threads, for 4 KiB and 64-byte values, with working sets that fit in the CPU
// caches and ones that do not. Every lookup hits. Each figure is the median
// over interleaved rounds of (tier hits/s) / (baseline hits/s), per wall second
// and per CPU second of the worker threads.
// Then, one thread: a batch of 256 keys through visit_many (one lock per shard,
// values copied once into a batch buffer) against 256 gets (one lock and one
// copy into a byte_buffer each, then the copy into the batch buffer, as the
// cache stage did before visit_many); fresh values stored with put_many_with
// against copying each into a new block; and CRC32C bytes/s of the
// three-stream SSE4.2 loop against the one-stream loop and the portable tables;
// and destroying a tier that holds the values, against freeing as many blocks.
// `puts`: one thread putting keys the tier does not hold into a full tier
// (each value evicts one), by put and by put_many_with in batches of 256: CPU
// ns per value of the thread, median of rounds, and as a ratio to the mutex
// LRU's put into a full map of as many entries (lower is better). What a put
// costs when the cache stage stores a miss into a tier smaller than the
// dataset; built against a tier whose insert skips the lookup of an older
// value, it bounded what an API for "a key I just missed" could save.
//
// Usage: bench_cache_memory_tier [batch | puts]   (batch: only the one-thread
// part; puts: only the full-tier puts)
#include "conveyor/cache/memory_tier.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"

namespace cy = conveyor;

namespace {

// The usual textbook LRU: one mutex, a hash map to list iterators, a list in
// recency order. Hits splice the entry to the front.
class mutex_lru {
 public:
  explicit mutex_lru(std::size_t max_entries) : max_entries_(max_entries) {}

  bool get(const cy::cache_key& key, cy::byte_buffer& out) {
    std::lock_guard lock(mutex_);
    auto found = index_.find(key);
    if (found == index_.end()) return false;
    order_.splice(order_.begin(), order_, found->second);
    out.assign(found->second->second.begin(), found->second->second.end());
    return true;
  }

  void put(const cy::cache_key& key, std::span<const std::byte> value) {
    std::lock_guard lock(mutex_);
    if (auto found = index_.find(key); found != index_.end()) {
      found->second->second.assign(value.begin(), value.end());
      order_.splice(order_.begin(), order_, found->second);
      return;
    }
    order_.emplace_front(key, cy::byte_buffer(value.begin(), value.end()));
    index_.emplace(key, order_.begin());
    if (index_.size() > max_entries_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  std::mutex mutex_;
  std::size_t max_entries_;
  std::list<std::pair<cy::cache_key, cy::byte_buffer>> order_;
  std::unordered_map<cy::cache_key, std::list<std::pair<cy::cache_key, cy::byte_buffer>>::iterator,
                     cy::cache_key_hash>
      index_;
};

constexpr auto round_time = std::chrono::milliseconds(100);
constexpr int rounds = 3;

struct rates {
  double per_wall_second;
  double per_cpu_second;  // hits over the worker threads' CPU time: robust to a shared machine
};

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Runs `threads` threads doing lookups from a shared random key sequence for
// `round_time`; returns hits per wall second and per CPU second.
template <class Cache>
rates hits_per_second(Cache& cache, const std::vector<cy::cache_key>& lookups, int threads) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<std::uint64_t> total{0};
  std::atomic<std::uint64_t> cpu_nanoseconds{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      cy::byte_buffer out;
      std::uint64_t done = 0;
      std::size_t position = static_cast<std::size_t>(t) * lookups.size() / 2;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      double cpu_start = thread_cpu_seconds();
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) {
          if (!cache.get(lookups[position], out)) std::abort();
          if (++position == lookups.size()) position = 0;
        }
        done += 256;
      }
      total.fetch_add(done);
      cpu_nanoseconds.fetch_add(
          static_cast<std::uint64_t>((thread_cpu_seconds() - cpu_start) * 1e9));
    });
  auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(round_time);
  stop.store(true);
  for (auto& worker : workers) worker.join();
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  auto hits = static_cast<double>(total.load());
  return {hits / elapsed.count(), hits / (static_cast<double>(cpu_nanoseconds.load()) * 1e-9)};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

template <class Policy>
cy::memory_tier<Policy> filled_tier(std::size_t keys, std::size_t value_size) {
  cy::memory_tier_options options;
  options.capacity_bytes = 2 * keys * cy::memory_tier<Policy>::charged_bytes(value_size);
  cy::memory_tier<Policy> tier(std::move(options));
  cy::byte_buffer value(value_size, std::byte{42});
  for (std::size_t r = 0; r < keys; ++r)
    if (!tier.put(cy::cache_key{1, 2, r}, value)) std::abort();
  return tier;
}

template <class Policy>
void compare(const char* policy_name, std::size_t keys, std::size_t value_size, int threads) {
  auto tier = filled_tier<Policy>(keys, value_size);
  mutex_lru baseline(keys);
  cy::byte_buffer value(value_size, std::byte{42});
  for (std::size_t r = 0; r < keys; ++r) baseline.put(cy::cache_key{1, 2, r}, value);
  std::mt19937_64 random(7);
  std::vector<cy::cache_key> lookups(1 << 20);
  for (auto& key : lookups) key = cy::cache_key{1, 2, random() % keys};

  std::vector<double> wall_ratios, cpu_ratios, tier_rates, baseline_rates;
  for (int round = 0; round < rounds; ++round) {
    rates base = hits_per_second(baseline, lookups, threads);
    rates mine = hits_per_second(tier, lookups, threads);
    baseline_rates.push_back(base.per_wall_second);
    tier_rates.push_back(mine.per_wall_second);
    wall_ratios.push_back(mine.per_wall_second / base.per_wall_second);
    cpu_ratios.push_back(mine.per_cpu_second / base.per_cpu_second);
  }
  std::printf("%-7s %6zu B  %6zu  %d thread%s  %12.0f  %12.0f  %6.2fx  %6.2fx\n", policy_name,
              value_size, keys, threads, threads == 1 ? " " : "s", median(tier_rates),
              median(baseline_rates), median(wall_ratios), median(cpu_ratios));
}

}  // namespace

// Values of `value_size` bytes for `keys` keys, read back in random batches of
// 256; returns values/s of visit_many (batched) and of get per key (single).
std::pair<double, double> batched_vs_single(std::size_t keys, std::size_t value_size) {
  constexpr std::size_t batch = 256;
  cy::memory_tier<> tier(keys * (value_size + 400) * 2);
  std::vector<std::byte> value(value_size, std::byte{7});
  for (std::size_t k = 0; k < keys; ++k) tier.put(cy::cache_key{1, 2, k}, value);
  std::mt19937_64 random(3);
  std::vector<cy::cache_key> asked(batch);
  std::vector<std::byte> out(batch * value_size);
  std::vector<cy::byte_buffer> buffers(batch);
  std::vector<double> batched_rates, single_rates;
  for (int round = 0; round < rounds; ++round) {
    for (int mode = 0; mode < 2; ++mode) {
      std::size_t done = 0;
      auto begin = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - begin < round_time) {
        for (auto& key : asked) key = cy::cache_key{1, 2, random() % keys};
        if (mode == 0) {
          tier.visit_many(asked, [&](std::size_t i, std::span<const std::byte> v) {
            std::memcpy(out.data() + i * value_size, v.data(), v.size());
          });
        } else {
          for (std::size_t i = 0; i < batch; ++i) {
            tier.get(asked[i], buffers[i]);
            std::memcpy(out.data() + i * value_size, buffers[i].data(), buffers[i].size());
          }
        }
        done += batch;
      }
      double rate = static_cast<double>(done) /
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      (mode == 0 ? batched_rates : single_rates).push_back(rate);
    }
  }
  std::sort(batched_rates.begin(), batched_rates.end());
  std::sort(single_rates.begin(), single_rates.end());
  return {batched_rates[rounds / 2], single_rates[rounds / 2]};
}

// CRC32C bytes/s over a buffer of `size` bytes with `crc` (median of rounds).
template <class Crc>
double crc_rate(std::size_t size, Crc crc) {
  std::vector<unsigned char> data(size);
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<unsigned char>(i * 131);
  std::vector<double> rates;
  std::uint32_t sink = 0;
  for (int round = 0; round < rounds; ++round) {
    std::size_t bytes = 0;
    auto begin = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - begin < round_time / 4) {
      for (int repeat = 0; repeat < 64; ++repeat) sink ^= crc(sink, data.data(), size);
      bytes += 64 * size;
    }
    rates.push_back(
        static_cast<double>(bytes) /
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  }
  if (sink == 0x12345678u) std::printf(" ");  // keeps the loop
  std::sort(rates.begin(), rates.end());
  return rates[rounds / 2];
}

struct put_rates {
  double arena = 0, heap = 0, copy = 0;              // values per wall second
  double arena_cpu = 0, heap_cpu = 0, copy_cpu = 0;  // CPU seconds (user + system) per round
  double arena_sys = 0, heap_sys = 0, copy_sys = 0;  // of which system
};

std::pair<double, double> thread_user_sys_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return {seconds(usage.ru_utime), seconds(usage.ru_stime)};
}

// Puts of `count` fresh values of `value_size` bytes in batches of 256 through
// put_many_with (one block per value, written in place, one lock per shard)
// into a tier whose entries live in its arena (the default) and into one whose
// entries come from operator new, against copying each value into a new block
// of its own that is kept (the same fresh memory to fault in): values/s and CPU
// time of each, median of rounds. Every round makes a new tier, as a filling
// epoch does.
put_rates put_vs_copy(std::size_t count, std::size_t value_size) {
  constexpr std::size_t batch = 256;
  std::vector<std::byte> value(value_size, std::byte{9});
  std::vector<double> rates[3], cpu[3], sys[3];
  for (int round = 0; round < rounds; ++round) {
    for (int mode = 0; mode < 3; ++mode) {
      cy::memory_tier_options options;
      options.capacity_bytes = count * (value_size + 400) * 2;
      options.use_arena = mode == 0;
      cy::memory_tier<> tier(std::move(options));
      std::vector<std::unique_ptr<std::byte[]>> copies;
      copies.reserve(count);
      std::vector<cy::cache_key> keys(batch);
      std::vector<std::size_t> sizes(batch, value_size);
      std::vector<std::uint8_t> stored(batch);
      auto [user_begin, sys_begin] = thread_user_sys_seconds();
      auto begin = std::chrono::steady_clock::now();
      for (std::size_t first = 0; first < count; first += batch) {
        if (mode != 2) {
          for (std::size_t i = 0; i < batch; ++i) keys[i] = cy::cache_key{1, 2, first + i};
          tier.put_many_with(
              keys, sizes,
              [&](std::size_t, std::span<std::byte> destination) {
                std::memcpy(destination.data(), value.data(), destination.size());
              },
              stored);
        } else {
          for (std::size_t i = 0; i < batch; ++i) {
            copies.emplace_back(new std::byte[value_size]);
            std::memcpy(copies.back().get(), value.data(), value_size);
          }
        }
      }
      rates[mode].push_back(
          static_cast<double>(count) /
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
      auto [user_end, sys_end] = thread_user_sys_seconds();
      cpu[mode].push_back(user_end - user_begin + sys_end - sys_begin);
      sys[mode].push_back(sys_end - sys_begin);
    }
  }
  auto median = [](std::vector<double>& values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  return {median(rates[0]), median(rates[1]), median(rates[2]), median(cpu[0]), median(cpu[1]),
          median(cpu[2]),   median(sys[0]),   median(sys[1]),   median(sys[2])};
}

// Destroying a tier that holds `count` values of `value_size` bytes (entries
// in the arena, or from operator new), against freeing as many blocks of the
// same size one by one (a std::vector of std::unique_ptr<std::byte[]>):
// this thread's CPU seconds, median of rounds.
struct teardown_seconds {
  double arena, heap, baseline;
};
teardown_seconds teardown(std::size_t count, std::size_t value_size) {
  constexpr std::size_t batch = 256;
  std::vector<double> seconds[3];
  std::vector<std::byte> value(value_size, std::byte{7});
  for (int round = 0; round < 5; ++round) {
    for (int mode = 0; mode < 2; ++mode) {
      cy::memory_tier_options options;
      options.capacity_bytes = count * (value_size + 400) * 2;
      options.use_arena = mode == 0;
      auto tier = std::make_unique<cy::memory_tier<>>(std::move(options));
      std::vector<cy::cache_key> keys(batch);
      std::vector<std::size_t> sizes(batch, value_size);
      std::vector<std::uint8_t> stored(batch);
      for (std::size_t first = 0; first < count; first += batch) {
        for (std::size_t i = 0; i < batch; ++i) keys[i] = cy::cache_key{1, 2, first + i};
        tier->put_many_with(
            keys, sizes,
            [&](std::size_t, std::span<std::byte> destination) {
              std::memcpy(destination.data(), value.data(), destination.size());
            },
            stored);
      }
      const double begin = thread_cpu_seconds();
      tier.reset();
      seconds[mode].push_back(thread_cpu_seconds() - begin);
    }
    std::vector<std::unique_ptr<std::byte[]>> copies;
    copies.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      copies.emplace_back(new std::byte[value_size]);
      std::memcpy(copies.back().get(), value.data(), value_size);
    }
    const double begin = thread_cpu_seconds();
    copies.clear();
    seconds[2].push_back(thread_cpu_seconds() - begin);
  }
  for (auto& s : seconds) std::sort(s.begin(), s.end());
  return {seconds[0][2], seconds[1][2], seconds[2][2]};
}

void batch_and_crc_figures() {
  std::printf(
      "\none thread, a new tier filled by put_many_with in batches of 256, entries in the arena "
      "or from operator new (heap), vs copying each value into a new block (copy)\n");
  std::printf("%8s  %7s  %12s  %12s  %12s  %9s  %9s  %23s  %23s\n", "value", "values",
              "arena val/s", "heap val/s", "copy val/s", "arena/copy", "heap/copy",
              "cpu s arena/heap/copy", "sys s arena/heap/copy");
  for (auto [count, value_size] :
       {std::pair<std::size_t, std::size_t>{65536, 384}, {32768, 8240}, {100000, 8240}}) {
    auto r = put_vs_copy(count, value_size);
    std::printf(
        "%6zu B  %7zu  %12.0f  %12.0f  %12.0f  %8.2fx  %8.2fx  %7.3f/%7.3f/%7.3f  "
        "%7.3f/%7.3f/%7.3f\n",
        value_size, count, r.arena, r.heap, r.copy, r.copy / r.arena, r.copy / r.heap, r.arena_cpu,
        r.heap_cpu, r.copy_cpu, r.arena_sys, r.heap_sys, r.copy_sys);
  }
  std::printf(
      "\none thread, destroying a tier that holds the values (arena or heap entries) vs freeing as "
      "many blocks one by one (free), CPU ms, median of 5\n");
  std::printf("%8s  %7s  %9s  %9s  %9s  %11s  %10s\n", "value", "values", "arena ms", "heap ms",
              "free ms", "arena/free", "heap/free");
  for (auto [count, value_size] :
       {std::pair<std::size_t, std::size_t>{100000, 384}, {32768, 8240}}) {
    auto t = teardown(count, value_size);
    std::printf("%6zu B  %7zu  %9.3f  %9.3f  %9.3f  %10.3fx  %9.2fx\n", value_size, count,
                t.arena * 1e3, t.heap * 1e3, t.baseline * 1e3, t.arena / t.baseline,
                t.heap / t.baseline);
  }
  std::printf("\none thread, batches of 256 random keys, each value copied into a batch buffer\n");
  std::printf("%8s  %7s  %16s  %16s  %7s\n", "value", "keys", "visit_many val/s", "get each val/s",
              "ratio");
  for (auto [keys, value_size] :
       {std::pair<std::size_t, std::size_t>{100000, 384}, {100000, 8240}, {4096, 384}}) {
    auto [batched, single] = batched_vs_single(keys, value_size);
    std::printf("%6zu B  %7zu  %16.0f  %16.0f  %6.2fx\n", value_size, keys, batched, single,
                batched / single);
  }
  std::printf("\nCRC32C GB/s: three SSE4.2 streams vs one stream vs portable slicing-by-8\n");
  for (std::size_t size : {384, 8240, 65536}) {
    double portable = crc_rate(size, cy::detail::crc32c_update_portable);
#if CONVEYOR_CRC32C_HAS_HARDWARE
    if (cy::detail::crc32c_hardware_available()) {
      double three = crc_rate(size, cy::detail::crc32c_update_hardware);
      double one = crc_rate(size, cy::detail::crc32c_update_hardware_one_stream);
      std::printf(
          "%6zu B  three %6.2f  one %6.2f  portable %6.2f   three/one %.2fx  three/portable "
          "%.2fx\n",
          size, three / 1e9, one / 1e9, portable / 1e9, three / one, three / portable);
      continue;
    }
#endif
    std::printf("%6zu B  portable %6.2f (no SSE4.2)\n", size, portable / 1e9);
  }
}

// CPU ns per put of a key the tier does not hold, into a full tier of 64 MiB,
// against the textbook mutex LRU (above) holding as many entries, full too.
void full_tier_puts() {
  constexpr int put_rounds = 7;
  std::printf(
      "\none thread, keys not in the tier put into a full 64 MiB tier (each evicts), CPU ns per "
      "value, median of %d rounds; baseline: the mutex + unordered_map + list LRU, as many "
      "entries, full\n",
      put_rounds);
  std::printf("%8s  %10s  %14s  %10s  %10s  %17s\n", "value", "put", "put_many_with", "lru put",
              "put/lru", "put_many_with/lru");
  for (std::size_t value_size : {std::size_t{64}, std::size_t{384}}) {
    constexpr std::size_t batch = 256, per_round = 1 << 17;
    cy::memory_tier<> tier(64ull << 20);
    std::vector<std::byte> value(value_size, std::byte{5});
    std::uint64_t next = 0;
    while (tier.stats().evictions == 0) tier.put(cy::cache_key{3, 4, next++}, value);
    const std::size_t held = tier.entry_count();
    mutex_lru lru(held);
    std::uint64_t lru_next = 0;
    for (std::size_t i = 0; i <= held; ++i) lru.put(cy::cache_key{5, 6, lru_next++}, value);
    std::vector<cy::cache_key> keys(batch);
    std::vector<std::size_t> sizes(batch, value_size);
    std::vector<std::uint8_t> stored(batch);
    std::vector<double> single, batched, baseline;
    for (int round = 0; round < put_rounds; ++round) {
      double begin = thread_cpu_seconds();
      for (std::size_t i = 0; i < per_round; ++i)
        if (!tier.put(cy::cache_key{3, 4, next++}, value)) std::abort();
      single.push_back((thread_cpu_seconds() - begin) * 1e9 / per_round);
      begin = thread_cpu_seconds();
      for (std::size_t done = 0; done < per_round; done += batch) {
        for (std::size_t i = 0; i < batch; ++i) keys[i] = cy::cache_key{3, 4, next++};
        tier.put_many_with(
            keys, sizes,
            [&](std::size_t, std::span<std::byte> destination) {
              std::memcpy(destination.data(), value.data(), destination.size());
            },
            stored);
      }
      batched.push_back((thread_cpu_seconds() - begin) * 1e9 / per_round);
      begin = thread_cpu_seconds();
      for (std::size_t i = 0; i < per_round; ++i) lru.put(cy::cache_key{5, 6, lru_next++}, value);
      baseline.push_back((thread_cpu_seconds() - begin) * 1e9 / per_round);
    }
    std::sort(single.begin(), single.end());
    std::sort(batched.begin(), batched.end());
    std::sort(baseline.begin(), baseline.end());
    const double put = single[single.size() / 2], many = batched[batched.size() / 2],
                 base = baseline[baseline.size() / 2];
    std::printf("%6zu B  %10.1f  %14.1f  %10.1f  %9.2fx  %16.2fx\n", value_size, put, many, base,
                put / base, many / base);
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "puts") {
    full_tier_puts();
    return 0;
  }
  if (argc > 1 && std::string_view(argv[1]) == "batch") {  // the one-thread batch part only
    batch_and_crc_figures();
    return 0;
  }
  std::printf(
      "memory_tier hit throughput vs mutex + unordered_map + list LRU (same lookups, value copied "
      "out)\n");
  std::printf("hardware threads: %u; %d interleaved rounds of %lld ms, medians\n",
              std::thread::hardware_concurrency(), rounds,
              static_cast<long long>(round_time.count()));
  std::printf("%-7s %8s  %6s  %-9s  %12s  %12s  %7s  %7s\n", "policy", "value", "keys", "threads",
              "tier hits/s", "base hits/s", "ratio", "ratio/cpu");
  // Per value size: a working set that stays in cache (~1 MiB of values) and
  // one that does not (16 MiB of 4 KiB values, 4 MiB of 64-byte values).
  struct setup {
    std::size_t value_size, keys;
  };
  for (setup config : {setup{4096, 256}, setup{4096, 4096}, setup{64, 4096}, setup{64, 65536}}) {
    std::size_t value_size = config.value_size, keys = config.keys;
    for (int threads : {1, 2}) {
      compare<cy::eviction::s3fifo>("s3fifo", keys, value_size, threads);
      compare<cy::eviction::sieve>("sieve", keys, value_size, threads);
      compare<cy::eviction::lru>("lru", keys, value_size, threads);
    }
  }
  batch_and_crc_figures();
}
