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
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/entry_index.hpp"
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

/// What `memory_tier::arena_stats()` reports about the entry arena: bytes of
/// chunks mapped, blocks carved, on free lists, in their own mappings and from
/// operator new, reuses, failed mappings, huge pages (docs/cache-memory.md).
using entry_arena_stats = detail::entry_arena_stats;

/// How to build a `memory_tier`.
struct memory_tier_options {
  /// Byte budget for everything the tier holds: for each entry its block
  /// (header, key and value, rounded up to the arena's size class) and its
  /// share of the index (`memory_tier<>::charged_bytes`).
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
  /// Entries live in an arena of 2 MiB chunks that keeps freed blocks for the
  /// next entries (detail/entry_arena.hpp, docs/cache-memory.md); false: each
  /// entry from operator new.
  bool use_arena = true;
  /// Ask for transparent huge pages for the arena (madvise MADV_HUGEPAGE; the
  /// kernel may decline, and then 4 KiB pages are used).
  bool huge_pages = true;
  /// Fault each chunk in with one MADV_POPULATE_WRITE when it is first used
  /// (ignored by kernels before 5.14).
  bool prefault_chunks = true;
  /// Where the arena maps its memory: mmap unless a test makes it fail.
  detail::arena_page_source arena_pages = detail::arena_page_source::anonymous();
};

/// An in-process cache tier satisfying `cache_tier`.
///
/// Keys are spread over shards by hash; each shard has its own
/// `std::shared_mutex`, index (open addressing, detail/entry_index.hpp) and
/// eviction state. Hits take the shard's shared lock (LRU: exclusive), copy
/// the value out and bump a relaxed atomic counter; puts, erases and
/// evictions take it exclusively. The batch paths (`visit_many`,
/// `put_many_with`, and `get_many`/`put_many` through them) take each
/// shard's lock once per call, and let the caller read or write values in
/// place.
///
/// Accounting is byte-exact: an entry charges `charged_bytes(value size)`, and
/// no shard ever holds more than its budget, so `size_bytes() <=
/// capacity_bytes()` at every instant. (S3-FIFO's ghost keeps only hashes of
/// evicted keys, about 50 bytes each, outside the budget; it is bounded by
/// main's byte budget divided by the evicted entries' charges.)
///
/// Allocation: a put takes one block (entry header + value) from the tier's
/// arena: a freed block of its size class, else one carved from a 2 MiB chunk
/// (mapped as the tier fills, huge pages asked for; the arena maps at most
/// the budget rounded up to chunks, then falls back to operator new), and a
/// shard's index doubles its slot table when it is 4/5 full; a hit allocates
/// only if `out` must grow; the batch paths keep per-thread buffers. Thread-safety:
/// every member is safe to call concurrently except construction, move,
/// destruction and `set_eviction_listener`; a moved-from tier may only be
/// destroyed or assigned to. Errors: never throws except
/// std::bad_alloc; a value too large for a shard is refused (`put` returns
/// false, counted as a rejected put, and an older value of that key is erased).
template <class EvictionPolicy = eviction::s3fifo>
class memory_tier {
 public:
  /// What each entry costs beyond its block: its share of the index's slots.
  static constexpr std::uint64_t index_bytes_per_entry = detail::entry_index::max_bytes_per_entry;

  /// The bytes an entry with a value of `value_size` bytes counts against the
  /// budget: its block (header of sizeof(detail::memory_entry) bytes, key
  /// included, and the value, rounded up to the arena's size class: multiples
  /// of 64 bytes to 2 KiB, then at most 3.2% more; above 256 KiB whole pages)
  /// and index_bytes_per_entry.
  [[nodiscard]] static constexpr std::uint64_t charged_bytes(std::size_t value_size) noexcept {
    return detail::arena_block_bytes(detail::memory_entry_bytes(value_size)) +
           index_bytes_per_entry;
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
      hit = copy_out(s, key, hash, out);
    } else {
      std::shared_lock lock(s.mutex);
      hit = copy_out(s, key, hash, out);
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
    return store(
        key, value, [] { return true; }, refused::erase_older);
  }

