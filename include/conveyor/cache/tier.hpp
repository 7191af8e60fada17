// conveyor/cache/tier.hpp: what every cache tier provides.
//
// A tier maps a `cache_key` to an opaque byte value. Tiers are usable on their
// own and stack into `tiered<...>` and the pipeline's `cache` stage. Every tier
// counts hits, misses, bytes, evictions and failures, and keeps latency
// histograms; `stats()` returns a snapshot.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/histogram.hpp"

namespace conveyor {

/// The value type tiers store and return.
using byte_buffer = std::vector<std::byte>;

/// A cache key: which dataset (fingerprint of the source file), which chain of
/// stages and parameters produced the value, and which record it is.
struct cache_key {
  std::uint64_t dataset = 0;
  std::uint64_t chain = 0;
  std::uint64_t record = 0;

  friend constexpr bool operator==(const cache_key&, const cache_key&) = default;

  /// A well-mixed 64-bit hash (used for sharding and hash tables).
  [[nodiscard]] constexpr std::uint64_t hash() const noexcept {
    using detail::mix64;
    return mix64(dataset ^ mix64(chain ^ mix64(record + detail::salt::golden)));
  }

  /// 48 lowercase hex digits: dataset, chain, record. Used as a file or Redis key.
  [[nodiscard]] std::string to_string() const {
    char text[49];
    std::snprintf(text, sizeof text, "%016llx%016llx%016llx",
                  static_cast<unsigned long long>(dataset), static_cast<unsigned long long>(chain),
                  static_cast<unsigned long long>(record));
    return std::string(text, 48);
  }
};

struct cache_key_hash {
  std::size_t operator()(const cache_key& key) const noexcept {
    return static_cast<std::size_t>(key.hash());
  }
};

/// A snapshot of a tier's counters.
struct tier_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t puts = 0;           ///< values stored
  std::uint64_t rejected_puts = 0;  ///< values not stored (too large, tier unavailable)
  std::uint64_t bytes_read = 0;     ///< value bytes returned by hits
  std::uint64_t bytes_written = 0;  ///< value bytes stored
  std::uint64_t evictions = 0;
  std::uint64_t failures = 0;    ///< I/O or network failures (served as misses)
  std::uint64_t size_bytes = 0;  ///< bytes held now, keys and metadata included
  std::uint64_t capacity_bytes = 0;
  latency_histogram get_latency;
  latency_histogram put_latency;

