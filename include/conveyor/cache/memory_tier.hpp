// conveyor/cache/memory_tier.hpp: a sharded, byte-budgeted in-process cache
// tier with S3-FIFO (default), LRU or SIEVE eviction.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/eviction_policies.hpp"
#include "conveyor/cache/detail/memory_entry.hpp"
#include "conveyor/cache/eviction_listener.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/histogram.hpp"

namespace conveyor {

/// Eviction policies for `memory_tier`, chosen as its template argument.
namespace eviction {
/// S3-FIFO (Yang et al., SOSP'23): small FIFO + main FIFO + ghost. Scan
/// resistant; hits take only a shared lock. The default.
using s3fifo = detail::s3fifo_policy;
/// Least recently used. Every hit relinks the entry, so hits take the shard's
/// exclusive lock: provided for comparison.
using lru = detail::lru_policy;
/// SIEVE (Zhang et al., NSDI'24): one FIFO, a visited bit and a moving hand.
/// Hits take only a shared lock.
using sieve = detail::sieve_policy;
}  // namespace eviction

/// How to build a `memory_tier`.
struct memory_tier_options {
  /// Byte budget for everything the tier holds: for each entry its value bytes,
  /// its key and `memory_tier<>::entry_overhead_bytes`.
  std::uint64_t capacity_bytes = 0;
  /// Number of independently locked shards; 0 picks the smallest power of two
  /// >= 2 x hardware threads. Each shard gets capacity_bytes / shard_count, and
  /// a value whose charge exceeds one shard's budget is rejected.
  std::size_t shard_count = 0;
  /// S3-FIFO only: the small queue's share of each shard's bytes.
  double small_queue_fraction = 0.1;
  /// Latency sampling: time one get and one put in every `latency_sample_period`
  /// per thread (rounded up to a power of two). 1 times every call, 0 never.
  std::uint32_t latency_sample_period = 16;
  /// Optional: receives every evicted entry (see `eviction_listener`).
  eviction_listener on_evict;
};

/// An in-process cache tier satisfying `cache_tier`.
///
/// Keys are spread over shards by hash; each shard has its own
/// `std::shared_mutex`, index and eviction state. Hits take the shard's shared
/// lock (LRU: exclusive), copy the value out and bump a relaxed atomic counter;
/// puts, erases and evictions take it exclusively.
///
/// Accounting is byte-exact: an entry charges `charged_bytes(value size)`, and
/// no shard ever holds more than its budget, so `size_bytes() <=
/// capacity_bytes()` at every instant. (S3-FIFO's ghost keeps only hashes of
/// evicted keys, about 50 bytes each, outside the budget; it is bounded by
/// main's byte budget divided by the evicted entries' charges.)
///
/// Allocation: a put allocates one block (entry header + value) and possibly a
/// hash-table node; a hit allocates only if `out` must grow. Thread-safety:
/// every member is safe to call concurrently except construction, move,
/// destruction and `set_eviction_listener`; a moved-from tier may only be
/// destroyed or assigned to. Errors: never throws except
/// std::bad_alloc; a value too large for a shard is refused (`put` returns
/// false, counted as a rejected put, and an older value of that key is erased).
template <class EvictionPolicy = eviction::s3fifo>
class memory_tier {
 public:
  /// What each entry costs beyond its value bytes and its key: the entry header
  /// (list links, counters, sizes), the hash-table node and bucket, and the
  /// allocator's headers for both blocks.
  static constexpr std::uint64_t entry_overhead_bytes = 128;
  static_assert(
      entry_overhead_bytes >= sizeof(detail::memory_entry) - sizeof(cache_key) + sizeof(void*) * 2 +
                                  sizeof(cache_key) + 8 + std::size_t{2} * 16,
      "entry_overhead_bytes must cover the header, the index node and allocator overhead");

  /// The bytes an entry with a value of `value_size` bytes counts against the budget.
  [[nodiscard]] static constexpr std::uint64_t charged_bytes(std::size_t value_size) noexcept {
    return value_size + sizeof(cache_key) + entry_overhead_bytes;
  }

  /// A tier of `capacity_bytes` with default options.
  explicit memory_tier(std::uint64_t capacity_bytes)
      : memory_tier(options_with_capacity(capacity_bytes)) {}

  explicit memory_tier(memory_tier_options options)
      : state_(std::make_unique<state>(std::move(options))) {}

  memory_tier(memory_tier&&) noexcept = default;
  memory_tier& operator=(memory_tier&&) noexcept = default;

  /// Copies the value of `key` into `out` (resized) and returns true, or
  /// returns false and clears `out` (its capacity is kept).
  bool get(const cache_key& key, byte_buffer& out) {
    auto timer = start_timer();
    std::uint64_t hash = key.hash();
    shard& s = shard_for(hash);
    bool hit = false;
    if constexpr (EvictionPolicy::hit_needs_exclusive_lock) {
      std::unique_lock lock(s.mutex);
      hit = copy_out(s, key, out);
    } else {
      std::shared_lock lock(s.mutex);
      hit = copy_out(s, key, out);
    }
    if (hit) {
      s.hits.fetch_add(1, std::memory_order_relaxed);
      s.bytes_read.fetch_add(out.size(), std::memory_order_relaxed);
    } else {
      out.clear();
      s.misses.fetch_add(1, std::memory_order_relaxed);
    }
    if (timer) state_->get_latency.record(std::chrono::steady_clock::now() - *timer);
    return hit;
  }

