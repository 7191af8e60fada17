// Helpers of the cache stage tests: a counted source, a stage that builds a
// batch with dense and bytes columns of several dtypes, epoch snapshots to
// compare runs with and without the cache, a stage whose columns are mostly
// 0/1 (stored as bitmaps), and a tier decorator that records keys and can make
// the real tier under it throw.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/cache/cache_stage.hpp"
#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/conveyor.hpp"

namespace cache_test {

namespace cy = conveyor;

using source_batch = cy::record_batch<cy::dense<"v", float>>;
using row_batch =
    cy::record_batch<cy::dense<"x", float>, cy::bytes<"name">, cy::dense<"id", std::int16_t>>;

/// Calls of the source's fill (one per record read).
using call_counter = std::shared_ptr<std::atomic<std::uint64_t>>;

/// A generated source of `count` records that counts its reads; with
/// `bad_every` > 0, records with index % bad_every == 3 are bad (data_error).
inline auto counted_source(std::uint64_t count, call_counter calls, std::uint64_t bad_every = 0,
                           std::string name = "generate", float scale = 1.0f) {
  return cy::generate<cy::dense<"v", float>>(
      count, 2,
      [calls, bad_every, scale, name](std::uint64_t i, std::span<float> row) {
        calls->fetch_add(1, std::memory_order_relaxed);
        if (bad_every != 0 && i % bad_every == 3) throw cy::data_error("bad record", name, i);
        row[0] = static_cast<float>(i) * scale;
        row[1] = static_cast<float>(i % 97) + 0.25f;
      },
      name);
}

/// The "expand" map stage: three dense float columns' worth of work, a
/// variable-length name (empty for every fifth record) and an int16 id.
inline row_batch expand(source_batch&& in, const cy::stage_context& ctx) {
  row_batch out(ctx.pool, in.info(), in.indices());
  const auto& v = in.get<"v">();
  auto& x = out.get<"x">();
  x = cy::dense_column<float>(ctx.pool, in.rows(), 3);
  out.get<"name">() = cy::bytes_column(ctx.pool, in.rows());
  auto& id = out.get<"id">();
  id = cy::dense_column<std::int16_t>(ctx.pool, in.rows(), 1);
  for (std::size_t r = 0; r < in.rows(); ++r) {
    std::uint64_t index = in.indices()[r];
    x(r, 0) = v(r, 0) * 1.5f;
    x(r, 1) = v(r, 1);
    x(r, 2) = v(r, 0) - v(r, 1);
    std::string name;
    for (std::uint64_t k = 0; k < index % 5; ++k) name += "rec-" + std::to_string(index) + ";";
    out.get<"name">().append(name);
    id(r, 0) = static_cast<std::int16_t>(index * 7);
  }
  return out;
}

/// Everything a consumer can observe of one batch.
struct batch_snapshot {
  std::uint64_t epoch = 0, number = 0;
  std::vector<std::uint64_t> indices;
  std::size_t x_width = 0;
  std::vector<float> x;
  std::vector<std::string> names;
  std::vector<std::int16_t> ids;
  friend bool operator==(const batch_snapshot&, const batch_snapshot&) = default;
};

inline batch_snapshot snapshot_of(const row_batch& b) {
  batch_snapshot s;
  s.epoch = b.epoch();
  s.number = b.number();
  s.indices.assign(b.indices().begin(), b.indices().end());
  const auto& x = b.get<"x">();
  s.x_width = x.width();
  s.x.assign(x.values().begin(), x.values().end());
  for (std::size_t r = 0; r < b.rows(); ++r) s.names.emplace_back(b.get<"name">().text(r));
  const auto& id = b.get<"id">();
  s.ids.assign(id.values().begin(), id.values().end());
  return s;
}

template <class Pipe>
std::vector<batch_snapshot> run_epoch(Pipe& pipe, std::uint64_t epoch) {
  std::vector<batch_snapshot> out;
  for (auto& b : pipe.epoch(epoch)) out.push_back(snapshot_of(b));
  return out;
}

/// Columns that are 0/1 in most records (the cache stores them as bitmaps):
/// x float (1027 wide: not a multiple of 8 or 64), u uint8 (100), h float16
/// (9), y double (3, never binary), and a name. Every 7th record's x holds
/// one value that is not exactly 0 or 1 (-0.0, NaN, 2, a denormal in turn),
/// every 5th record's h a 1 + ulp: those columns of those records stay raw.
using binary_batch =
    cy::record_batch<cy::dense<"x", float>, cy::dense<"u", std::uint8_t>,
                     cy::dense<"h", cy::float16>, cy::dense<"y", double>, cy::bytes<"name">>;
inline constexpr std::size_t binary_x_width = 1027;

inline binary_batch expand_binary(source_batch&& in, const cy::stage_context& ctx) {
  binary_batch out(ctx.pool, in.info(), in.indices());
  const std::size_t rows = in.rows();
  auto& x = out.get<"x">();
  x = cy::dense_column<float>(ctx.pool, rows, binary_x_width);
  auto& u = out.get<"u">();
  u = cy::dense_column<std::uint8_t>(ctx.pool, rows, 100);
  auto& h = out.get<"h">();
  h = cy::dense_column<cy::float16>(ctx.pool, rows, 9);
  auto& y = out.get<"y">();
  y = cy::dense_column<double>(ctx.pool, rows, 3);
  out.get<"name">() = cy::bytes_column(ctx.pool, rows);
  const float odd[4] = {-0.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f,
                        std::numeric_limits<float>::denorm_min()};
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t index = in.indices()[r];
    for (std::size_t k = 0; k < binary_x_width; ++k)
      x(r, k) = (index * 31 + k * 17) % 11 < 3 ? 1.0f : 0.0f;
    if (index % 7 == 0) x(r, (index * 13) % binary_x_width) = odd[index / 7 % 4];
    for (std::size_t k = 0; k < 100; ++k) u(r, k) = static_cast<std::uint8_t>((index + k) % 3 == 0);
    for (std::size_t k = 0; k < 9; ++k)
      h(r, k) = cy::float16::from_bits((index + k) % 2 == 0 ? 0x3C00 : 0);
    if (index % 5 == 0) h(r, index % 9) = cy::float16::from_bits(0x3C01);
    for (std::size_t k = 0; k < 3; ++k) y(r, k) = static_cast<double>(index) * 0.5 + k;
    out.get<"name">().append(std::string(index % 4, static_cast<char>(index % 2)));
  }
  return out;
}

