// conveyor/cache/redis_tier.hpp: a cache tier stored in Redis or Redis Cluster.
//
// Values live under "<key_prefix><48 hex digits of the cache_key>", written
// with SET (PX ttl when a TTL is set) and read with pipelined GETs. Batches are
// split per cluster node and the per-node pipelines run concurrently. Every
// network operation has a deadline; when Redis is down, slow or broken, `get`
// answers a miss and `put` answers false within that deadline, the failure is
// counted in `stats().failures`, and nothing throws.
//
//   conveyor::redis_tier_options options;
//   options.servers = {"10.0.0.5:7000", "10.0.0.6:7000"};
//   options.cluster = true;
//   options.ttl = std::chrono::hours(6);
//   conveyor::redis_tier cache(options);
//   cache.put(key, bytes);
//   conveyor::byte_buffer value;
//   if (cache.get(key, value)) { ... }
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/cache/redis/client.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

/// How to reach Redis and how to behave when it misbehaves.
struct redis_tier_options {
  std::vector<std::string> servers{"127.0.0.1:6379"};  ///< "host:port"; in cluster mode, seed nodes
  bool cluster = false;  ///< discover nodes with CLUSTER SLOTS and route by hash slot
  std::string key_prefix = "conveyor:";
  std::chrono::milliseconds ttl{0};  ///< 0: values never expire
  std::string username;              ///< ACL user (Redis 6+); empty: `AUTH <password>`
  std::string password;              ///< empty: no AUTH
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds io_timeout{1000};  ///< deadline of one pipelined request round
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  std::size_t max_batch = 1024;                  ///< keys per pipelined round in get_many/put_many
  std::uint64_t max_value_bytes = 512ull << 20;  ///< larger puts are rejected (Redis's own limit)
};

/// Counters specific to the Redis tier, beside the common `tier_stats`.
using redis_tier_counters = redis::client_counters;

/// A `cache_tier` backed by Redis.
///
/// Allocation: per call, the key strings, one request buffer per node and the
/// replies; values are copied into the caller's buffers. Thread-safety: every
/// member function may be called from any thread; calls are serialized by an
/// internal mutex (one tier = one connection per node; use several tiers for
/// parallel traffic). Blocking: calls block the caller for at most about
/// connect_timeout + io_timeout per round (a few rounds when cluster redirects
/// occur), and return at once while the server is in backoff.
/// Errors: the constructor throws `std::invalid_argument` for an unparsable
/// server address, and get_many/put_many for spans shorter than `keys` (a
/// programming error); nothing else throws except std::bad_alloc. Server trouble
/// is counted (stats().failures, counters()) and answered as a miss / false.
/// `size_bytes()` and `capacity_bytes()` return 0: Redis owns eviction and
/// memory (see INFO memory), the tier does not track them.
class redis_tier {
 public:
  explicit redis_tier(redis_tier_options options)
      : options_(std::move(options)), client_(client_options_from(options_)) {}

  [[nodiscard]] std::string_view name() const noexcept { return "redis"; }

  /// Fills `out` and returns true on a hit; on a miss returns false and clears `out`.
  bool get(const cache_key& key, byte_buffer& out) {
    std::uint8_t found = 0;
    return get_many(std::span<const cache_key>(&key, 1), std::span<byte_buffer>(&out, 1),
                    std::span<std::uint8_t>(&found, 1)) == 1;
  }

  /// Stores `value` (with the configured TTL). Returns false when not stored.
  bool put(const cache_key& key, std::span<const std::byte> value) {
    return put_many(std::span<const cache_key>(&key, 1),
                    std::span<const std::span<const std::byte>>(&value, 1)) == 1;
  }

  /// Deletes the key; returns whether it existed.
  bool erase(const cache_key& key) { return single_integer(redis::command_kind::del, key) > 0; }

  /// Whether the key exists (a failure answers false).
  bool contains(const cache_key& key) {
    return single_integer(redis::command_kind::exists, key) > 0;
  }

