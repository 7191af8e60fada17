// The `cache_tier` contract (conveyor/cache/tier.hpp) as two doctest test
// templates, run against every tier. Each tier's test file defines fixtures
// and invokes
//
//   TEST_CASE_TEMPLATE_INVOKE(tier_contract, disk_contract_fixture);
//   TEST_CASE_TEMPLATE_INVOKE(failing_tier_contract, unavailable_disk_fixture);
//
// What a tier promises beyond the contract (eviction order, byte accounting,
// persistence, crash recovery, sharing between processes, Redis cluster
// routing, tier stacking) is tested in that tier's own file.
//
// A fixture owns one tier and whatever the tier needs (a directory, a segment
// name, a server). It is default-constructible and provides
//
//   static bool available();    false skips the case (e.g. no redis-server)
//   auto& tier();               the tier: fresh, empty, working, and roomy
//                               enough (a few MiB) that nothing here is evicted
//   std::size_t refused_value_bytes() const;
//                               a value size the tier refuses (larger than the
//                               largest value it stores)
//
// A failing fixture provides `available()` and `tier()` only: a tier whose
// storage cannot be reached (no directory, no segment, no server).
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "conveyor/cache/tier.hpp"

namespace conveyor::test::contract {

/// Keys of the contract tests: one dataset and chain, any record.
inline cache_key key_of(std::uint64_t record) {
  return cache_key{0x5eed, 0xc0de, record};
}

/// The value `version` of `record`, `size` bytes long. Its bytes run through
/// all 256 values (NUL, CR and LF included), and from 16 bytes on it names its
/// record and version, so `is_whole_value_of` can check any hit.
inline byte_buffer value_for(std::uint64_t record, std::uint64_t version, std::size_t size) {
  byte_buffer value(size);
  for (std::size_t i = 0; i < size; ++i)
    value[i] = static_cast<std::byte>((i * 167 + record * 31 + version * 17) & 0xff);
  if (size >= 16) {
    std::memcpy(value.data(), &record, 8);
    std::memcpy(value.data() + 8, &version, 8);
  }
  return value;
}

/// Whether `value` is, byte for byte, some version of `record`'s value.
inline bool is_whole_value_of(std::uint64_t record, const byte_buffer& value) {
  if (value.size() < 16) return false;
  std::uint64_t named_record = 0, version = 0;
  std::memcpy(&named_record, value.data(), 8);
  std::memcpy(&version, value.data() + 8, 8);
  return named_record == record && value == value_for(record, version, value.size());
}

inline std::span<const std::byte> bytes(const byte_buffer& buffer) {
  return {buffer.data(), buffer.size()};
}

/// What `out` holds before a lookup: a hit must replace it entirely (`get`
/// fills `out`; it does not append), and a miss must clear it.
inline byte_buffer stale_bytes() {
  return byte_buffer(37, std::byte{0xee});
}

}  // namespace conveyor::test::contract

#define CONVEYOR_SKIP_UNLESS_AVAILABLE(Fixture)                                 \
  if (!Fixture::available()) {                                                  \
    MESSAGE("this tier's backing service is not installed; skipping the case"); \
    return;                                                                     \
  }