  /// Stores a copy of `value` under `key`, replacing any previous value, and
  /// evicts entries of the key's shard until it fits. Returns false when the
  /// value cannot fit; the key is then absent (an older value is erased).
  bool put(const cache_key& key, std::span<const std::byte> value) {
    auto timer = start_timer();
    std::uint64_t hash = key.hash();
    shard& s = shard_for(hash);
    std::uint64_t charge = charged_bytes(value.size());
    if (charge > s.capacity_bytes) {
      s.rejected_puts.fetch_add(1, std::memory_order_relaxed);
      erase(key);  // an older value must not outlive a newer one that was refused
      return false;
    }
    auto entry = detail::make_memory_entry(key, hash, value, charge);
    boost::container::small_vector<detail::memory_entry_ptr, 4> evicted;
    {
      std::unique_lock lock(s.mutex);
      std::uint8_t kept_frequency = 0;
      detail::memory_entry_ptr replaced;
      if (auto found = s.index.find(key); found != s.index.end()) {
        replaced.reset(found->second);
        kept_frequency = replaced->frequency.load(std::memory_order_relaxed);
        s.policy.on_erase(replaced.get());
        s.index.erase(found);
        s.used_bytes.fetch_sub(replaced->charged_bytes, std::memory_order_relaxed);
      }
      while (s.used_bytes.load(std::memory_order_relaxed) + charge > s.capacity_bytes) {
        detail::memory_entry* victim = s.policy.evict_one();
        if (victim == nullptr) break;  // unreachable: bytes in use imply entries
        s.index.erase(victim->key);
        s.used_bytes.fetch_sub(victim->charged_bytes, std::memory_order_relaxed);
        evicted.emplace_back(victim);
      }
      entry->frequency.store(kept_frequency, std::memory_order_relaxed);
      s.index.emplace(key, entry.get());
      s.policy.on_insert(entry.get());
      s.used_bytes.fetch_add(charge, std::memory_order_relaxed);
      static_cast<void>(entry.release());  // the index owns it now
    }
    s.puts.fetch_add(1, std::memory_order_relaxed);
    s.bytes_written.fetch_add(value.size(), std::memory_order_relaxed);
    if (!evicted.empty()) {
      s.evictions.fetch_add(evicted.size(), std::memory_order_relaxed);
      if (state_->on_evict)
        for (const auto& victim : evicted) state_->on_evict(victim->key, victim->value());
    }
    if (timer) state_->put_latency.record(std::chrono::steady_clock::now() - *timer);
    return true;
  }

  /// Removes `key`; returns whether it was present. Not reported to the listener.
  bool erase(const cache_key& key) {
    std::uint64_t hash = key.hash();
    shard& s = shard_for(hash);
    detail::memory_entry_ptr removed;
    std::unique_lock lock(s.mutex);
    auto found = s.index.find(key);
    if (found == s.index.end()) return false;
    removed.reset(found->second);
    s.policy.on_erase(removed.get());
    s.index.erase(found);
    s.used_bytes.fetch_sub(removed->charged_bytes, std::memory_order_relaxed);
    return true;
  }

  /// Whether `key` is present. Counts neither a hit nor an access.
  [[nodiscard]] bool contains(const cache_key& key) const {
    const shard& s = shard_for(key.hash());
    std::shared_lock lock(s.mutex);
    return s.index.contains(key);
  }

  /// `get` for each key: found[i] = 1 and values[i] filled on a hit, else
  /// found[i] = 0. Returns the number of hits. The spans must be equally long.
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    return get_each(*this, keys, values, found);
  }