  [[nodiscard]] double hit_ratio() const noexcept {
    auto lookups = hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
};

/// A cache tier. `get` fills `out` and returns true on a hit; on a miss it
/// returns false and leaves `out` empty (cleared, its capacity kept). `put`
/// returns whether the value was stored. Batched forms exist because network
/// and disk tiers answer many keys far faster than one at a time: `get_many`
/// sets found[i] to 1 or 0, fills values[i] on a hit and clears it on a miss,
/// and returns the hit count; `put_many` returns how many values were stored.
/// A tier that fails (disk full, server down) counts the failure and answers
/// as a miss; it does not throw.
///
/// Every member may be called from any number of threads at once (only
/// construction, move, destruction and the tier's own setup calls need not be
/// thread-safe). Only `get` and `get_many` are lookups: `contains` and `erase`
/// count neither hits nor misses. `size_bytes()` never exceeds
/// `capacity_bytes()`: a tier evicts or refuses rather than grow past its
/// budget (a tier that tracks no size, such as Redis, reports 0 for both).
template <class T>
concept cache_tier = requires(T& tier, const T& const_tier, const cache_key& key,
                              std::span<const std::byte> value, byte_buffer& out,
                              std::span<const cache_key> keys, std::span<byte_buffer> values,
                              std::span<std::uint8_t> found,
                              std::span<const std::span<const std::byte>> new_values) {
  { tier.get(key, out) } -> std::same_as<bool>;
  { tier.put(key, value) } -> std::same_as<bool>;
  { tier.erase(key) } -> std::same_as<bool>;
  { tier.contains(key) } -> std::same_as<bool>;
  { tier.get_many(keys, values, found) } -> std::same_as<std::size_t>;
  { tier.put_many(keys, new_values) } -> std::same_as<std::size_t>;
  { const_tier.size_bytes() } -> std::convertible_to<std::uint64_t>;
  { const_tier.capacity_bytes() } -> std::convertible_to<std::uint64_t>;
  { const_tier.stats() } -> std::convertible_to<tier_stats>;
  { const_tier.name() } -> std::convertible_to<std::string_view>;
};

/// A tier whose `put_many` can also say which values it stored: the overload
/// with `stored` sets stored[i] to 1 or 0 and returns how many it set to 1.
/// Every conveyor tier has it; `tiered` uses it to count, erase and pass down
/// exactly the values each of its tiers refused.
template <class T>
concept put_reporting_tier = cache_tier<T> &&
    requires(T& tier, std::span<const cache_key> keys,
             std::span<const std::span<const std::byte>> values, std::span<std::uint8_t> stored) {
  { tier.put_many(keys, values, stored) } -> std::same_as<std::size_t>;
};

/// A tier that writes behind: `flush()` waits until every write queued
/// before the call is done (stored, or its failure counted). The cache stage
/// calls it at the end of each complete epoch; `tiered` forwards it to its
/// tiers that have it. A tier without it writes inside `put`.
template <class T>
concept flushable_tier = cache_tier<T> && requires(T& tier) { tier.flush(); };

/// The batched forms for a tier with no faster way than one key at a time:
/// `get` per key (found[i] set, values[i] filled on a hit and cleared on a
/// miss; returns the hits) and `put` per pair (returns how many were stored;
/// with `stored`, also which). Spans of unequal length are cut to the shortest.
template <class Tier>
std::size_t get_each(Tier& tier, std::span<const cache_key> keys, std::span<byte_buffer> values,
                     std::span<std::uint8_t> found) {
  std::size_t count = std::min({keys.size(), values.size(), found.size()});
  std::size_t hits = 0;
  for (std::size_t i = 0; i < count; ++i) {
    found[i] = tier.get(keys[i], values[i]) ? 1 : 0;
    hits += found[i];
  }
  return hits;
}
template <class Tier>
std::size_t put_each(Tier& tier, std::span<const cache_key> keys,
                     std::span<const std::span<const std::byte>> values) {
  std::size_t count = std::min(keys.size(), values.size());
  std::size_t stored = 0;
  for (std::size_t i = 0; i < count; ++i) stored += tier.put(keys[i], values[i]) ? 1 : 0;
  return stored;
}
template <class Tier>
std::size_t put_each(Tier& tier, std::span<const cache_key> keys,
                     std::span<const std::span<const std::byte>> values,
                     std::span<std::uint8_t> stored) {
  std::size_t count = std::min({keys.size(), values.size(), stored.size()});
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    stored[i] = tier.put(keys[i], values[i]) ? 1 : 0;
    total += stored[i];
  }
  return total;
}

/// Stores the pairs in any tier and sets stored[i] to whether values[i] was
/// stored; returns how many were. `keys`, `values` and `stored` must be equally
/// long. A `put_reporting_tier` gets one `put_many`; another tier cannot say
/// which values of a batch it refused, so it gets one `put` per pair.
template <class Tier>
std::size_t put_many_reporting(Tier& tier, std::span<const cache_key> keys,
                               std::span<const std::span<const std::byte>> values,
                               std::span<std::uint8_t> stored) {
  if constexpr (put_reporting_tier<Tier>)
    return tier.put_many(keys, values, stored);
  else
    return put_each(tier, keys, values, stored);
}

/// The visitor `visit_values` and a `visiting_tier` call for each hit:
/// visit(i, value), i the key's position in the batch. `value` is valid only
/// during the call (a memory tier holds its shard's lock meanwhile): copy out
/// what you need, and do not call into the tier.
struct value_visitor_archetype {
  void operator()(std::size_t, std::span<const std::byte>) const noexcept {}
};
/// The writer `put_values` and an `in_place_put_tier` call for each value:
/// write(i, destination), destination exactly sizes[i] bytes, to be filled
/// completely.
struct value_writer_archetype {
  void operator()(std::size_t, std::span<std::byte>) const noexcept {}
};