  /// `put` that stores `value` only if keep() returns true, keep() being
  /// called under the exclusive lock of the key's shard, the lock every put,
  /// erase and eviction of the key holds (`conditional_put_tier`; `tiered`'s
  /// promotions use it). When keep() is false, or the value cannot fit,
  /// nothing changes (an older value is not erased) and it returns false.
  /// Counted and timed as `put`. keep() must not call into the tier; an
  /// exception from it propagates and nothing is stored.
  template <class Keep>
  bool put_if(const cache_key& key, std::span<const std::byte> value, Keep&& keep) {
    return store(key, value, keep, refused::keep_older);
  }

  /// Removes `key`; returns whether it was present. Not reported to the listener.
  bool erase(const cache_key& key) {
    shard& s = shard_for(key.hash());
    std::unique_lock lock(s.mutex);
    return erase_locked(s, key);
  }

  /// Whether `key` is present. Counts neither a hit nor an access.
  [[nodiscard]] bool contains(const cache_key& key) const {
    const shard& s = shard_for(key.hash());
    std::shared_lock lock(s.mutex);
    return s.index.find(key, key.hash()) != nullptr;
  }

  /// Calls visit(i, value) for each key present, the value in place; returns
  /// the number of hits. Keys are grouped by shard: one lock per shard per
  /// call (shared; LRU: exclusive), held while that shard's values are
  /// visited, so an eviction or erase waits until the copy is done. Each
  /// shard's slots and entries are prefetched for the whole group first. `visit`
  /// must not call into the tier. Counts as one `get` per key (latency: the
  /// call's time divided by the keys, when sampled). Allocates nothing once
  /// the calling thread's grouping buffers have grown to the batch size.
  template <class Visit>
  std::size_t visit_many(std::span<const cache_key> keys, Visit&& visit) {
    auto timer = start_timer();
    const auto& groups = group_by_shard(keys);
    std::size_t total_hits = 0;
    for (std::size_t g = 0; g + 1 < groups.starts.size(); ++g) {
      const std::uint32_t begin = groups.starts[g], end = groups.starts[g + 1];
      if (begin == end) continue;
      shard& s = *state_->shards[g];
      std::uint64_t hits = 0, bytes = 0;
      auto visit_shard = [&] {
        // Four passes, so that the cache misses of a batch overlap instead
        // of queueing one behind the other: start loading every key's first
        // slot; find every candidate by its slot's hash alone and start
        // loading its header; check each key (a full-hash collision walks
        // on with `find`) and start loading the value's first lines; then
        // visit. Comparing keys in the second pass made every entry's header
        // a miss waiting on the one before (perf: a quarter of a cached
        // epoch of 384-byte values in the copy and the key compare).
        thread_local std::vector<detail::memory_entry*> found;
        found.resize(end - begin);
        for (std::uint32_t at = begin; at < end; ++at)
          s.index.prefetch(groups.hash[groups.order[at]]);
        for (std::uint32_t at = begin; at < end; ++at) {
          detail::memory_entry* entry = s.index.find_hash(groups.hash[groups.order[at]]);
          found[at - begin] = entry;
          if (entry != nullptr) {  // the header's two lines (the policy's bits are on the second)
            __builtin_prefetch(entry);
            __builtin_prefetch(reinterpret_cast<const char*>(entry) + 64);
          }
        }
        for (std::uint32_t at = begin; at < end; ++at) {
          detail::memory_entry* entry = found[at - begin];
          if (entry == nullptr) continue;
          const std::uint32_t i = groups.order[at];
          if (!(entry->key == keys[i])) {
            entry = s.index.find(keys[i], groups.hash[i]);
            found[at - begin] = entry;
            if (entry == nullptr) continue;
          }
          prefetch_value(entry);
        }
        for (std::uint32_t at = begin; at < end; ++at) {
          detail::memory_entry* entry = found[at - begin];
          if (entry == nullptr) continue;
          s.policy.on_hit(entry);
          ++hits;
          bytes += entry->value_size;
          visit(static_cast<std::size_t>(groups.order[at]), entry->value());
        }
      };
      struct count_on_exit {  // counts what was visited even if `visit` throws
        shard& s;
        std::uint64_t& hits;
        std::uint64_t& bytes;
        std::uint64_t lookups;
        ~count_on_exit() {
          if (hits != 0) s.hits.fetch_add(hits, std::memory_order_relaxed);
          if (bytes != 0) s.bytes_read.fetch_add(bytes, std::memory_order_relaxed);
          if (lookups != hits) s.misses.fetch_add(lookups - hits, std::memory_order_relaxed);
        }
      } count{s, hits, bytes, end - begin};
      if constexpr (EvictionPolicy::hit_needs_exclusive_lock) {
        std::unique_lock lock(s.mutex);
        visit_shard();
      } else {
        std::shared_lock lock(s.mutex);
        visit_shard();
      }
      total_hits += hits;
    }
    if (timer && !keys.empty())
      state_->get_latency.record((std::chrono::steady_clock::now() - *timer) / keys.size());
    return total_hits;
  }

