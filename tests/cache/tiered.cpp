// Tests of conveyor/cache/tiered.hpp: the cache_tier contract for a memory
// tier over a disk tier, then what stacking adds: ownership, write-through and
// write-back, promotion, refusals, listeners, batching, concurrent write-back.
#include "conveyor/cache/tiered.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "conveyor/cache/disk_tier.hpp"
#include "conveyor/cache/memory_tier.hpp"
#include "support/temp_dir.hpp"
#include "tier_contract.hpp"

namespace cy = conveyor;

using top_tier = cy::memory_tier<>;
using bottom_tier = cy::memory_tier<cy::eviction::lru>;

static_assert(cy::cache_tier<cy::tiered<top_tier, bottom_tier>>);
static_assert(cy::cache_tier<cy::tiered<top_tier&, bottom_tier&>>);
static_assert(cy::cache_tier<cy::tiered<top_tier>>);
static_assert(cy::cache_tier<cy::tiered<top_tier, cy::disk_tier&>>);
static_assert(!cy::eviction_reporting_tier<cy::tiered<top_tier, bottom_tier>>);
static_assert(cy::put_reporting_tier<cy::tiered<top_tier, cy::disk_tier&>>);

namespace {

cy::cache_key key_of(std::uint64_t record) {
  return cy::cache_key{1, 2, record};
}

cy::byte_buffer value_for(std::uint64_t record, std::size_t size) {
  cy::byte_buffer value(size);
  for (std::size_t i = 0; i < size; ++i)
    value[i] = static_cast<std::byte>((record * 37 + i) & 0xff);
  std::memcpy(value.data(), &record, std::min<std::size_t>(size, 8));
  return value;
}

std::span<const std::byte> bytes(const cy::byte_buffer& buffer) {
  return {buffer.data(), buffer.size()};
}

constexpr std::size_t value_size = 1000;

// A single-shard tier holding exactly `entries` values of `value_size` bytes.
template <class Tier>
Tier tier_of(std::size_t entries) {
  cy::memory_tier_options options;
  options.capacity_bytes = entries * Tier::charged_bytes(value_size);
  options.shard_count = 1;
  return Tier(std::move(options));
}

// A memory tier that refuses odd records and, like a tier from elsewhere,
// has no `put_many` that says which values it stored.
class odd_refusing_tier {
 public:
  explicit odd_refusing_tier(std::size_t entries) : inner_(tier_of<bottom_tier>(entries)) {}
  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_.get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return key.record % 2 == 0 && inner_.put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_.erase(key); }
  bool contains(const cy::cache_key& key) const { return inner_.contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    return cy::get_each(*this, keys, values, found);
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return cy::put_each(*this, keys, values);
  }
  std::uint64_t size_bytes() const { return inner_.size_bytes(); }
  std::uint64_t capacity_bytes() const { return inner_.capacity_bytes(); }
  cy::tier_stats stats() const { return inner_.stats(); }
  std::string_view name() const { return "odd-refusing"; }
  bottom_tier& inner() { return inner_; }

 private:
  bottom_tier inner_;
};
static_assert(cy::cache_tier<odd_refusing_tier>);
static_assert(!cy::put_reporting_tier<odd_refusing_tier>);

template <class Stack>
void put_records(Stack& stack, std::uint64_t first, std::uint64_t last) {
  for (auto r = first; r < last; ++r)
    REQUIRE(stack.put(key_of(r), bytes(value_for(r, value_size))));
}

// 16 MiB of memory in 4 shards over 64 MiB of disk in 4 MiB segments.
template <cy::write_policy Policy>
struct tiered_contract_fixture {
  static constexpr std::uint64_t memory_capacity = 16 << 20;
  static constexpr std::size_t memory_shards = 4;
  static bool available() { return true; }
  cy::tiered<top_tier, cy::disk_tier&>& tier() { return stack; }
  // Too large for a memory shard and for a disk segment.
  [[nodiscard]] std::size_t refused_value_bytes() const {
    std::uint64_t memory_largest = memory_capacity / memory_shards - top_tier::charged_bytes(0);
    return std::max(memory_largest, disk.max_value_bytes()) + 1;
  }
  static cy::memory_tier_options memory_options(std::uint64_t capacity) {
    cy::memory_tier_options options;
    options.capacity_bytes = capacity;
    options.shard_count = memory_shards;
    return options;
  }
  cy::test::temp_dir dir{"tiered"};
  cy::disk_tier disk{dir.file("cache"), {.capacity_bytes = 64 << 20, .segment_bytes = 4 << 20}};
  cy::tiered<top_tier, cy::disk_tier&> stack{Policy, top_tier(memory_options(memory_capacity)),
                                             disk};
};