/// A tier that shows hits in place instead of copying them into buffers:
/// `visit_many(keys, visit)` calls visit(i, value) for each key present, in
/// any order (a memory tier groups them by shard: one lock per shard per
/// batch), and returns the number of hits; lookups and hits count as `get`'s.
/// If `visit` throws, the exception propagates once the tier's locks are
/// released.
template <class T>
concept visiting_tier = cache_tier<T> &&
    requires(T& tier, std::span<const cache_key> keys, value_visitor_archetype& visit) {
  { tier.visit_many(keys, visit) } -> std::same_as<std::size_t>;
};

/// A tier that lets the caller write each value straight into its own
/// storage: `put_many_with(keys, sizes, write, stored)` allocates sizes[i]
/// bytes per key, calls write(i, destination) and stores them as `put_many`
/// with `stored` would (same return value and flags). One copy per value
/// instead of encode-then-copy.
template <class T>
concept in_place_put_tier = cache_tier<T> &&
    requires(T& tier, std::span<const cache_key> keys, std::span<const std::size_t> sizes,
             value_writer_archetype& write, std::span<std::uint8_t> stored) {
  { tier.put_many_with(keys, sizes, write, stored) } -> std::same_as<std::size_t>;
};

/// A tier whose values never leave this process's memory (no file, no other
/// process, no network): the cache stage trusts their bytes and checks only
/// type tag and lengths on a hit, not the CRC32C. A tier says so with
/// `static constexpr bool values_stay_in_process = true;`.
template <class T>
concept in_process_tier = cache_tier<T> && requires {
  requires std::bool_constant<T::values_stay_in_process>::value;
};

/// A tier that checks its values itself where they can go wrong: every value
/// it hands out (from `get`, `get_many` and `visit_many`) either never left
/// this process's memory, or was checked by the tier against a checksum the
/// tier stored over exactly those bytes, after they crossed the file, the
/// other process or the network, on a copy of this process that cannot change
/// after the check. A value that fails is a counted failure and a miss. The
/// cache stage then trusts the bytes of a hit as it does an
/// `in_process_tier`'s (type tag and lengths checked, the row's CRC32C not
/// computed again); it still writes the row's CRC32C. A tier says so with
/// `static constexpr bool values_verified = true;` (disk_tier, shm_tier, and
/// a `tiered` whose every tier is in-process or verifying).
template <class T>
concept verifying_tier = cache_tier<T> && requires {
  requires std::bool_constant<T::values_verified>::value;
};

/// Calls visit(i, value) for every key of `keys` that `tier` holds and returns
/// the hit count. A `visiting_tier` shows its values in place; any other tier
/// answers one `get_many` into buffers reused per thread, and each found value
/// is visited from there. `visit` must not call into the tier.
template <class Tier, class Visit>
std::size_t visit_values(Tier& tier, std::span<const cache_key> keys, Visit&& visit) {
  if constexpr (visiting_tier<Tier>) {
    return tier.visit_many(keys, visit);
  } else {
    thread_local std::vector<byte_buffer> values;
    thread_local std::vector<std::uint8_t> found;
    if (values.size() < keys.size()) values.resize(keys.size());
    found.assign(keys.size(), 0);
    std::size_t hits =
        tier.get_many(keys, std::span<byte_buffer>(values.data(), keys.size()), found);
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (found[i]) visit(i, std::span<const std::byte>(values[i]));
    return hits;
  }
}

/// Stores one value per key, value i being the sizes[i] bytes that
/// write(i, destination) produces; returns how many were stored. An
/// `in_place_put_tier` lets `write` fill its own storage; any other tier gets
/// the values written into one buffer reused per thread, then one `put_many`.
/// The spans must be equally long.
template <class Tier, class Write>
std::size_t put_values(Tier& tier, std::span<const cache_key> keys,
                       std::span<const std::size_t> sizes, Write&& write) {
  if constexpr (in_place_put_tier<Tier>) {
    thread_local std::vector<std::uint8_t> stored;
    stored.resize(keys.size());
    return tier.put_many_with(keys, sizes, write, stored);
  } else {
    thread_local byte_buffer encoded;
    thread_local std::vector<std::span<const std::byte>> values;
    std::size_t total = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) total += sizes[i];
    encoded.resize(total);
    values.resize(keys.size());
    std::size_t at = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::span<std::byte> destination(encoded.data() + at, sizes[i]);
      write(i, destination);
      values[i] = destination;
      at += sizes[i];
    }
    return tier.put_many(keys, std::span<const std::span<const std::byte>>(values));
  }
}

}  // namespace conveyor