  /// `put` for each pair; returns how many values were stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return put_each(*this, keys, values);
  }
  /// `put_many` that also sets stored[i] to whether values[i] was stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    return put_each(*this, keys, values, stored);
  }

  /// Bytes charged by the entries held now (a racy sum across shards).
  [[nodiscard]] std::uint64_t size_bytes() const noexcept {
    std::uint64_t total = 0;
    for (const auto& s : state_->shards) total += s->used_bytes.load(std::memory_order_relaxed);
    return total;
  }

  /// The configured budget.
  [[nodiscard]] std::uint64_t capacity_bytes() const noexcept { return state_->capacity_bytes; }

  /// Number of entries held now (takes each shard's shared lock in turn).
  [[nodiscard]] std::size_t entry_count() const {
    std::size_t total = 0;
    for (const auto& s : state_->shards) {
      std::shared_lock lock(s->mutex);
      total += s->index.size();
    }
    return total;
  }

  [[nodiscard]] std::size_t shard_count() const noexcept { return state_->shards.size(); }

  /// A snapshot of the counters, summed over shards. Latency histograms hold
  /// the sampled calls only (see `memory_tier_options::latency_sample_period`).
  [[nodiscard]] tier_stats stats() const {
    tier_stats out;
    for (const auto& shard_pointer : state_->shards) {
      const shard& s = *shard_pointer;
      out.hits += s.hits.load(std::memory_order_relaxed);
      out.misses += s.misses.load(std::memory_order_relaxed);
      out.puts += s.puts.load(std::memory_order_relaxed);
      out.rejected_puts += s.rejected_puts.load(std::memory_order_relaxed);
      out.bytes_read += s.bytes_read.load(std::memory_order_relaxed);
      out.bytes_written += s.bytes_written.load(std::memory_order_relaxed);
      out.evictions += s.evictions.load(std::memory_order_relaxed);
      out.size_bytes += s.used_bytes.load(std::memory_order_relaxed);
    }
    out.capacity_bytes = state_->capacity_bytes;
    out.get_latency = state_->get_latency;
    out.put_latency = state_->put_latency;
    return out;
  }

  /// "memory/s3fifo", "memory/lru" or "memory/sieve".
  [[nodiscard]] std::string_view name() const noexcept { return state_->name; }

  /// Replaces the eviction listener. Not thread-safe: call before sharing the tier.
  void set_eviction_listener(eviction_listener listener) { state_->on_evict = std::move(listener); }

 private:
  struct alignas(64) shard {
    explicit shard(const detail::eviction_budget& budget)
        : capacity_bytes(budget.shard_capacity_bytes), policy(budget) {}
    ~shard() {
      for (auto& [key, entry] : index) detail::memory_entry_deleter{}(entry);
    }
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    mutable std::shared_mutex mutex;
    std::uint64_t capacity_bytes;
    std::unordered_map<cache_key, detail::memory_entry*, cache_key_hash> index;
    EvictionPolicy policy;
    std::atomic<std::uint64_t> used_bytes{0};
    std::atomic<std::uint64_t> hits{0}, misses{0}, puts{0}, rejected_puts{0};
    std::atomic<std::uint64_t> bytes_read{0}, bytes_written{0}, evictions{0};
  };

  struct state {
    explicit state(memory_tier_options options)
        : capacity_bytes(options.capacity_bytes),
          sample_mask(sample_mask_for(options.latency_sample_period)),
          sample_enabled(options.latency_sample_period != 0),
          on_evict(std::move(options.on_evict)),
          name(std::string("memory/") + std::string(EvictionPolicy::name)),
          shards(resolve_shard_count(options.shard_count)) {
      detail::eviction_budget budget{capacity_bytes / shards.size(), options.small_queue_fraction};
      for (auto& s : shards) s = std::make_unique<shard>(budget);
    }
    std::uint64_t capacity_bytes;
    std::uint32_t sample_mask;
    bool sample_enabled;
    eviction_listener on_evict;
    std::string name;
    latency_histogram get_latency;
    latency_histogram put_latency;
    std::vector<std::unique_ptr<shard>> shards;  // shards hold mutexes: not movable
  };

  static memory_tier_options options_with_capacity(std::uint64_t capacity_bytes) {
    memory_tier_options options;
    options.capacity_bytes = capacity_bytes;
    return options;
  }
  static std::size_t resolve_shard_count(std::size_t requested) {
    if (requested != 0) return requested;
    std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    return std::bit_ceil(2 * threads);
  }
  static std::uint32_t sample_mask_for(std::uint32_t period) {
    return period <= 1 ? 0 : std::bit_ceil(period) - 1;
  }

  // Multiply-shift on the hash's upper half: works for any shard count and
  // stays independent of the low bits the shard's hash table uses.
  shard& shard_for(std::uint64_t hash) noexcept {
    return *state_->shards[((hash >> 32) * state_->shards.size()) >> 32];
  }
  const shard& shard_for(std::uint64_t hash) const noexcept {
    return *state_->shards[((hash >> 32) * state_->shards.size()) >> 32];
  }

  std::optional<std::chrono::steady_clock::time_point> start_timer() const noexcept {
    if (!state_->sample_enabled) return std::nullopt;
    thread_local std::uint32_t calls = 0;
    if ((calls++ & state_->sample_mask) != 0) return std::nullopt;
    return std::chrono::steady_clock::now();
  }

  static bool copy_out(shard& s, const cache_key& key, byte_buffer& out) {
    auto found = s.index.find(key);
    if (found == s.index.end()) return false;
    detail::memory_entry* entry = found->second;
    out.assign(entry->value_data(), entry->value_data() + entry->value_size);
    s.policy.on_hit(entry);
    return true;
  }

  std::unique_ptr<state> state_;
};

static_assert(cache_tier<memory_tier<>>);
static_assert(put_reporting_tier<memory_tier<>>);
static_assert(eviction_reporting_tier<memory_tier<>>);

}  // namespace conveyor