// A memory tier of no capacity over a disk tier whose directory cannot be created.
struct unavailable_tiered_fixture {
  static bool available() { return true; }
  cy::tiered<top_tier, cy::disk_tier&>& tier() { return stack; }
  cy::test::temp_dir dir{"tiered"};
  cy::disk_tier disk{dir.file("plain-file", "x") / "cache"};
  cy::tiered<top_tier, cy::disk_tier&> stack{
      top_tier(tiered_contract_fixture<cy::write_policy::write_through>::memory_options(0)), disk};
};

}  // namespace

TYPE_TO_STRING_AS("tiered<memory_tier, disk_tier&> write-through",
                  tiered_contract_fixture<cy::write_policy::write_through>);
TYPE_TO_STRING_AS("tiered<memory_tier, disk_tier&> write-back",
                  tiered_contract_fixture<cy::write_policy::write_back>);
TYPE_TO_STRING_AS("tiered<empty memory_tier, unavailable disk_tier&>", unavailable_tiered_fixture);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, tiered_contract_fixture<cy::write_policy::write_through>,
                          tiered_contract_fixture<cy::write_policy::write_back>);
TEST_CASE_TEMPLATE_INVOKE(failing_tier_contract, unavailable_tiered_fixture);

TEST_CASE("tiered deduces ownership: rvalues by value, lvalues by reference") {
  auto top = tier_of<top_tier>(4);
  cy::tiered by_reference(top, tier_of<bottom_tier>(8));
  static_assert(std::is_same_v<decltype(by_reference), cy::tiered<top_tier&, bottom_tier>>);
  cy::tiered by_value(cy::write_policy::write_back, tier_of<top_tier>(4), tier_of<bottom_tier>(8));
  static_assert(std::is_same_v<decltype(by_value), cy::tiered<top_tier, bottom_tier>>);
  CHECK(&by_reference.tier<0>() == &top);
  CHECK(by_reference.put(key_of(1), bytes(value_for(1, 10))));
  CHECK(top.contains(key_of(1)));
  CHECK(by_value.name() == "tiered(memory/s3fifo > memory/lru)");
  CHECK(by_value.capacity_bytes() == 12 * top_tier::charged_bytes(value_size));
}

TEST_CASE("tiered write-through: puts reach every tier; a lower hit is promoted") {
  cy::tiered stack(tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  CHECK(stack.policy() == cy::write_policy::write_through);
  put_records(stack, 0, 10);
  for (std::uint64_t r = 0; r < 10; ++r) CHECK(stack.tier<1>().contains(key_of(r)));
  CHECK(stack.tier<0>().entry_count() == 4);
  CHECK(stack.size_bytes() == 14 * top_tier::charged_bytes(value_size));

  std::uint64_t evicted_from_top = 0;
  while (stack.tier<0>().contains(key_of(evicted_from_top))) ++evicted_from_top;
  cy::byte_buffer out;
  CHECK(stack.get(key_of(evicted_from_top), out));
  CHECK(out == value_for(evicted_from_top, value_size));
  CHECK(stack.tier<0>().contains(key_of(evicted_from_top)));  // promoted
  CHECK_FALSE(stack.get(key_of(99), out));

  auto stats = stack.stats();
  CHECK(stats.hits == 1);
  CHECK(stats.misses == 1);
  CHECK(stats.puts == 10);
  CHECK(stats.bytes_read == value_size);
  CHECK(stats.evictions == stack.tier<0>().stats().evictions);
  CHECK(stats.get_latency.count() == 2);
}

TEST_CASE("tiered write-back: only the top is written; its evictions move down intact") {
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  put_records(stack, 0, 4);
  CHECK(stack.tier<1>().entry_count() == 0);
  put_records(stack, 4, 12);
  CHECK(stack.tier<0>().entry_count() == 4);
  CHECK(stack.tier<1>().entry_count() == 8);
  CHECK(stack.tier<1>().stats().puts == 8);
  cy::byte_buffer out;
  for (std::uint64_t r = 0; r < 12; ++r) {
    CHECK(stack.tier<0>().contains(key_of(r)) != stack.tier<1>().contains(key_of(r)));
    CHECK(stack.get(key_of(r), out));
    CHECK(out == value_for(r, value_size));
  }
  CHECK(stack.stats().hits == 12);
}

TEST_CASE("tiered write-back: a value too large for the top goes straight down") {
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(1), tier_of<bottom_tier>(16));
  auto large = value_for(5, 3 * value_size);
  CHECK(stack.put(key_of(5), bytes(large)));
  CHECK_FALSE(stack.tier<0>().contains(key_of(5)));
  CHECK(stack.tier<1>().contains(key_of(5)));
  cy::byte_buffer out;
  CHECK(stack.get(key_of(5), out));
  CHECK(out == large);
  CHECK(stack.tier<0>().stats().rejected_puts == 2);  // the put, then the promotion
}