// Everything a working tier promises. Each SUBCASE starts from a fresh fixture.
TEST_CASE_TEMPLATE_DEFINE("cache_tier contract", Fixture, tier_contract) {
  using namespace conveyor::test::contract;
  using conveyor::byte_buffer;
  using conveyor::cache_key;
  CONVEYOR_SKIP_UNLESS_AVAILABLE(Fixture);
  Fixture fixture;
  auto& tier = fixture.tier();
  static_assert(conveyor::cache_tier<std::remove_reference_t<decltype(tier)>>);
  byte_buffer out = stale_bytes();

  SUBCASE("a key never stored misses, clearing `out`, is not contained and is not erased") {
    CHECK_FALSE(tier.get(key_of(1), out));
    CHECK(out.empty());
    CHECK_FALSE(tier.contains(key_of(1)));
    CHECK_FALSE(tier.erase(key_of(1)));
  }

  SUBCASE("a stored value comes back byte for byte, replacing what `out` held") {
    auto value = value_for(1, 0, 1000);
    CHECK(tier.put(key_of(1), bytes(value)));
    CHECK(tier.contains(key_of(1)));
    REQUIRE(tier.get(key_of(1), out));
    CHECK(out == value);
    REQUIRE(tier.get(key_of(1), out));  // a hit does not consume the value
    CHECK(out == value);
  }

  SUBCASE("keys that differ in one field only are different keys") {
    cache_key key{1, 2, 3};
    CHECK(tier.put(key, bytes(value_for(3, 0, 100))));
    for (const cache_key& other :
         {cache_key{9, 2, 3}, cache_key{1, 9, 3}, cache_key{1, 2, 9}, cache_key{3, 2, 1}}) {
      CHECK_FALSE(tier.get(other, out));
      CHECK_FALSE(tier.contains(other));
    }
    CHECK(tier.get(key, out));
  }

  SUBCASE("a put replaces the value: by a larger, a smaller and an empty one") {
    for (std::size_t size : {100, 5000, 16, 0, 300}) {
      auto value = value_for(1, size, size);
      CHECK(tier.put(key_of(1), bytes(value)));
      out = stale_bytes();
      REQUIRE(tier.get(key_of(1), out));
      CHECK(out == value);
    }
  }

  SUBCASE("an empty value is a value: stored, contained, returned empty") {
    CHECK(tier.put(key_of(2), {}));
    CHECK(tier.contains(key_of(2)));
    REQUIRE(tier.get(key_of(2), out));
    CHECK(out.empty());
    CHECK(tier.stats().hits == 1);
  }

  SUBCASE("a large value (1 MiB and some) round trips") {
    auto large = value_for(3, 7, (std::size_t{1} << 20) + 13);
    CHECK(tier.put(key_of(3), bytes(large)));
    REQUIRE(tier.get(key_of(3), out));
    CHECK(out == large);
    CHECK(tier.stats().bytes_read == large.size());
  }

  SUBCASE("erase answers true once, and the key then misses; other keys stay") {
    CHECK(tier.put(key_of(1), bytes(value_for(1, 0, 100))));
    CHECK(tier.put(key_of(2), bytes(value_for(2, 0, 100))));
    CHECK(tier.erase(key_of(1)));
    CHECK_FALSE(tier.erase(key_of(1)));
    CHECK_FALSE(tier.contains(key_of(1)));
    CHECK_FALSE(tier.get(key_of(1), out));
    CHECK(out.empty());  // the miss cleared the hit's bytes
    REQUIRE(tier.get(key_of(2), out));
    CHECK(out == value_for(2, 0, 100));
    CHECK(tier.put(key_of(1), bytes(value_for(1, 1, 50))));  // and can be stored again
    REQUIRE(tier.get(key_of(1), out));
    CHECK(out == value_for(1, 1, 50));
  }

  SUBCASE(
      "put_many stores every pair; get_many sets found[i], fills values[i] on hits and "
      "clears it on misses") {
    std::vector<cache_key> keys;
    std::vector<byte_buffer> stored;
    std::uint64_t stored_bytes = 0;
    for (std::uint64_t r = 10; r < 16; ++r) {
      keys.push_back(key_of(r));
      stored.push_back(value_for(r, 0, 20 + r * 50));
      stored_bytes += stored.back().size();
    }
    std::vector<std::span<const std::byte>> views(stored.begin(), stored.end());
    CHECK(tier.put_many(keys, views) == keys.size());
    CHECK(tier.stats().puts == keys.size());
    CHECK(tier.stats().bytes_written == stored_bytes);
    CHECK(tier.put(key_of(20), bytes(value_for(20, 0, 70))));

    std::vector<cache_key> asked{key_of(10), key_of(99), key_of(20), key_of(15), key_of(98)};
    std::vector<byte_buffer> values(asked.size(), stale_bytes());
    std::vector<std::uint8_t> found(asked.size(), 7);
    CHECK(tier.get_many(asked, values, found) == 3);
    CHECK(found == std::vector<std::uint8_t>{1, 0, 1, 1, 0});
    CHECK(values[0] == stored[0]);
    CHECK(values[1].empty());
    CHECK(values[2] == value_for(20, 0, 70));
    CHECK(values[3] == stored[5]);
    CHECK(values[4].empty());
    for (std::uint64_t r = 10; r < 16; ++r) {  // what put_many stored, get sees
      REQUIRE(tier.get(key_of(r), out));
      CHECK(out == stored[r - 10]);
    }
    CHECK(tier.get_many({}, {}, {}) == 0);
    CHECK(tier.put_many({}, {}) == 0);
    auto stats = tier.stats();
    CHECK(stats.puts == keys.size() + 1);
    CHECK(stats.rejected_puts == 0);
    CHECK(stats.bytes_written == stored_bytes + 70);
  }

  SUBCASE("a key given twice in one put_many or put_values keeps its last value") {
    // Sizes differ, so a value that lands in another block or segment than
    // the key's other value still cannot pass for it.
    auto first = value_for(40, 1, 3000), other = value_for(41, 1, 200), last = value_for(40, 2, 120);
    std::vector<cache_key> keys{key_of(40), key_of(41), key_of(40)};
    std::vector<std::span<const std::byte>> views{bytes(first), bytes(other), bytes(last)};
    tier.put_many(keys, views);
    REQUIRE(tier.get(key_of(40), out));
    CHECK(out == last);
    REQUIRE(tier.get(key_of(41), out));
    CHECK(out == other);
    std::vector<std::size_t> sizes{last.size(), other.size(), first.size()};
    conveyor::put_values(tier, std::span<const cache_key>(keys),
                         std::span<const std::size_t>(sizes),
                         [&](std::size_t i, std::span<std::byte> destination) {
                           const auto& value = i == 0 ? last : i == 1 ? other : first;
                           std::copy(value.begin(), value.end(), destination.begin());
                         });
    REQUIRE(tier.get(key_of(40), out));
    CHECK(out == first);
  }

  SUBCASE(
      "visit_values shows each stored value once, in place or from get_many; put_values stores "
      "what it writes") {
    std::vector<cache_key> keys;
    std::vector<byte_buffer> stored;
    std::vector<std::size_t> sizes;
    for (std::uint64_t r = 30; r < 37; ++r) {
      keys.push_back(key_of(r));
      stored.push_back(value_for(r, 3, 16 + r * 40));
      sizes.push_back(stored.back().size());
    }
    std::vector<std::uint8_t> written(keys.size(), 0);
    CHECK(conveyor::put_values(tier, std::span<const cache_key>(keys),
                               std::span<const std::size_t>(sizes),
                               [&](std::size_t i, std::span<std::byte> destination) {
                                 REQUIRE(destination.size() == stored[i].size());
                                 std::copy(stored[i].begin(), stored[i].end(), destination.begin());
                                 ++written[i];
                               }) == keys.size());
    CHECK(written == std::vector<std::uint8_t>(keys.size(), 1));
    for (std::size_t i = 0; i < keys.size(); ++i) {
      REQUIRE(tier.get(keys[i], out));
      CHECK(out == stored[i]);
    }
    // Asked in another order, with absent keys between: each present key once.
    std::vector<cache_key> asked{key_of(36), key_of(90), key_of(30),
                                 key_of(33), key_of(91), key_of(31)};
    std::vector<std::size_t> seen(asked.size(), 0);
    std::vector<byte_buffer> shown(asked.size());
    auto before = tier.stats();
    CHECK(conveyor::visit_values(tier, std::span<const cache_key>(asked),
                                 [&](std::size_t i, std::span<const std::byte> value) {
                                   REQUIRE(i < asked.size());
                                   ++seen[i];
                                   shown[i].assign(value.begin(), value.end());
                                 }) == 4);
    CHECK(seen == std::vector<std::size_t>{1, 0, 1, 1, 0, 1});
    CHECK(shown[0] == stored[6]);
    CHECK(shown[2] == stored[0]);
    CHECK(shown[3] == stored[3]);
    CHECK(shown[5] == stored[1]);
    auto after = tier.stats();
    CHECK(after.hits - before.hits == 4);
    CHECK(after.misses - before.misses == 2);
    CHECK(conveyor::visit_values(tier, std::span<const cache_key>(),
                                 [&](std::size_t, std::span<const std::byte>) {
                                   FAIL("visited a value of an empty batch");
                                 }) == 0);
  }

  SUBCASE("visit_values during puts and erases of the same keys sees only whole values") {
    constexpr std::uint64_t writers = 2, readers = 2, steps = 200, key_count = 16;
    std::atomic<std::uint64_t> wrong{0}, visited{0};
    std::vector<std::thread> workers;
    for (std::uint64_t t = 0; t < writers; ++t)
      workers.emplace_back([&, t] {
        for (std::uint64_t i = 0; i < steps; ++i) {
          std::uint64_t record = 5000 + (t * 7 + i) % key_count;
          if (i % 3 == 2)
            tier.erase(key_of(record));
          else
            (void)tier.put(key_of(record),
                           bytes(value_for(record, t * steps + i, 16 + (i * 53) % 900)));
        }
      });
    for (std::uint64_t t = 0; t < readers; ++t)
      workers.emplace_back([&] {
        std::vector<cache_key> asked;
        for (std::uint64_t k = 0; k < key_count; ++k) asked.push_back(key_of(5000 + k));
        for (std::uint64_t i = 0; i < steps / 4; ++i)
          conveyor::visit_values(tier, std::span<const cache_key>(asked),
                                 [&](std::size_t k, std::span<const std::byte> value) {
                                   visited.fetch_add(1);
                                   byte_buffer copy(value.begin(), value.end());
                                   if (k >= asked.size() || !is_whole_value_of(5000 + k, copy))
                                     wrong.fetch_add(1);
                                 });
      });
    for (auto& worker : workers) worker.join();
    CHECK(wrong.load() == 0);
    CHECK(tier.size_bytes() <= tier.capacity_bytes());
  }

  SUBCASE("a value too large for the tier is refused, counted, and not stored") {
    byte_buffer too_large(fixture.refused_value_bytes(), std::byte{1});
    CHECK_FALSE(tier.put(key_of(4), bytes(too_large)));
    CHECK_FALSE(tier.get(key_of(4), out));
    CHECK(tier.stats().rejected_puts == 1);
    CHECK(tier.stats().bytes_written == 0);
    auto small = value_for(5, 0, 64);
    std::vector<cache_key> keys{key_of(5), key_of(6)};
    std::vector<std::span<const std::byte>> views{bytes(small), bytes(too_large)};
    CHECK(tier.put_many(keys, views) == 1);
    CHECK(tier.contains(key_of(5)));
    CHECK_FALSE(tier.contains(key_of(6)));
    auto stats = tier.stats();
    CHECK(stats.rejected_puts == 2);
    CHECK(stats.puts == 1);
    CHECK(stats.bytes_written == small.size());  // the refused value's bytes are not counted
    CHECK(stats.failures == 0);
    if constexpr (conveyor::put_reporting_tier<std::remove_reference_t<decltype(tier)>>) {
      // The reporting overload says which: the refused value between two stored ones.
      auto other = value_for(7, 0, 200);
      std::vector<cache_key> three{key_of(7), key_of(8), key_of(5)};
      std::vector<std::span<const std::byte>> three_views{bytes(other), bytes(too_large),
                                                          bytes(small)};
      std::vector<std::uint8_t> stored(3, 7);
      CHECK(tier.put_many(three, three_views, stored) == 2);
      CHECK(stored == std::vector<std::uint8_t>{1, 0, 1});
      CHECK(tier.contains(key_of(7)));
      CHECK_FALSE(tier.contains(key_of(8)));
      stats = tier.stats();
      CHECK(stats.puts == 3);
      CHECK(stats.rejected_puts == 3);
      CHECK(stats.bytes_written == 2 * small.size() + other.size());
    }
  }

  SUBCASE("stats count lookups, stores and bytes; contains and erase are not lookups") {
    auto first = value_for(1, 0, 300);
    auto second = value_for(2, 0, 50);
    CHECK(tier.put(key_of(1), bytes(first)));
    CHECK(tier.put(key_of(2), bytes(second)));
    CHECK(tier.put(key_of(3), {}));
    CHECK(tier.get(key_of(1), out));        // hit: 300 bytes
    CHECK(tier.get(key_of(3), out));        // hit: 0 bytes
    CHECK_FALSE(tier.get(key_of(4), out));  // miss
    std::vector<cache_key> asked{key_of(2), key_of(5)};
    std::vector<byte_buffer> values(2);
    std::vector<std::uint8_t> found(2);
    CHECK(tier.get_many(asked, values, found) == 1);  // one hit (50 bytes), one miss
    CHECK(tier.contains(key_of(1)));
    CHECK_FALSE(tier.contains(key_of(6)));
    CHECK(tier.erase(key_of(3)));
    CHECK_FALSE(tier.erase(key_of(3)));

    // A tier that writes behind grows its size_bytes() when its writer gets
    // to the queue: let it finish, so the snapshot and the call below agree.
    if constexpr (conveyor::flushable_tier<std::remove_cvref_t<decltype(tier)>>) tier.flush();
    auto stats = tier.stats();
    CHECK(stats.hits == 3);
    CHECK(stats.misses == 2);
    CHECK(stats.hit_ratio() == doctest::Approx(0.6));
    CHECK(stats.puts == 3);
    CHECK(stats.rejected_puts == 0);
    CHECK(stats.bytes_read == 350);
    CHECK(stats.bytes_written == 350);
    CHECK(stats.failures == 0);
    CHECK(stats.get_latency.count() > 0);
    CHECK(stats.put_latency.count() > 0);
    CHECK(stats.size_bytes == tier.size_bytes());
    CHECK(stats.capacity_bytes == tier.capacity_bytes());
    CHECK(tier.size_bytes() <= tier.capacity_bytes());  // a tier that tracks no size says 0 and 0
    CHECK_FALSE(tier.name().empty());
  }

  SUBCASE("threads storing, reading and erasing at once see only whole, right values") {
    // Each thread stores and reads back keys of its own (always hits), and all
    // of them store, read and erase a few shared keys (any hit must be whole).
    constexpr std::uint64_t threads = 4, steps = 150, shared_keys = 8, shared_base = 1'000'000;
    std::atomic<std::uint64_t> wrong{0}, own_misses{0};
    std::vector<std::thread> workers;
    for (std::uint64_t t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        byte_buffer value;
        for (std::uint64_t i = 0; i < steps; ++i) {
          std::uint64_t own = t * 10'000 + i;
          std::uint64_t shared = shared_base + (t + i) % shared_keys;
          auto expected = value_for(own, i, 16 + (t * 131 + i * 37) % 700);
          if (!tier.put(key_of(own), bytes(expected))) wrong.fetch_add(1);
          if (!tier.get(key_of(own), value))
            own_misses.fetch_add(1);
          else if (value != expected)
            wrong.fetch_add(1);
          if (!tier.put(key_of(shared), bytes(value_for(shared, t * steps + i, 16 + i % 200))))
            wrong.fetch_add(1);
          std::uint64_t other_shared = shared_base + (t + i + 1) % shared_keys;
          if (tier.get(key_of(other_shared), value) && !is_whole_value_of(other_shared, value))
            wrong.fetch_add(1);
          if (i % 5 == 0) tier.erase(key_of(shared));
          (void)tier.contains(key_of(shared));
          (void)tier.stats();
        }
      });
    for (auto& worker : workers) worker.join();
    CHECK(wrong.load() == 0);
    CHECK(own_misses.load() == 0);
    auto stats = tier.stats();
    CHECK(stats.puts == 2 * threads * steps);  // every put stored
    CHECK(stats.hits + stats.misses == 2 * threads * steps);
    CHECK(stats.hits >= threads * steps);
    CHECK(stats.failures == 0);
    CHECK(tier.size_bytes() <= tier.capacity_bytes());
  }
}