  /// Looks up all keys; sets found[i], fills values[i] on a hit and clears it
  /// on a miss; returns the hit count.
  /// `values` and `found` must be at least as long as `keys`.
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    if (values.size() < keys.size() || found.size() < keys.size())
      throw std::invalid_argument(
          "redis_tier::get_many: values and found must be at least as long as keys");
    std::lock_guard lock(mutex_);
    std::size_t hits = 0;
    for (std::size_t begin = 0; begin < keys.size(); begin += options_.max_batch) {
      auto count = std::min(options_.max_batch, keys.size() - begin);
      auto started = clock::now();
      auto names = key_names(keys.subspan(begin, count));
      auto results = client_.run(redis::command_kind::get, names);
      for (std::size_t i = 0; i < count; ++i) {
        auto& result = results[i];
        bool hit = result.ok && result.reply.kind == redis::resp_value::type::bulk_string;
        found[begin + i] = hit ? 1 : 0;
        if (hit) {
          auto& text = result.reply.text;
          auto* bytes = reinterpret_cast<const std::byte*>(text.data());
          values[begin + i].assign(bytes, bytes + text.size());
          ++stats_.hits;
          stats_.bytes_read += text.size();
          ++hits;
        } else {
          values[begin + i].clear();
          ++stats_.misses;
          if (!result.ok || result.reply.is_error()) ++stats_.failures;
        }
      }
      record_latency(stats_.get_latency, started, count);
    }
    return hits;
  }

  /// Stores all values; returns how many were stored. Values above
  /// max_value_bytes are rejected without contacting the server.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> new_values) {
    return store_many(keys, new_values, nullptr);
  }
  /// `put_many` that also sets stored[i] to whether new_values[i] was stored.
  /// `stored` must be at least as long as `keys`.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> new_values,
                       std::span<std::uint8_t> stored) {
    if (stored.size() < keys.size())
      throw std::invalid_argument("redis_tier::put_many: stored must be at least as long as keys");
    return store_many(keys, new_values, stored.data());
  }

  [[nodiscard]] std::uint64_t size_bytes() const noexcept { return 0; }
  [[nodiscard]] std::uint64_t capacity_bytes() const noexcept { return 0; }

  /// A snapshot of the common counters and latency histograms (per key, the
  /// batch latency divided by its size).
  [[nodiscard]] tier_stats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  /// Event counters: connects, failures by kind, redirects, slot map refreshes.
  [[nodiscard]] redis_tier_counters counters() const {
    std::lock_guard lock(mutex_);
    return client_.counters();
  }

  /// The Redis key that holds `key`'s value.
  [[nodiscard]] std::string redis_key(const cache_key& key) const {
    return options_.key_prefix + key.to_string();
  }

 private:
  using clock = std::chrono::steady_clock;

  // put_many; with `stored`, stored[i] says whether new_values[i] was stored.
  std::size_t store_many(std::span<const cache_key> keys,
                         std::span<const std::span<const std::byte>> new_values,
                         std::uint8_t* stored) {
    if (new_values.size() < keys.size())
      throw std::invalid_argument(
          "redis_tier::put_many: new_values must be at least as long as keys");
    std::lock_guard lock(mutex_);
    std::size_t stored_count = 0;
    std::vector<std::size_t> accepted;  // indices into keys
    std::vector<cache_key> accepted_keys;
    std::vector<std::span<const std::byte>> accepted_values;
    for (std::size_t begin = 0; begin < keys.size(); begin += options_.max_batch) {
      auto count = std::min(options_.max_batch, keys.size() - begin);
      auto started = clock::now();
      accepted.clear();
      accepted_keys.clear();
      accepted_values.clear();
      for (std::size_t i = begin; i < begin + count; ++i) {
        if (stored != nullptr) stored[i] = 0;
        if (new_values[i].size() > options_.max_value_bytes) {
          ++stats_.rejected_puts;
          continue;
        }
        accepted.push_back(i);
        accepted_keys.push_back(keys[i]);
        accepted_values.push_back(new_values[i]);
      }
      auto names = key_names(accepted_keys);
      auto results =
          client_.run(redis::command_kind::set, names, accepted_values, options_.ttl.count());
      for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i].ok && results[i].reply.is_string("OK")) {
          ++stats_.puts;
          stats_.bytes_written += accepted_values[i].size();
          ++stored_count;
          if (stored != nullptr) stored[accepted[i]] = 1;
        } else {
          ++stats_.rejected_puts;
          ++stats_.failures;
        }
      }
      record_latency(stats_.put_latency, started, count);
    }
    return stored_count;
  }

  static redis::client_options client_options_from(const redis_tier_options& options) {
    redis::client_options settings;
    settings.servers.clear();
    for (const auto& text : options.servers) {
      redis::endpoint where;
      if (!redis::endpoint::parse(text, where))
        throw std::invalid_argument("redis_tier: not a host:port address: '" + text + "'");
      settings.servers.push_back(where);
    }
    if (settings.servers.empty()) throw std::invalid_argument("redis_tier: no server given");
    settings.cluster = options.cluster;
    settings.connection.connect_timeout = options.connect_timeout;
    settings.connection.io_timeout = options.io_timeout;
    settings.connection.username = options.username;
    settings.connection.password = options.password;
    settings.connection.limits.max_bulk_bytes =
        std::max<std::uint64_t>(options.max_value_bytes, 1 << 20);
    settings.backoff_initial = options.backoff_initial;
    settings.backoff_max = options.backoff_max;
    if (options.max_batch == 0)
      throw std::invalid_argument("redis_tier: max_batch must be at least 1");
    return settings;
  }

  std::vector<std::string> key_names(std::span<const cache_key> keys) const {
    std::vector<std::string> names;
    names.reserve(keys.size());
    for (const auto& key : keys) names.push_back(redis_key(key));
    return names;
  }

  std::int64_t single_integer(redis::command_kind kind, const cache_key& key) {
    std::lock_guard lock(mutex_);
    auto names = key_names(std::span<const cache_key>(&key, 1));
    auto results = client_.run(kind, names);
    auto& result = results.front();
    if (!result.ok || result.reply.kind != redis::resp_value::type::integer) {
      ++stats_.failures;
      return 0;
    }
    return result.reply.integer;
  }

  static void record_latency(latency_histogram& histogram, clock::time_point started,
                             std::size_t count) {
    if (count == 0) return;
    histogram.record((clock::now() - started) / static_cast<std::int64_t>(count));
  }

  redis_tier_options options_;
  mutable std::mutex mutex_;
  redis::client client_;
  tier_stats stats_;
};

static_assert(cache_tier<redis_tier>, "redis_tier must satisfy the cache_tier concept");
static_assert(put_reporting_tier<redis_tier>);
// Values come back from the server as they were sent, with no checksum of the
// tier's own: the cache stage verifies each hit's row CRC32C.
static_assert(!verifying_tier<redis_tier> && !in_process_tier<redis_tier>);

}  // namespace conveyor