TEST_CASE("tiered never serves an older value after a tier refused a newer one") {
  cy::tiered stack(tier_of<top_tier>(4), tier_of<bottom_tier>(2));
  auto old_value = value_for(9, value_size);
  auto new_value = value_for(10, 3 * value_size);  // fits the top, not the bottom
  CHECK(stack.put(key_of(9), bytes(old_value)));
  CHECK(stack.put(key_of(9), bytes(new_value)));
  CHECK_FALSE(stack.tier<1>().contains(key_of(9)));
  stack.tier<0>().erase(key_of(9));  // as if the top had evicted it
  cy::byte_buffer out;
  CHECK_FALSE(stack.get(key_of(9), out));
}

TEST_CASE("tiered write-back chains through three tiers and survives a move") {
  cy::tiered first(cy::write_policy::write_back, tier_of<top_tier>(2), tier_of<top_tier>(3),
                   tier_of<bottom_tier>(100));
  auto stack = std::move(first);
  put_records(stack, 0, 20);
  CHECK(stack.tier<0>().entry_count() == 2);
  CHECK(stack.tier<1>().entry_count() == 3);
  CHECK(stack.tier<2>().entry_count() == 15);
  cy::byte_buffer out;
  for (std::uint64_t r = 0; r < 20; ++r) {
    CHECK(stack.get(key_of(r), out));
    CHECK(out == value_for(r, value_size));
  }
}

TEST_CASE("tiered removes its listener from a referenced tier when destroyed") {
  auto top = tier_of<top_tier>(2);
  auto bottom = tier_of<bottom_tier>(10);
  {
    cy::tiered stack(cy::write_policy::write_back, top, bottom);
    put_records(stack, 0, 3);
    CHECK(bottom.entry_count() == 1);
  }
  put_records(top, 10, 15);  // evicts; must not call into the destroyed stack
  CHECK(bottom.entry_count() == 1);
}