/// A binary_batch as bytes: equal snapshots, bit-identical batches (NaN included).
struct binary_snapshot {
  std::uint64_t epoch = 0, number = 0;
  std::vector<std::uint64_t> indices;
  std::vector<std::size_t> widths;
  std::vector<std::byte> bytes;
  std::vector<std::string> names;
  friend bool operator==(const binary_snapshot&, const binary_snapshot&) = default;
};

inline binary_snapshot snapshot_of(const binary_batch& b) {
  binary_snapshot s;
  s.epoch = b.epoch();
  s.number = b.number();
  s.indices.assign(b.indices().begin(), b.indices().end());
  auto add = [&](const auto& column) {
    s.widths.push_back(column.width());
    auto bytes = std::as_bytes(column.values());
    s.bytes.insert(s.bytes.end(), bytes.begin(), bytes.end());
  };
  add(b.get<"x">());
  add(b.get<"u">());
  add(b.get<"h">());
  add(b.get<"y">());
  for (std::size_t r = 0; r < b.rows(); ++r) s.names.emplace_back(b.get<"name">().text(r));
  return s;
}

template <class Pipe>
std::vector<binary_snapshot> run_binary_epoch(Pipe& pipe, std::uint64_t epoch) {
  std::vector<binary_snapshot> out;
  for (auto& b : pipe.epoch(epoch)) out.push_back(snapshot_of(b));
  return out;
}