// A tier that cannot reach its storage answers misses and refusals, counts
// them, and never throws.
TEST_CASE_TEMPLATE_DEFINE("cache_tier contract: a failing tier", Fixture, failing_tier_contract) {
  using namespace conveyor::test::contract;
  using conveyor::byte_buffer;
  using conveyor::cache_key;
  CONVEYOR_SKIP_UNLESS_AVAILABLE(Fixture);
  Fixture fixture;
  auto& tier = fixture.tier();
  byte_buffer out = stale_bytes();
  auto value = value_for(1, 0, 100);
  CHECK_NOTHROW(CHECK_FALSE(tier.put(key_of(1), bytes(value))));
  CHECK(tier.stats().bytes_written == 0);
  CHECK_NOTHROW(CHECK_FALSE(tier.get(key_of(1), out)));
  CHECK(out.empty());
  CHECK_NOTHROW(CHECK_FALSE(tier.contains(key_of(1))));
  CHECK_NOTHROW(CHECK_FALSE(tier.erase(key_of(1))));
  std::vector<cache_key> keys{key_of(1), key_of(2), key_of(3)};
  std::vector<std::span<const std::byte>> views(keys.size(), bytes(value));
  std::vector<byte_buffer> values(keys.size(), stale_bytes());
  std::vector<std::uint8_t> found(keys.size(), 7);
  CHECK_NOTHROW(CHECK(tier.put_many(keys, views) == 0));
  CHECK_NOTHROW(CHECK(tier.get_many(keys, values, found) == 0));
  CHECK(found == std::vector<std::uint8_t>{0, 0, 0});
  CHECK(values == std::vector<byte_buffer>(keys.size()));
  std::uint64_t refused = 4;
  if constexpr (conveyor::put_reporting_tier<std::remove_reference_t<decltype(tier)>>) {
    std::vector<std::uint8_t> stored(keys.size(), 7);
    CHECK_NOTHROW(CHECK(tier.put_many(keys, views, stored) == 0));
    CHECK(stored == std::vector<std::uint8_t>{0, 0, 0});
    refused += keys.size();
  }
  auto stats = tier.stats();
  CHECK(stats.hits == 0);
  CHECK(stats.misses == 4);
  CHECK(stats.puts == 0);
  CHECK(stats.rejected_puts == refused);
  CHECK(stats.bytes_written == 0);
  CHECK(stats.failures > 0);
}