TEST_CASE("tiered get_many asks each tier once for the keys still missing and promotes hits") {
  cy::tiered stack(tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  std::vector<cy::cache_key> keys;
  for (std::uint64_t r = 0; r < 6; ++r) keys.push_back(key_of(r));
  put_records(stack, 0, 4);
  for (std::uint64_t r = 0; r < 2; ++r) stack.tier<0>().erase(key_of(r));  // 0, 1 only below
  auto lower_lookups_before = stack.tier<1>().stats().hits + stack.tier<1>().stats().misses;

  std::vector<cy::byte_buffer> values(keys.size());
  std::vector<std::uint8_t> found(keys.size(), 7);
  CHECK(stack.get_many(keys, values, found) == 4);
  CHECK(found == std::vector<std::uint8_t>{1, 1, 1, 1, 0, 0});
  for (std::uint64_t r = 0; r < 4; ++r) CHECK(values[r] == value_for(r, value_size));
  auto lower = stack.tier<1>().stats();
  CHECK(lower.hits + lower.misses - lower_lookups_before == 4);  // 0, 1, 4, 5
  CHECK(stack.tier<0>().contains(key_of(0)));
  CHECK(stack.tier<0>().contains(key_of(1)));
  CHECK(stack.stats().hits == 4);
  CHECK(stack.stats().misses == 2);
}

static_assert(cy::visiting_tier<cy::tiered<top_tier, bottom_tier>>);
static_assert(cy::visiting_tier<cy::tiered<top_tier, cy::disk_tier&>>);
static_assert(!cy::visiting_tier<cy::tiered<odd_refusing_tier, top_tier>>);  // top cannot visit
static_assert(!cy::in_process_tier<cy::tiered<top_tier, cy::disk_tier&>>);

TEST_CASE("tiered visit_many shows the top's hits in place, fetches the rest below once, promotes") {
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
    cy::tiered stack(policy, tier_of<top_tier>(4), tier_of<bottom_tier>(16));
    std::vector<cy::cache_key> keys;
    for (std::uint64_t r = 0; r < 6; ++r) keys.push_back(key_of(r));
    std::vector<cy::byte_buffer> stored;
    for (std::uint64_t r = 0; r < 4; ++r) stored.push_back(value_for(r, value_size));
    std::vector<std::span<const std::byte>> views(stored.begin(), stored.end());
    // 0, 1 only below; 2, 3 in both (write-back: put below directly).
    for (std::uint64_t r = 0; r < 4; ++r) CHECK(stack.tier<1>().put(keys[r], views[r]));
    for (std::uint64_t r = 2; r < 4; ++r) CHECK(stack.tier<0>().put(keys[r], views[r]));
    auto top_before = stack.tier<0>().stats();
    auto lower_before = stack.tier<1>().stats();

    std::vector<int> visits(keys.size(), 0);
    std::vector<cy::byte_buffer> seen(keys.size());
    std::size_t hits = stack.visit_many(std::span<const cy::cache_key>(keys),
                                        [&](std::size_t i, std::span<const std::byte> value) {
                                          ++visits[i];
                                          seen[i].assign(value.begin(), value.end());
                                        });
    CHECK(hits == 4);
    CHECK(visits == std::vector<int>{1, 1, 1, 1, 0, 0});
    for (std::uint64_t r = 0; r < 4; ++r) CHECK(seen[r] == value_for(r, value_size));
    auto top = stack.tier<0>().stats();
    CHECK(top.hits - top_before.hits == 2);      // 2, 3 from the top
    CHECK(top.misses - top_before.misses == 4);  // asked once for all six
    auto lower = stack.tier<1>().stats();
    CHECK((lower.hits + lower.misses) - (lower_before.hits + lower_before.misses) == 4);  // 0, 1, 4, 5
    CHECK(lower.hits - lower_before.hits == 2);  // 0, 1
    CHECK(stack.tier<0>().contains(keys[0]));    // promoted
    CHECK(stack.tier<0>().contains(keys[1]));
    CHECK(stack.stats().hits == 4);
    CHECK(stack.stats().misses == 2);
    CHECK(stack.stats().bytes_read == 4 * value_size);
    // An empty batch visits nothing.
    CHECK(stack.visit_many(std::span<const cy::cache_key>(),
                           [](std::size_t, std::span<const std::byte>) { FAIL("visited"); }) == 0);
  }
}

TEST_CASE("tiered write-back: values promoted through visit_many are not written down again") {
  cy::test::temp_dir dir("tiered");
  cy::disk_tier disk(dir.path() / "cache", cy::disk_tier_options{.write_behind_bytes = 0});
  std::vector<cy::cache_key> keys;
  std::vector<cy::byte_buffer> stored;
  for (std::uint64_t r = 0; r < 12; ++r) {
    keys.push_back(key_of(r));
    stored.push_back(value_for(r, value_size));
    CHECK(disk.put(keys.back(), stored.back()));
  }
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(4), disk);
  auto written_before = disk.stats().puts;
  std::size_t visited = 0;
  // Read everything twice through a top that holds only 4: promotions evict
  // promoted values, which must not go back to the disk.
  for (int pass = 0; pass < 2; ++pass)
    CHECK(stack.visit_many(std::span<const cy::cache_key>(keys),
                           [&](std::size_t i, std::span<const std::byte> value) {
                             ++visited;
                             CHECK(std::equal(value.begin(), value.end(), stored[i].begin(),
                                              stored[i].end()));
                           }) == 12);
  CHECK(visited == 24);
  CHECK(disk.stats().puts == written_before);
}