/// A real tier underneath, seen through: records the keys stored, and can
/// throw from every `throw_every`-th batched call (0: never).
template <class Inner>
class instrumented_tier {
 public:
  explicit instrumented_tier(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}

  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_->get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return inner_->put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_->erase(key); }
  bool contains(const cy::cache_key& key) { return inner_->contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    maybe_throw();
    return inner_->get_many(keys, values, found);
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    maybe_throw();
    {
      std::lock_guard lock(mutex_);
      stored_keys_.insert(stored_keys_.end(), keys.begin(), keys.end());
    }
    return inner_->put_many(keys, values);
  }
  [[nodiscard]] std::uint64_t size_bytes() const { return inner_->size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return inner_->capacity_bytes(); }
  [[nodiscard]] cy::tier_stats stats() const { return inner_->stats(); }
  [[nodiscard]] std::string_view name() const { return "instrumented"; }

  std::vector<cy::cache_key> stored_keys() {
    std::lock_guard lock(mutex_);
    return stored_keys_;
  }
  void throw_every(std::uint64_t n) { throw_every_.store(n); }
  [[nodiscard]] std::uint64_t thrown() const { return thrown_.load(); }
  Inner& inner() { return *inner_; }

 private:
  void maybe_throw() {
    auto every = throw_every_.load();
    if (every != 0 && calls_.fetch_add(1) % every == 0) {
      thrown_.fetch_add(1);
      throw std::runtime_error("instrumented_tier: injected failure");
    }
  }
  std::shared_ptr<Inner> inner_;
  std::mutex mutex_;
  std::vector<cy::cache_key> stored_keys_;
  std::atomic<std::uint64_t> throw_every_{0}, calls_{0}, thrown_{0};
};

/// A memory tier seen through its in-place paths (visit_many, put_many_with),
/// failing halfway through every `fail_every`-th batched call (0: never): the
/// exception is thrown from inside the memory tier's visit or write, after
/// half of the batch's values were shown or written. Its values stay in
/// process, so the cache stage trusts them past their header.
class failing_in_place_tier {
 public:
  static constexpr bool values_stay_in_process = true;
  explicit failing_in_place_tier(std::uint64_t capacity_bytes) : inner_(capacity_bytes) {}

  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_.get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return inner_.put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_.erase(key); }
  bool contains(const cy::cache_key& key) { return inner_.contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    return inner_.get_many(keys, values, found);
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return inner_.put_many(keys, values);
  }
  template <class Visit>
  std::size_t visit_many(std::span<const cy::cache_key> keys, Visit&& visit) {
    const bool fail = should_fail();
    std::size_t shown = 0;
    return inner_.visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
      visit(i, value);
      if (fail && ++shown == keys.size() / 2) fail_now();
    });
  }
  template <class Write>
  std::size_t put_many_with(std::span<const cy::cache_key> keys, std::span<const std::size_t> sizes,
                            Write&& write, std::span<std::uint8_t> stored) {
    {
      std::lock_guard lock(mutex_);
      stored_keys_.insert(stored_keys_.end(), keys.begin(), keys.end());
    }
    const bool fail = should_fail();
    std::size_t written = 0;
    return inner_.put_many_with(
        keys, sizes,
        [&](std::size_t i, std::span<std::byte> destination) {
          write(i, destination);
          if (fail && ++written == keys.size() / 2) fail_now();
        },
        stored);
  }
  [[nodiscard]] std::uint64_t size_bytes() const { return inner_.size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return inner_.capacity_bytes(); }
  [[nodiscard]] cy::tier_stats stats() const { return inner_.stats(); }
  [[nodiscard]] std::string_view name() const { return "failing-in-place"; }

  void fail_every(std::uint64_t n) { fail_every_.store(n); }
  [[nodiscard]] std::uint64_t thrown() const { return thrown_.load(); }
  cy::memory_tier<>& inner() { return inner_; }
  /// The keys of every put_many_with call, stored or not.
  std::vector<cy::cache_key> stored_keys() {
    std::lock_guard lock(mutex_);
    return stored_keys_;
  }

 private:
  bool should_fail() {
    auto every = fail_every_.load();
    return every != 0 && calls_.fetch_add(1) % every == 0;
  }
  void fail_now() {
    thrown_.fetch_add(1);
    throw std::runtime_error("failing_in_place_tier: injected failure mid-batch");
  }
  cy::memory_tier<> inner_;
  std::mutex mutex_;
  std::vector<cy::cache_key> stored_keys_;
  std::atomic<std::uint64_t> fail_every_{0}, calls_{0}, thrown_{0};
};

}  // namespace cache_test