  /// `get` for each key: found[i] = 1 and values[i] filled on a hit, else
  /// found[i] = 0 and values[i] cleared. Returns the number of hits. One lock
  /// per shard (see `visit_many`). The spans must be equally long.
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    const std::size_t count = std::min({keys.size(), values.size(), found.size()});
    std::fill(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(count), std::uint8_t{0});
    std::size_t hits =
        visit_many(keys.first(count), [&](std::size_t i, std::span<const std::byte> value) {
          values[i].assign(value.begin(), value.end());
          found[i] = 1;
        });
    for (std::size_t i = 0; i < count; ++i)
      if (!found[i]) values[i].clear();
    return hits;
  }

  /// Stores value i as the sizes[i] bytes that write(i, destination) writes
  /// straight into the entry's own block (one copy), sets stored[i], and
  /// returns how many were stored. Blocks are allocated and written outside
  /// any lock, then inserted with one exclusive lock per shard per call. A
  /// value too large for its shard is refused as by `put`. If `write` throws,
  /// nothing of the call is stored and the exception propagates. The spans
  /// must be equally long.
  template <class Write>
  std::size_t put_many_with(std::span<const cache_key> keys, std::span<const std::size_t> sizes,
                            Write&& write, std::span<std::uint8_t> stored) {
    return store_many(
        keys, sizes, write, stored, [](std::size_t) { return true; }, refused::erase_older);
  }

  /// `put_many` that stores value i only if keep(i) returns true, keep(i)
  /// being called under the exclusive lock of key i's shard, right before
  /// the value goes in (`put_if` per value, one lock per shard per call:
  /// `conditional_put_many_tier`). A value not kept, or too large for its
  /// shard, leaves its key as it was (an older value is not erased), and
  /// stored[i] is 0. Counted and timed as `put_many` (a value not kept is
  /// counted neither stored nor rejected, as `put_if`). keep must not call
  /// into the tier, and must not throw (it runs between an eviction and its
  /// report to the listener). The spans must be equally long.
  template <class Keep>
  std::size_t put_many_if(std::span<const cache_key> keys,
                          std::span<const std::span<const std::byte>> values, Keep&& keep,
                          std::span<std::uint8_t> stored) {
    return copy_many(keys, values, stored, std::forward<Keep>(keep), refused::keep_older);
  }

  /// `put` for each pair; returns how many values were stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    thread_local std::vector<std::uint8_t> stored;
    stored.resize(std::min(keys.size(), values.size()));
    return put_many(keys, values, stored);
  }
  /// `put_many` that also sets stored[i] to whether values[i] was stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    // keep_every_value: the instantiation tiered's write-back put_many_if uses.
    return copy_many(keys, values, stored, keep_every_value{}, refused::erase_older);
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

  /// What the entry arena holds: chunks mapped, free blocks, blocks from the
  /// heap (see `memory_tier_options::use_arena`). Takes the arena's lock.
  [[nodiscard]] entry_arena_stats arena_stats() const { return state_->arena.stats(); }

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

  /// Values live in this process's heap only: the cache stage checks a hit's
  /// type tag and lengths, not its CRC32C (see `in_process_tier`).
  static constexpr bool values_stay_in_process = true;

  /// "memory/s3fifo", "memory/lru" or "memory/sieve".
  [[nodiscard]] std::string_view name() const noexcept { return state_->name; }

  /// Replaces the eviction listener. Not thread-safe: call before sharing the tier.
  void set_eviction_listener(eviction_listener listener) { state_->on_evict = std::move(listener); }

 private:
  // What a put that cannot fit does to an older value of the key.
  enum class refused { erase_older, keep_older };

  // put_many and put_many_if: the values copied into their blocks.
  template <class Keep>
  std::size_t copy_many(std::span<const cache_key> keys,
                        std::span<const std::span<const std::byte>> values,
                        std::span<std::uint8_t> stored, Keep&& keep, refused when_refused) {
    const std::size_t count = std::min({keys.size(), values.size(), stored.size()});
    thread_local std::vector<std::size_t> sizes;
    sizes.resize(count);
    for (std::size_t i = 0; i < count; ++i) sizes[i] = values[i].size();
    return store_many(
        keys.first(count), sizes,
        [&](std::size_t i, std::span<std::byte> destination) {
          if (!destination.empty())
            std::memcpy(destination.data(), values[i].data(), destination.size());
        },
        stored.first(count), keep, when_refused);
  }

  // put_many_with and put_many_if: blocks allocated and written outside the
  // locks; keep(i) asked under key i's shard lock, right before the insert.
  template <class Write, class Keep>
  std::size_t store_many(std::span<const cache_key> keys, std::span<const std::size_t> sizes,
                         Write&& write, std::span<std::uint8_t> stored, Keep&& keep,
                         refused when_refused) {
    auto timer = start_timer();
    const std::size_t count = std::min({keys.size(), sizes.size(), stored.size()});
    // Per thread, reused; emptied on every exit, so that no entry outlives
    // this call in it (the tier may be gone by this thread's next call).
    thread_local std::vector<detail::memory_entry_ptr> entries;
    thread_local std::vector<std::size_t> block_sizes;
    thread_local std::vector<detail::entry_arena::block> blocks;
    struct empty_on_exit {
      ~empty_on_exit() { entries.clear(); }
    } empty_entries;
    entries.clear();
    entries.resize(count);
    block_sizes.resize(count);
    blocks.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      stored[i] = 0;
      const bool fits = charged_bytes(sizes[i]) <= shard_for(keys[i].hash()).capacity_bytes;
      block_sizes[i] = fits ? detail::memory_entry_bytes(sizes[i]) : 0;
    }
    state_->arena.allocate_many(block_sizes, blocks);  // one arena lock for the batch
    for (std::size_t i = 0; i < count; ++i)
      if (block_sizes[i] != 0)
        entries[i] = detail::make_memory_entry_in(state_->arena, blocks[i], keys[i], keys[i].hash(),
                                                  sizes[i], charged_bytes(sizes[i]));
    for (std::size_t i = 0; i < count; ++i)
      if (entries[i]) write(i, std::span<std::byte>(entries[i]->value_data(), sizes[i]));
    const auto& groups = group_by_shard(keys.first(count));
    std::size_t total = 0;
    // Victims of every shard, reported under their shard's lock (see
    // eviction_listener.hpp) and freed once the call is done.
    std::vector<detail::memory_entry_ptr> evicted_all;
    evicted_entries evicted;
    for (std::size_t g = 0; g + 1 < groups.starts.size(); ++g) {
      const std::uint32_t begin = groups.starts[g], end = groups.starts[g + 1];
      if (begin == end) continue;
      shard& s = *state_->shards[g];
      std::uint64_t puts = 0, rejected = 0, bytes = 0;
      evicted.clear();
      {
        std::unique_lock lock(s.mutex);
        for (std::uint32_t at = begin; at < end; ++at) {
          const std::uint32_t i = groups.order[at];
          if (!entries[i]) {
            // Refused: an older value must not outlive it (put_many_if: kept).
            if (when_refused == refused::erase_older) erase_locked(s, keys[i]);
            ++rejected;
            continue;
          }
          if (!keep(static_cast<std::size_t>(i))) continue;
          bytes += sizes[i];
          insert_locked(s, std::move(entries[i]), evicted);
          stored[i] = 1;
          ++puts;
        }
        report_evictions(s, evicted);
      }
      if (puts != 0) s.puts.fetch_add(puts, std::memory_order_relaxed);
      if (rejected != 0) s.rejected_puts.fetch_add(rejected, std::memory_order_relaxed);
      if (bytes != 0) s.bytes_written.fetch_add(bytes, std::memory_order_relaxed);
      for (auto& victim : evicted) evicted_all.push_back(std::move(victim));
      total += puts;
    }
    if (timer && count != 0)
      state_->put_latency.record((std::chrono::steady_clock::now() - *timer) / count);
    return total;
  }

  // put and put_if: the entry is built outside the lock; keep() is asked
  // under it, right before the insert.
  template <class Keep>
  bool store(const cache_key& key, std::span<const std::byte> value, Keep&& keep,
             refused when_refused) {
    auto timer = start_timer();
    std::uint64_t hash = key.hash();
    shard& s = shard_for(hash);
    std::uint64_t charge = charged_bytes(value.size());
    if (charge > s.capacity_bytes) {
      s.rejected_puts.fetch_add(1, std::memory_order_relaxed);
      // An older value must not outlive a newer one that was refused.
      if (when_refused == refused::erase_older) erase(key);
      return false;
    }
    auto entry = detail::make_memory_entry(state_->arena, key, hash, value, charge);
    evicted_entries evicted;
    {
      std::unique_lock lock(s.mutex);
      if (!keep()) return false;
      insert_locked(s, std::move(entry), evicted);
      report_evictions(s, evicted);  // under the lock: see eviction_listener.hpp
    }
    s.puts.fetch_add(1, std::memory_order_relaxed);
    s.bytes_written.fetch_add(value.size(), std::memory_order_relaxed);
    if (timer) state_->put_latency.record(std::chrono::steady_clock::now() - *timer);
    return true;
  }

  struct alignas(64) shard {
    shard(const detail::eviction_budget& budget, detail::entry_arena& entries_arena)
        : capacity_bytes(budget.shard_capacity_bytes), policy(budget), arena(&entries_arena) {}
    ~shard() {
      // The tier is going, and its arena after the shards (a member of the
      // same state, declared first): entries in the arena's chunks go with
      // its regions, and an entry has nothing to destroy, so only blocks from
      // the heap or mappings of their own are returned one by one. (Walking
      // every entry cost a cache miss and the arena's lock each, about 50 ns
      // an entry: bench_cache_memory_tier's teardown figures.)
      static_assert(std::is_trivially_destructible_v<detail::memory_entry>);
      if (arena->all_blocks_in_chunks()) return;
      index.for_each([this](detail::memory_entry* entry) { own(entry).reset(); });
    }
    // Ownership of an entry that the index held.
    detail::memory_entry_ptr own(detail::memory_entry* entry) const noexcept {
      return detail::memory_entry_ptr(entry, detail::memory_entry_deleter{arena});
    }
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    mutable std::shared_mutex mutex;
    std::uint64_t capacity_bytes;
    detail::entry_index index;
    EvictionPolicy policy;
    std::atomic<std::uint64_t> used_bytes{0};
    std::atomic<std::uint64_t> hits{0}, misses{0}, puts{0}, rejected_puts{0};
    std::atomic<std::uint64_t> bytes_read{0}, bytes_written{0}, evictions{0};
    detail::entry_arena* arena;
  };

  struct state {
    explicit state(memory_tier_options options)
        : capacity_bytes(options.capacity_bytes),
          sample_mask(sample_mask_for(options.latency_sample_period)),
          sample_enabled(options.latency_sample_period != 0),
          on_evict(std::move(options.on_evict)),
          name(std::string("memory/") + std::string(EvictionPolicy::name)),
          arena(arena_options(options)),
          shards(resolve_shard_count(options.shard_count)) {
      detail::eviction_budget budget{capacity_bytes / shards.size(), options.small_queue_fraction};
      for (auto& s : shards) s = std::make_unique<shard>(budget, arena);
    }
    static detail::entry_arena_options arena_options(const memory_tier_options& options) {
      detail::entry_arena_options out;
      // Room for the budget and for the blocks of a batch being put while the
      // entries it will evict are still held (a few chunks).
      constexpr std::uint64_t slack = 4 * detail::entry_arena::chunk_bytes;
      out.limit_bytes =
          options.capacity_bytes > UINT64_MAX - slack ? UINT64_MAX : options.capacity_bytes + slack;
      out.huge_pages = options.huge_pages;
      out.prefault = options.prefault_chunks;
      out.use_heap = !options.use_arena;
      out.pages = options.arena_pages;
      return out;
    }
    std::uint64_t capacity_bytes;
    std::uint32_t sample_mask;
    bool sample_enabled;
    eviction_listener on_evict;
    std::string name;
    latency_histogram get_latency;
    latency_histogram put_latency;
    detail::entry_arena arena;                   // before shards: outlives their entries
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
  std::size_t shard_index(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(((hash >> 32) * state_->shards.size()) >> 32);
  }
  shard& shard_for(std::uint64_t hash) noexcept { return *state_->shards[shard_index(hash)]; }
  const shard& shard_for(std::uint64_t hash) const noexcept {
    return *state_->shards[shard_index(hash)];
  }

  std::optional<std::chrono::steady_clock::time_point> start_timer() const noexcept {
    if (!state_->sample_enabled) return std::nullopt;
    thread_local std::uint32_t calls = 0;
    if ((calls++ & state_->sample_mask) != 0) return std::nullopt;
    return std::chrono::steady_clock::now();
  }

  // Starts loading the lines of an entry's block after its header's two,
  // at most value_prefetch_bytes of it: enough for a small value to arrive
  // whole, and the start of a large one, whose copy the hardware prefetcher
  // follows.
  static constexpr std::size_t value_prefetch_bytes = 1024;
  static void prefetch_value(const detail::memory_entry* entry) noexcept {
    const char* block = reinterpret_cast<const char*>(entry);
    const std::size_t bytes =
        std::min(detail::memory_entry_bytes(entry->value_size), value_prefetch_bytes);
    for (std::size_t offset = 128; offset < bytes; offset += 64) __builtin_prefetch(block + offset);
  }

  static bool copy_out(shard& s, const cache_key& key, std::uint64_t hash, byte_buffer& out) {
    detail::memory_entry* entry = s.index.find(key, hash);
    if (entry == nullptr) return false;
    out.assign(entry->value_data(), entry->value_data() + entry->value_size);
    s.policy.on_hit(entry);
    return true;
  }

  using evicted_entries = boost::container::small_vector<detail::memory_entry_ptr, 4>;

  // Inserts `entry` (its charge fits the shard), replacing the key's older
  // entry and keeping its access count, and evicts until the shard fits.
  // Victims go to `evicted`, to be reported before the lock is released and
  // freed after it.
  static void insert_locked(shard& s, detail::memory_entry_ptr entry, evicted_entries& evicted) {
    const std::uint64_t charge = entry->charged_bytes;
    s.index.reserve_one();  // the only step that can fail: before anything changes
    std::uint8_t kept_frequency = 0;
    if (detail::memory_entry* found = s.index.find(entry->key, entry->hash); found != nullptr) {
      detail::memory_entry_ptr replaced = s.own(found);
      kept_frequency = replaced->frequency.load(std::memory_order_relaxed);
      s.policy.on_erase(replaced.get());
      s.index.erase(replaced.get());
      s.used_bytes.fetch_sub(replaced->charged_bytes, std::memory_order_relaxed);
    }
    while (s.used_bytes.load(std::memory_order_relaxed) + charge > s.capacity_bytes) {
      detail::memory_entry* victim = s.policy.evict_one();
      if (victim == nullptr) break;  // unreachable: bytes in use imply entries
      s.index.erase(victim);
      s.used_bytes.fetch_sub(victim->charged_bytes, std::memory_order_relaxed);
      evicted.push_back(s.own(victim));
    }
    entry->frequency.store(kept_frequency, std::memory_order_relaxed);
    s.index.insert(entry.get());
    s.policy.on_insert(entry.get());
    s.used_bytes.fetch_add(charge, std::memory_order_relaxed);
    static_cast<void>(entry.release());  // the index owns it now
  }

  static bool erase_locked(shard& s, const cache_key& key) {
    detail::memory_entry* found = s.index.find(key, key.hash());
    if (found == nullptr) return false;
    detail::memory_entry_ptr removed = s.own(found);
    s.policy.on_erase(removed.get());
    s.index.erase(removed.get());
    s.used_bytes.fetch_sub(removed->charged_bytes, std::memory_order_relaxed);
    return true;
  }

  // Called with the shard's lock held, so that a victim reaches the listener
  // (a write-back `tiered`: the tier below) before any other thread can see
  // the shard without it: a lookup that misses here finds it below, and a
  // later put or erase of the key is ordered after the hand-over.
  void report_evictions(shard& s, const evicted_entries& evicted) const {
    if (evicted.empty()) return;
    s.evictions.fetch_add(evicted.size(), std::memory_order_relaxed);
    if (state_->on_evict)
      for (const auto& victim : evicted) state_->on_evict(victim->key, victim->value());
  }

  // The positions of `keys` ordered by shard (a counting sort): keys of shard
  // g are order[starts[g]] .. order[starts[g + 1] - 1], in batch order. Per
  // thread, reused: valid until this thread's next call.
  struct shard_groups {
    std::vector<std::uint32_t> starts;
    std::vector<std::uint32_t> order;
    std::vector<std::uint32_t> shard_of;
    std::vector<std::uint64_t> hash;  // per key, in batch order
  };
  const shard_groups& group_by_shard(std::span<const cache_key> keys) const {
    thread_local shard_groups groups;
    const std::size_t shards = state_->shards.size();
    groups.starts.assign(shards + 1, 0);
    groups.shard_of.resize(keys.size());
    groups.order.resize(keys.size());
    groups.hash.resize(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      groups.hash[i] = keys[i].hash();
      auto g = static_cast<std::uint32_t>(shard_index(groups.hash[i]));
      groups.shard_of[i] = g;
      ++groups.starts[g + 1];
    }
    for (std::size_t g = 0; g < shards; ++g) groups.starts[g + 1] += groups.starts[g];
    thread_local std::vector<std::uint32_t> next;
    next.assign(groups.starts.begin(), groups.starts.end() - 1);
    for (std::size_t i = 0; i < keys.size(); ++i)
      groups.order[next[groups.shard_of[i]]++] = static_cast<std::uint32_t>(i);
    return groups;
  }

  std::unique_ptr<state> state_;
};

static_assert(cache_tier<memory_tier<>>);
static_assert(put_reporting_tier<memory_tier<>>);
static_assert(eviction_reporting_tier<memory_tier<>>);
static_assert(visiting_tier<memory_tier<>>);
static_assert(in_place_put_tier<memory_tier<>>);
static_assert(in_process_tier<memory_tier<>>);
static_assert(conditional_put_tier<memory_tier<>>);
static_assert(conditional_put_many_tier<memory_tier<>>);

}  // namespace conveyor