TEST_CASE("tiered put_many follows the write policy") {
  std::vector<cy::cache_key> keys;
  std::vector<cy::byte_buffer> stored;
  for (std::uint64_t r = 0; r < 8; ++r) {
    keys.push_back(key_of(r));
    stored.push_back(value_for(r, value_size));
  }
  std::vector<std::span<const std::byte>> views(stored.begin(), stored.end());
  cy::tiered through(tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  CHECK(through.put_many(keys, views) == 8);
  CHECK(through.tier<1>().entry_count() == 8);
  cy::tiered back(cy::write_policy::write_back, tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  CHECK(back.put_many(keys, views) == 8);
  CHECK(back.tier<0>().entry_count() == 4);
  CHECK(back.tier<1>().entry_count() == 4);  // only the evicted ones
}

TEST_CASE("tiered put_many counts, per value, what some tier stored, and erases refusals") {
  // Records 1 and 2 are too large for the top; the bottom refuses 1 and 3 and,
  // having no reporting put_many, is given one put per value.
  cy::tiered stack(tier_of<top_tier>(4), odd_refusing_tier(16));
  std::vector<cy::byte_buffer> stored{value_for(1, 5 * value_size), value_for(2, 5 * value_size),
                                      value_for(3, value_size), value_for(4, value_size)};
  std::vector<cy::cache_key> keys{key_of(1), key_of(2), key_of(3), key_of(4)};
  std::vector<std::span<const std::byte>> views(stored.begin(), stored.end());
  auto older = value_for(3, 10);
  REQUIRE(stack.tier<1>().inner().put(key_of(3), bytes(older)));  // the bottom's older value of 3

  std::vector<std::uint8_t> which(keys.size(), 7);
  CHECK(stack.put_many(keys, views, which) == 3);
  CHECK(which == std::vector<std::uint8_t>{0, 1, 1, 1});
  CHECK_FALSE(stack.tier<1>().contains(key_of(3)));  // refused below, so erased there
  CHECK(stack.tier<0>().contains(key_of(3)));
  auto stats = stack.stats();
  CHECK(stats.puts == 3);
  CHECK(stats.rejected_puts == 1);
  CHECK(stats.bytes_written == 5 * value_size + 2 * value_size);  // records 2, 3 and 4
  CHECK(stack.put_many(keys, views) == 3);  // the plain form counts the same way
  CHECK(stack.stats().bytes_written == 2 * (7 * value_size));
  cy::byte_buffer out;
  stack.tier<0>().erase(key_of(3));
  CHECK_FALSE(stack.get(key_of(3), out));  // never the bottom's older value
}

TEST_CASE("tiered write-back put_many passes down only what the top refused") {
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(4), tier_of<bottom_tier>(16));
  std::vector<cy::byte_buffer> stored{value_for(1, value_size), value_for(2, 5 * value_size),
                                      value_for(3, value_size)};
  std::vector<cy::cache_key> keys{key_of(1), key_of(2), key_of(3)};
  std::vector<std::span<const std::byte>> views(stored.begin(), stored.end());
  CHECK(stack.put_many(keys, views) == 3);
  CHECK(stack.tier<0>().entry_count() == 2);
  CHECK(stack.tier<1>().entry_count() == 1);
  CHECK(stack.tier<1>().contains(key_of(2)));
  CHECK(stack.stats().bytes_written == 7 * value_size);
}

TEST_CASE("tiered put_many: a key given twice keeps its last value, as two puts would") {
  // The first value of key 5 is too large for the top, the second fits: put
  // together, the refused first one went down and then erased the second from
  // the top, so the older value was served.
  auto first = value_for(5, 5 * value_size);
  auto last = value_for(6, value_size);
  auto other = value_for(7, value_size);
  std::vector<cy::cache_key> keys{key_of(5), key_of(7), key_of(5)};
  std::vector<std::span<const std::byte>> views{bytes(first), bytes(other), bytes(last)};
  for (auto policy : {cy::write_policy::write_back, cy::write_policy::write_through}) {
    CAPTURE(static_cast<int>(policy));
    cy::tiered stack(policy, tier_of<top_tier>(4), tier_of<bottom_tier>(16));
    std::vector<std::uint8_t> which(keys.size(), 7);
    CHECK(stack.put_many(keys, views, which) == 2);
    CHECK(which == std::vector<std::uint8_t>{0, 1, 1});  // the first is superseded
    cy::byte_buffer out;
    REQUIRE(stack.get(key_of(5), out));
    CHECK(out == last);
    REQUIRE(stack.get(key_of(7), out));
    CHECK(out == other);
    auto stats = stack.stats();
    CHECK(stats.puts == 2);
    CHECK(stats.rejected_puts == 0);  // superseded is not refused
    CHECK(stats.bytes_written == 2 * value_size);
    stack.tier<0>().erase(key_of(5));  // as if the top had evicted it
    if (stack.get(key_of(5), out)) CHECK(out == last);  // never the first value
  }
}

TEST_CASE("tiered write-back under concurrent readers and writers serves only right values") {
  auto make = [](std::uint64_t bytes, std::size_t shards) {
    cy::memory_tier_options options;
    options.capacity_bytes = bytes;
    options.shard_count = shards;
    return options;
  };
  cy::tiered stack(cy::write_policy::write_back, top_tier(make(64 * 1024, 4)),
                   bottom_tier(make(1024 * 1024, 4)));
  constexpr std::uint64_t records = 600;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> wrong{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(t);
      for (int step = 0; step < 8000; ++step) {
        std::uint64_t record = random() % records;
        stack.put(key_of(record), bytes(value_for(record, 64 + record % 900)));
      }
    });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(50 + t);
      cy::byte_buffer out;
      std::vector<cy::cache_key> keys(8);
      std::vector<cy::byte_buffer> values(8);
      std::vector<std::uint8_t> found(8);
      while (!stop.load()) {
        std::uint64_t record = random() % records;
        if (stack.get(key_of(record), out)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (out != value_for(record, 64 + record % 900)) wrong.fetch_add(1);
        }
        for (auto& key : keys) key = key_of(random() % records);
        stack.get_many(keys, values, found);
        for (std::size_t i = 0; i < keys.size(); ++i)
          if (found[i] != 0 && values[i] != value_for(keys[i].record, 64 + keys[i].record % 900))
            wrong.fetch_add(1);
      }
    });
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  CHECK(wrong.load() == 0);
  CHECK(hits.load() > 0);
  CHECK(stack.tier<0>().size_bytes() <= stack.tier<0>().capacity_bytes());
  CHECK(stack.tier<1>().stats().puts > 0);
}

TEST_CASE("tiered write-back: reading values back from disk does not write them to disk again") {
  cy::test::temp_dir dir("tiered");
  cy::disk_tier disk(dir.file("cache"), {.capacity_bytes = 16 << 20, .segment_bytes = 1 << 20});
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(4), disk);
  put_records(stack, 0, 40);
  disk.flush();
  const auto disk_puts = disk.stats().puts;
  const auto disk_bytes = disk.size_bytes();
  CHECK(disk_puts == 36);  // all but the four the top still holds
  cy::byte_buffer out;
  std::vector<cy::cache_key> keys(5);
  std::vector<cy::byte_buffer> values(5);
  std::vector<std::uint8_t> found(5);
  for (int pass = 0; pass < 8; ++pass) {
    for (std::uint64_t r = 0; r < 40; ++r) {
      REQUIRE(stack.get(key_of(r), out));
      CHECK(out == value_for(r, value_size));
    }
    for (std::uint64_t r = 0; r < 40; r += 5) {
      for (std::uint64_t j = 0; j < 5; ++j) keys[j] = key_of((r + j * 7) % 40);
      REQUIRE(stack.get_many(keys, values, found) == 5);
      for (std::uint64_t j = 0; j < 5; ++j)
        CHECK(values[j] == value_for(keys[j].record, value_size));
    }
  }
  disk.flush();
  // Each value reached the disk once: the 36 written back by the puts, and the
  // 4 the puts left in the top, written back when the reads evicted them.
  // Before promoted values were recognised, every pass wrote all 40 again.
  CHECK(disk.stats().puts == disk_puts + 4);
  CHECK(disk.size_bytes() == disk_bytes + 4 * (disk_bytes - 16) / 36);
  CHECK(stack.tier<0>().stats().evictions > 8 * 40 / 2);  // the top did evict promoted values
}

TEST_CASE(
    "tiered write-back: a promoted value replaced by a newer put is written down when evicted") {
  cy::test::temp_dir dir("tiered");
  cy::disk_tier disk(dir.file("cache"), {.capacity_bytes = 16 << 20, .segment_bytes = 1 << 20});
  cy::tiered stack(cy::write_policy::write_back, tier_of<top_tier>(4), disk);
  put_records(stack, 0, 8);  // 0..3 went down to disk
  cy::byte_buffer out;
  REQUIRE(stack.get(key_of(0), out));  // promoted: clean
  auto newer = value_for(1000, value_size);
  REQUIRE(stack.put(key_of(0), bytes(newer)));  // replaces it in the top: no longer what disk holds
  put_records(stack, 100, 110);                 // evicts record 0 from the top
  REQUIRE_FALSE(stack.tier<0>().contains(key_of(0)));
  REQUIRE(disk.get(key_of(0), out));
  CHECK(out == newer);
  REQUIRE(stack.get(key_of(0), out));
  CHECK(out == newer);
  // An erase forgets the promotion too: the key is gone everywhere.
  REQUIRE(stack.get(key_of(1), out));
  CHECK(stack.erase(key_of(1)));
  CHECK_FALSE(stack.get(key_of(1), out));
}

namespace {
// A memory tier that fails on demand in the middle of a batch: `get_many`
// answers the first `good_prefix` keys and fails the rest (misses, counted),
// or throws after them; `put_many` stores only the first `good_prefix`.
class failing_midway_tier {
 public:
  explicit failing_midway_tier(std::size_t entries) : inner_(tier_of<bottom_tier>(entries)) {}
  std::size_t good_prefix = static_cast<std::size_t>(-1);
  bool throw_instead = false;
  std::atomic<std::uint64_t> failures{0};

  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_.get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return inner_.put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_.erase(key); }
  bool contains(const cy::cache_key& key) const { return inner_.contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    std::size_t hits = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i >= good_prefix) {
        if (throw_instead) throw std::runtime_error("tier failed mid-batch");
        values[i].clear();
        found[i] = 0;
        failures.fetch_add(1);
        continue;
      }
      found[i] = inner_.get(keys[i], values[i]) ? 1 : 0;
      hits += found[i];
    }
    return hits;
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      stored[i] = i < good_prefix && inner_.put(keys[i], values[i]) ? 1 : 0;
      total += stored[i];
    }
    return total;
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    std::vector<std::uint8_t> stored(keys.size());
    return put_many(keys, values, stored);
  }
  std::uint64_t size_bytes() const { return inner_.size_bytes(); }
  std::uint64_t capacity_bytes() const { return inner_.capacity_bytes(); }
  cy::tier_stats stats() const { return inner_.stats(); }
  std::string_view name() const { return "failing-midway"; }

 private:
  bottom_tier inner_;
};
static_assert(cy::put_reporting_tier<failing_midway_tier>);
}  // namespace

TEST_CASE(
    "tiered: a tier failing in the middle of a batch costs hits, never returns wrong values") {
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
    CAPTURE(static_cast<int>(policy));
    failing_midway_tier middle(64);
    cy::tiered stack(policy, tier_of<top_tier>(4), middle, tier_of<bottom_tier>(64));
    std::vector<cy::cache_key> keys;
    std::vector<cy::byte_buffer> originals;
    std::vector<std::span<const std::byte>> views;
    for (std::uint64_t r = 0; r < 16; ++r) {
      keys.push_back(key_of(r));
      originals.push_back(value_for(r, value_size));
    }
    for (const auto& value : originals) views.push_back(bytes(value));
    middle.good_prefix = 6;  // the middle tier stores only the first 6 of the batch
    std::vector<std::uint8_t> stored(keys.size());
    CHECK(stack.put_many(keys, views, stored) == keys.size());
    for (auto s : stored) CHECK(s == 1);
    // Lookups with the middle tier failing after 3 keys of each batch.
    middle.good_prefix = 3;
    std::vector<cy::byte_buffer> values(keys.size(), cy::byte_buffer(5, std::byte{0x77}));
    std::vector<std::uint8_t> found(keys.size());
    std::size_t hits = stack.get_many(keys, values, found);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (found[i] != 0)
        CHECK(values[i] == originals[i]);
      else
        CHECK(values[i].empty());
    }
    if (policy == cy::write_policy::write_through)
      CHECK(hits == keys.size());  // the bottom tier has all
    CHECK(hits >= 4);              // at least what the top kept
    // A tier that throws mid-batch: the exception reaches the caller (the cache
    // stage counts it and recomputes); the stack keeps working afterwards.
    middle.throw_instead = true;
    bool threw = false;
    try {
      stack.get_many(keys, values, found);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    CHECK(threw);  // 12 keys miss the top; the middle tier throws on the 4th of them
    middle.good_prefix = static_cast<std::size_t>(-1);
    middle.throw_instead = false;
    cy::byte_buffer out;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (stack.get(keys[i], out)) CHECK(out == originals[i]);
  }
}
