// Tests of tiered<...>'s promotion guard (conveyor/cache/tiered.hpp,
// docs/cache-memory.md "Promotion never undoes a write"): a value read from a
// lower tier is copied into the upper ones only if no put or erase of its key
// began since the lookup started. A lower tier that holds a lookup open after
// reading the value lets an erase or a newer put run in the window; then the
// stack must not serve the older value. Both kinds of upper tier: a memory
// tier (conditional put under its shard lock) and one without a conditional
// put (the guard's promotion mutex). Then a stress run that checks every hit
// against the last write completed before the lookup began.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/cache/tiered.hpp"
#include "versioned_values.hpp"

namespace cy = conveyor;

namespace {

cy::cache_key key_of(std::uint64_t record) {
  return cy::cache_key{5, 6, record};
}

using conveyor::test::bytes;
using conveyor::test::value_for;

// Holds the first lookup (get or get_many) of one key after it has read the
// value, or the first put of one key before it stores it, until released.
class gate {
 public:
  void arm(const cy::cache_key& key) {
    std::lock_guard lock(mutex_);
    key_ = key;
    armed_ = true;
    released_ = false;
  }
  void pass(const cy::cache_key& key) {
    std::unique_lock lock(mutex_);
    if (!armed_ || !(key == key_)) return;
    armed_ = false;
    holding_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_; });
    holding_ = false;
  }
  bool wait_until_holding(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return holding_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  cy::cache_key key_;
  bool armed_ = false, holding_ = false, released_ = false;
};

// A memory tier behind gates, without `put_if` (so that as an upper tier it
// takes promotions through the guard's mutex) and without eviction reports.
class gated_tier {
 public:
  explicit gated_tier(std::uint64_t capacity) : inner_(capacity) {}
  gate lookups, puts, erases;

  bool get(const cy::cache_key& key, cy::byte_buffer& out) {
    bool hit = inner_.get(key, out);
    lookups.pass(key);
    return hit;
  }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    puts.pass(key);
    return inner_.put(key, value);
  }
  bool erase(const cy::cache_key& key) {
    erases.pass(key);
    return inner_.erase(key);
  }
  bool contains(const cy::cache_key& key) { return inner_.contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    std::size_t hits = inner_.get_many(keys, values, found);
    for (const auto& key : keys) lookups.pass(key);
    return hits;
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return cy::put_each(*this, keys, values);
  }
  [[nodiscard]] std::uint64_t size_bytes() const { return inner_.size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return inner_.capacity_bytes(); }
  [[nodiscard]] cy::tier_stats stats() const { return inner_.stats(); }
  [[nodiscard]] std::string_view name() const { return "gated"; }

 private:
  cy::memory_tier<cy::eviction::lru> inner_;
};
static_assert(cy::cache_tier<gated_tier>);
static_assert(!cy::conditional_put_tier<gated_tier>);
static_assert(!cy::eviction_reporting_tier<gated_tier>);
static_assert(cy::conditional_put_tier<cy::memory_tier<>>);

constexpr std::uint64_t record = 11;
constexpr auto limit = std::chrono::seconds(30);

// One lookup of key_of(record) through `stack` by get, get_many or
// visit_many: the value it returned, or nothing on a miss.
template <class Stack>
std::optional<cy::byte_buffer> look_up(Stack& stack, std::string_view how) {
  cy::byte_buffer seen;
  bool hit = false;
  std::vector<cy::cache_key> keys{key_of(record)};
  std::vector<cy::byte_buffer> values(1);
  std::vector<std::uint8_t> found(1);
  if (how == "get") {
    hit = stack.get(keys[0], seen);
  } else if (how == "get_many") {
    hit = stack.get_many(keys, values, found) == 1;
    seen = values[0];
  } else if constexpr (requires { stack.visit_many(keys, [](std::size_t, auto) {}); }) {
    hit = stack.visit_many(keys, [&](std::size_t, std::span<const std::byte> value) {
      seen.assign(value.begin(), value.end());
    }) == 1;
  } else {
    FAIL("this stack has no visit_many");
  }
  if (!hit) return std::nullopt;
  return seen;
}

// The old value sits in the lower tier only; a lookup reads it there and is
// held before it promotes; `write` runs meanwhile, then the lookup goes on.
template <class Stack, class Write>
void write_while_promoting(Stack& stack, gated_tier& below, std::string_view how, Write write) {
  REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
  below.lookups.arm(key_of(record));
  std::thread reader([&] { look_up(stack, how); });
  REQUIRE(below.lookups.wait_until_holding(limit));
  write();
  below.lookups.release();
  reader.join();
}

template <class Stack>
void check_erase_wins(Stack& stack, gated_tier& below, std::string_view how) {
  bool erased = false;
  write_while_promoting(stack, below, how, [&] { erased = stack.erase(key_of(record)); });
  CHECK(erased);
  cy::byte_buffer out;
  CHECK_FALSE(stack.template tier<0>().contains(key_of(record)));
  CHECK_FALSE(stack.get(key_of(record), out));
}

template <class Stack>
void check_newer_put_wins(Stack& stack, gated_tier& below, std::string_view how) {
  bool stored = false;
  write_while_promoting(stack, below, how,
                        [&] { stored = stack.put(key_of(record), bytes(value_for(record, 2))); });
  CHECK(stored);
  cy::byte_buffer out;
  CHECK(stack.get(key_of(record), out));
  CHECK(out == value_for(record, 2));
  CHECK(stack.template tier<0>().get(key_of(record), out));
  CHECK(out == value_for(record, 2));
}

cy::memory_tier<> top_memory() {
  return cy::memory_tier<>(1 << 20);
}

}  // namespace

TEST_CASE("tiered promotion from below does not undo an erase made while the value was read") {
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back})
    for (std::string_view how : {"get", "get_many", "visit_many"}) {
      CAPTURE(static_cast<int>(policy));
      CAPTURE(how);
      gated_tier below(1 << 20);
      cy::tiered<cy::memory_tier<>, gated_tier&> stack(policy, top_memory(), below);
      check_erase_wins(stack, below, how);
    }
}

TEST_CASE("tiered promotion from below does not overwrite a newer put made while it was read") {
  // In write-back the newer value is in the top tier only: overwriting it
  // there would lose it.
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back})
    for (std::string_view how : {"get", "get_many", "visit_many"}) {
      CAPTURE(static_cast<int>(policy));
      CAPTURE(how);
      gated_tier below(1 << 20);
      cy::tiered<cy::memory_tier<>, gated_tier&> stack(policy, top_memory(), below);
      check_newer_put_wins(stack, below, how);
    }
}

TEST_CASE("tiered promotion into an upper tier without put_if obeys the same rule") {
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back})
    for (std::string_view how : {"get", "get_many"}) {
      CAPTURE(static_cast<int>(policy));
      CAPTURE(how);
      {
        gated_tier top(1 << 20), below(1 << 20);
        cy::tiered<gated_tier&, gated_tier&> stack(policy, top, below);
        check_erase_wins(stack, below, how);
      }
      {
        gated_tier top(1 << 20), below(1 << 20);
        cy::tiered<gated_tier&, gated_tier&> stack(policy, top, below);
        check_newer_put_wins(stack, below, how);
      }
    }
}

TEST_CASE("tiered: a newer put waits for a promotion already landing in a tier without put_if") {
  // The promotion passed its check and is held inside the upper tier's put;
  // a writer starting now must land after it, not under it. The wait only
  // decides whether the writer got to run into the window, never the verdict.
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
    CAPTURE(static_cast<int>(policy));
    gated_tier top(1 << 20), below(1 << 20);
    cy::tiered<gated_tier&, gated_tier&> stack(policy, top, below);
    REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
    top.puts.arm(key_of(record));
    std::thread reader([&] { look_up(stack, "get"); });
    REQUIRE(top.puts.wait_until_holding(limit));
    std::atomic<bool> written{false};
    std::thread writer([&] {
      stack.put(key_of(record), bytes(value_for(record, 2)));
      written = true;
    });
    for (int i = 0; i < 30 && !written.load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK_FALSE(written.load());  // it waits for the promotion to land
    top.puts.release();
    reader.join();
    writer.join();
    cy::byte_buffer out;
    CHECK(stack.get(key_of(record), out));
    CHECK(out == value_for(record, 2));
  }
}

TEST_CASE("tiered write-back: a value put again after a promotion is written down on eviction") {
  // The value promoted (v1) and the one put later have the same bytes, but a
  // put in between (v2, too large for the top) went to the tier below: v1's
  // eviction from the top must reach the tier below, although its digest
  // matches the promoted one's.
  constexpr std::uint64_t pusher = 7;
  cy::memory_tier_options options;
  options.capacity_bytes = cy::memory_tier<>::charged_bytes(value_for(record, 1).size());
  options.shard_count = 1;
  REQUIRE(value_for(pusher, 1).size() <= value_for(record, 1).size());
  gated_tier below(1 << 20);
  cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back,
                                                   cy::memory_tier<>(std::move(options)), below);
  REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
  cy::byte_buffer out;
  REQUIRE(stack.get(key_of(record), out));  // promoted: marked as already below
  REQUIRE(stack.template tier<0>().contains(key_of(record)));
  cy::byte_buffer too_large(4 * out.size(), std::byte{0x5a});
  REQUIRE(stack.put(key_of(record), bytes(too_large)));  // past the top, into the tier below
  REQUIRE(stack.put(key_of(record), bytes(value_for(record, 1))));  // top only
  REQUIRE(stack.put(key_of(pusher), bytes(value_for(pusher, 1))));  // evicts it from the top
  REQUIRE_FALSE(stack.template tier<0>().contains(key_of(record)));
  CHECK(stack.get(key_of(record), out));
  CHECK(out == value_for(record, 1));
}

TEST_CASE("tiered write-back: a lookup during an erase never finds the older value below") {
  // In write-back the tier below may hold an older value than the top. An
  // erase that removed the top's value first would, until it reached the
  // tier below, let a lookup find that older value, which was current at no
  // time during the erase. The erase is held at its first erase in the tier
  // below; a lookup meanwhile must see the top's value or nothing.
  for (std::string_view how : {"get", "get_many", "visit_many"}) {
    CAPTURE(how);
    gated_tier below(1 << 20);
    cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back, top_memory(),
                                                     below);
    REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
    REQUIRE(stack.put(key_of(record), bytes(value_for(record, 2))));  // the top only
    below.erases.arm(key_of(record));
    std::thread eraser([&] { stack.erase(key_of(record)); });
    REQUIRE(below.erases.wait_until_holding(limit));
    const std::optional<cy::byte_buffer> seen = look_up(stack, how);
    below.erases.release();
    eraser.join();
    if (seen) CHECK(*seen == value_for(record, 2));
    CHECK_FALSE(stack.contains(key_of(record)));
  }
}

TEST_CASE("tiered write-back: a lookup during a put the top refuses never finds the older value") {
  // The tier below holds v1, the top the newer v2; v3 is too large for the
  // top. While v3 is on its way to the tier below (held there), a lookup must
  // see v2 (or v3), never v1.
  for (std::string_view how : {"get", "get_many", "visit_many"}) {
    CAPTURE(how);
    gated_tier below(1 << 20);
    cy::memory_tier_options options;
    options.capacity_bytes = 1 << 14;
    options.shard_count = 1;
    cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back,
                                                     cy::memory_tier<>(std::move(options)), below);
    REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
    REQUIRE(stack.put(key_of(record), bytes(value_for(record, 2))));  // the top only
    cy::byte_buffer too_large(1 << 15, std::byte{0x33});
    std::memcpy(too_large.data(), &record, 8);
    below.puts.arm(key_of(record));
    std::thread writer([&] { CHECK(stack.put(key_of(record), bytes(too_large))); });
    REQUIRE(below.puts.wait_until_holding(limit));
    const std::optional<cy::byte_buffer> seen = look_up(stack, how);
    below.puts.release();
    writer.join();
    if (seen) CHECK((*seen == value_for(record, 2) || *seen == too_large));
    cy::byte_buffer out;
    CHECK(stack.get(key_of(record), out));
    CHECK(out == too_large);
    CHECK_FALSE(stack.tier<0>().contains(key_of(record)));
  }
}

namespace {

// A memory tier as an upper tier with or without eviction reports and
// put_if (never put_many_if): `Reports` without `PutIf` is a reporting tier
// whose refusals cannot leave an older value in place; neither is a tier
// whose promotions take the guard's mutex; both takes the batch through
// one put_if per value.
template <bool Reports, bool PutIf>
class wrapped_top {
 public:
  explicit wrapped_top(cy::memory_tier_options options) : inner_(std::move(options)) {}
  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_.get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return inner_.put(key, value);
  }
  template <class Keep>
  bool put_if(const cy::cache_key& key, std::span<const std::byte> value,
              Keep&& keep) requires PutIf {
    return inner_.put_if(key, value, keep);
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
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    return inner_.put_many(keys, values, stored);
  }
  template <class Visit>
  std::size_t visit_many(std::span<const cy::cache_key> keys, Visit&& visit) {
    return inner_.visit_many(keys, visit);
  }
  void set_eviction_listener(cy::eviction_listener listener) requires Reports {
    inner_.set_eviction_listener(std::move(listener));
  }
  [[nodiscard]] std::uint64_t size_bytes() const { return inner_.size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return inner_.capacity_bytes(); }
  [[nodiscard]] cy::tier_stats stats() const { return inner_.stats(); }
  [[nodiscard]] std::string_view name() const { return "wrapped"; }

 private:
  cy::memory_tier<> inner_;
};
using plain_top = wrapped_top<false, false>;
using reporting_top = wrapped_top<true, false>;
using put_if_top = wrapped_top<true, true>;
static_assert(!cy::conditional_put_tier<plain_top>);
static_assert(!cy::eviction_reporting_tier<plain_top>);
static_assert(cy::visiting_tier<plain_top>);
static_assert(cy::eviction_reporting_tier<reporting_top>);
static_assert(!cy::conditional_put_tier<reporting_top>);
static_assert(cy::eviction_reporting_tier<put_if_top>);
static_assert(cy::conditional_put_tier<put_if_top>);
static_assert(!cy::conditional_put_many_tier<put_if_top>);

// A top tier of two shards holding about 6 of the 48 keys' values (the
// stress below): most lookups miss it and promote from the tier below.
cy::memory_tier_options small_top_options() {
  cy::memory_tier_options options;
  options.capacity_bytes = 6 * cy::memory_tier<>::charged_bytes(550);
  options.shard_count = 2;
  return options;
}

// A top of one shard of 16 KiB: value_for's values fit, 32 KiB does not.
cy::memory_tier_options refusing_top_options() {
  cy::memory_tier_options options;
  options.capacity_bytes = 1 << 14;
  options.shard_count = 1;
  return options;
}

// The tier below holds v1, the top the newer v2 (put through the stack);
// `write` writes v3, too large for the top, through the stack, and is held at
// the tier below while a lookup runs: the lookup must see v2 or v3, never v1.
// Afterwards the stack serves v3 and the top does not hold the key.
template <class Stack, class Write>
void check_refused_write(Stack& stack, gated_tier& below, Write write) {
  for (std::string_view how : {"get", "get_many", "visit_many"}) {
    CAPTURE(how);
    REQUIRE(below.put(key_of(record), bytes(value_for(record, 1))));
    REQUIRE(stack.put(key_of(record), bytes(value_for(record, 2))));
    REQUIRE(stack.template tier<0>().contains(key_of(record)));
    cy::byte_buffer too_large(1 << 15, std::byte{0x33});
    std::memcpy(too_large.data(), &record, 8);
    below.puts.arm(key_of(record));
    std::thread writer([&] { CHECK(write(bytes(too_large))); });
    REQUIRE(below.puts.wait_until_holding(limit));
    const std::optional<cy::byte_buffer> seen = look_up(stack, how);
    below.puts.release();
    writer.join();
    CHECK_FALSE((seen && *seen == value_for(record, 1)));
    if (seen) CHECK((*seen == value_for(record, 2) || *seen == too_large));
    cy::byte_buffer out;
    CHECK(stack.get(key_of(record), out));
    CHECK(out == too_large);
    CHECK_FALSE(stack.template tier<0>().contains(key_of(record)));
  }
}

}  // namespace

TEST_CASE(
    "tiered write-back: a lookup during a put_many the top refuses never finds the older "
    "value") {
  // As the single put above, for a value refused inside a batch: the top must
  // keep v2 until v3 is below.
  gated_tier below(1 << 20);
  cy::tiered<cy::memory_tier<>, gated_tier&> stack(
      cy::write_policy::write_back, cy::memory_tier<>(refusing_top_options()), below);
  const cy::byte_buffer other = value_for(record + 1, 1);
  check_refused_write(stack, below, [&](std::span<const std::byte> value) {
    std::vector<cy::cache_key> keys{key_of(record + 1), key_of(record)};
    std::vector<std::span<const std::byte>> values{bytes(other), value};
    std::vector<std::uint8_t> stored(2);
    return stack.put_many(keys, values, stored) == 2 && stored[1] == 1;
  });
}

TEST_CASE(
    "tiered write-back: a put refused by a reporting top without put_if never lets a "
    "lookup find the older value") {
  gated_tier below(1 << 20);
  cy::tiered<reporting_top, gated_tier&> stack(cy::write_policy::write_back,
                                               reporting_top(refusing_top_options()), below);
  check_refused_write(stack, below, [&](std::span<const std::byte> value) {
    return stack.put(key_of(record), value);
  });
}

TEST_CASE(
    "tiered write-back: a put_many refused by a reporting top without put_if never lets a "
    "lookup find the older value") {
  gated_tier below(1 << 20);
  cy::tiered<reporting_top, gated_tier&> stack(cy::write_policy::write_back,
                                               reporting_top(refusing_top_options()), below);
  check_refused_write(stack, below, [&](std::span<const std::byte> value) {
    std::vector<cy::cache_key> keys{key_of(record)};
    std::vector<std::span<const std::byte>> values{value};
    return stack.put_many(keys, values) == 1;
  });
}

TEST_CASE(
    "tiered write-back writes through a reporting tier without put_if and keeps its "
    "listener") {
  // Such a tier does not hand down: every value also goes to the tier below
  // at once, and the tier's own eviction listener is neither replaced nor
  // cleared.
  reporting_top top(refusing_top_options());
  std::atomic<int> evicted{0};
  top.set_eviction_listener([&](const cy::cache_key&, std::span<const std::byte>) { ++evicted; });
  cy::memory_tier<cy::eviction::lru> below(1 << 20);
  {
    cy::tiered<reporting_top&, cy::memory_tier<cy::eviction::lru>&> stack(
        cy::write_policy::write_back, top, below);
    for (std::uint64_t r = 0; r < 64; ++r) REQUIRE(stack.put(key_of(r), bytes(value_for(r, 1))));
    CHECK(below.stats().puts == 64);
    CHECK(evicted.load() > 0);
  }
  const int before = evicted.load();
  for (std::uint64_t r = 64; r < 128; ++r) REQUIRE(top.put(key_of(r), bytes(value_for(r, 1))));
  CHECK(evicted.load() > before);  // still installed after the stack is gone
}

TEST_CASE(
    "tiered write-back: a put_many refused by a top with put_if but no put_many_if never "
    "lets a lookup find the older value") {
  gated_tier below(1 << 20);
  cy::tiered<put_if_top, gated_tier&> stack(cy::write_policy::write_back,
                                            put_if_top(refusing_top_options()), below);
  check_refused_write(stack, below, [&](std::span<const std::byte> value) {
    std::vector<cy::cache_key> keys{key_of(record)};
    std::vector<std::span<const std::byte>> values{value};
    return stack.put_many(keys, values) == 1;
  });
}

namespace {

// Per key: version * 4 + (last completed write was an erase) * 2 + (a write
// is in progress). One writer thread per key, so versions only grow.
std::uint64_t encode(std::uint64_t version, bool erased, bool in_progress) {
  return version * 4 + (erased ? 2 : 0) + (in_progress ? 1 : 0);
}

struct stress_result {
  std::uint64_t stale = 0, wrong = 0, lost = 0, hits = 0;
};

// Two writers (each owning half the keys) put new versions and erase; two
// readers look keys up by get, get_many and visit_many and check each hit
// against the state read before the lookup: a hit's version is never older
// than the last write completed before it, its bytes are that version's, and
// a key whose last completed write was a put, with no write in progress
// before or after the lookup, is found (the lower tier never evicts).
// With `large`, one version in four is 4 KiB, too large for small_top's
// shards: puts of it are refused by the top and go below.
cy::byte_buffer stress_value(std::uint64_t record, std::uint64_t version, bool large) {
  cy::byte_buffer value = value_for(record, version);
  if (large && version % 4 == 3) value.resize(4096, static_cast<std::byte>(version & 0xff));
  return value;
}

template <class Stack>
stress_result stress(Stack& stack, int steps, bool large) {
  constexpr std::uint64_t keys_total = 48;
  constexpr std::size_t batch = 4;
  std::vector<std::atomic<std::uint64_t>> state(keys_total);
  for (auto& one : state) one.store(encode(0, true, false));
  std::atomic<int> writers_left{2};
  std::atomic<std::uint64_t> stale{0}, wrong{0}, lost{0}, hits{0};

  auto check = [&](std::uint64_t key_record, std::uint64_t before, bool hit,
                   std::span<const std::byte> value, std::uint64_t after) {
    if (hit) {
      hits.fetch_add(1, std::memory_order_relaxed);
      std::uint64_t got_record = 0, got_version = 0;
      if (value.size() < 16) {
        wrong.fetch_add(1);
        return;
      }
      std::memcpy(&got_record, value.data(), 8);
      std::memcpy(&got_version, value.data() + 8, 8);
      auto expected = stress_value(key_record, got_version, large);
      if (got_record != key_record ||
          !std::equal(value.begin(), value.end(), expected.begin(), expected.end()))
        wrong.fetch_add(1);
      else if (got_version < before / 4)
        stale.fetch_add(1);
    } else if (before == after && (before & 3) == 0) {
      lost.fetch_add(1);
    }
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w)
    threads.emplace_back([&, w] {
      std::mt19937_64 random(77 + w);
      std::vector<std::uint64_t> version(keys_total, 0);
      std::vector<cy::cache_key> keys(batch);
      std::vector<std::uint64_t> records(batch);
      std::vector<cy::byte_buffer> values(batch);
      std::vector<std::span<const std::byte>> spans(batch);
      std::vector<std::uint8_t> stored(batch);
      for (int step = 0; step < steps; ++step) {
        auto own = [&] { return 2 * (random() % (keys_total / 2)) + w; };
        switch (random() % 4) {
          case 0: {  // erase
            std::uint64_t r = own();
            state[r].store(state[r].load() | 1);
            stack.erase(key_of(r));
            state[r].store(encode(++version[r], true, false));
            break;
          }
          case 1: {  // put_many of distinct own keys
            for (std::size_t i = 0; i < batch; ++i) {
              do {
                records[i] = own();
              } while (std::find(records.begin(), records.begin() + static_cast<long>(i),
                                 records[i]) != records.begin() + static_cast<long>(i));
              keys[i] = key_of(records[i]);
              values[i] = stress_value(records[i], ++version[records[i]], large);
              spans[i] = bytes(values[i]);
              state[records[i]].store(state[records[i]].load() | 1);
            }
            stack.put_many(keys, spans, stored);
            for (std::size_t i = 0; i < batch; ++i)
              state[records[i]].store(encode(version[records[i]], stored[i] == 0, false));
            break;
          }
          default: {  // put
            std::uint64_t r = own();
            state[r].store(state[r].load() | 1);
            bool ok = stack.put(key_of(r), bytes(stress_value(r, ++version[r], large)));
            state[r].store(encode(version[r], !ok, false));
          }
        }
      }
      writers_left.fetch_sub(1);
    });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(91 + t);
      cy::byte_buffer out;
      std::vector<cy::cache_key> keys(batch);
      std::vector<std::uint64_t> records(batch), before(batch);
      std::vector<cy::byte_buffer> values(batch);
      std::vector<std::uint8_t> found(batch);
      while (writers_left.load() != 0) {
        switch (random() % 3) {
          case 0: {
            std::uint64_t r = random() % keys_total;
            std::uint64_t first = state[r].load();
            bool hit = stack.get(key_of(r), out);
            check(r, first, hit, bytes(out), state[r].load());
            break;
          }
          case 1: {
            for (std::size_t i = 0; i < batch; ++i) {
              records[i] = random() % keys_total;
              keys[i] = key_of(records[i]);
              before[i] = state[records[i]].load();
            }
            stack.get_many(keys, values, found);
            for (std::size_t i = 0; i < batch; ++i)
              check(records[i], before[i], found[i] != 0, bytes(values[i]),
                    state[records[i]].load());
            break;
          }
          default: {
            for (std::size_t i = 0; i < batch; ++i) {
              records[i] = random() % keys_total;
              keys[i] = key_of(records[i]);
              before[i] = state[records[i]].load();
            }
            std::fill(found.begin(), found.end(), std::uint8_t{0});
            std::vector<cy::byte_buffer> seen(batch);
            stack.visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
              found[i] = 1;
              seen[i].assign(value.begin(), value.end());
            });
            for (std::size_t i = 0; i < batch; ++i)
              check(records[i], before[i], found[i] != 0, bytes(seen[i]), state[records[i]].load());
          }
        }
      }
    });
  for (auto& thread : threads) thread.join();
  return {stale.load(), wrong.load(), lost.load(), hits.load()};
}

template <class Stack>
void run_stress(Stack& stack, bool large) {
  auto result = stress(stack, 6000, large);
  CHECK(result.wrong == 0);
  CHECK(result.stale == 0);
  CHECK(result.lost == 0);
  CHECK(result.hits > 0);
  CHECK(stack.template tier<0>().stats().evictions > 0);
  CHECK(stack.template tier<1>().stats().hits > 0);  // values were read below, and promoted
  if (large) CHECK(stack.template tier<0>().stats().rejected_puts > 0);
  MESSAGE("hits: ", result.hits, ", top evictions: ", stack.template tier<0>().stats().evictions,
          ", top refusals: ", stack.template tier<0>().stats().rejected_puts,
          ", lower hits: ", stack.template tier<1>().stats().hits);
}

}  // namespace

TEST_CASE(
    "tiered under concurrent rewrites and erases: no hit is older than the last completed write") {
  // `large`: some values are refused by the top (write-back: they go below
  // while the top keeps the older value until they are there).
  using lower = cy::memory_tier<cy::eviction::lru>;
  for (bool large : {false, true})
    for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
      CAPTURE(large);
      CAPTURE(static_cast<int>(policy));
      {
        INFO("memory over memory");
        cy::tiered<cy::memory_tier<>, lower> stack(policy, cy::memory_tier<>(small_top_options()),
                                                   lower(64 << 20));
        run_stress(stack, large);
      }
      {
        INFO("an upper tier without put_if");
        cy::tiered<plain_top, lower> stack(policy, plain_top(small_top_options()), lower(64 << 20));
        run_stress(stack, large);
      }
      {
        INFO("an upper tier that reports evictions, without put_if");
        cy::tiered<reporting_top, lower> stack(policy, reporting_top(small_top_options()),
                                               lower(64 << 20));
        run_stress(stack, large);
      }
      {
        INFO("an upper tier with put_if, without put_many_if");
        cy::tiered<put_if_top, lower> stack(policy, put_if_top(small_top_options()),
                                            lower(64 << 20));
        run_stress(stack, large);
      }
    }
}

// Writers the guard does not see (docs/cache-memory.md, "Writers a tiered
// does not see"): two stacks sharing one lower tier by reference stand for
// two processes sharing a shm segment or a Redis server.
TEST_CASE("tiered stacks sharing a lower tier, each key one value: every hit is that value") {
  // The cache stage's case: a key names its bytes, whoever writes them. Two
  // write-back stacks with small tops over one shared tier; on each, one
  // thread puts, put_manys and erases, one looks up; some values are too
  // large for the tops. Every hit must be the key's one value.
  using lower = cy::memory_tier<cy::eviction::lru>;
  lower shared(64 << 20);
  using stack_type = cy::tiered<cy::memory_tier<>, lower&>;
  stack_type a(cy::write_policy::write_back, cy::memory_tier<>(small_top_options()), shared);
  stack_type b(cy::write_policy::write_back, cy::memory_tier<>(small_top_options()), shared);
  constexpr std::uint64_t keys_total = 48;
  auto one_value = [](std::uint64_t r) { return stress_value(r, r % 4, true); };
  std::atomic<int> writers_left{2};
  std::atomic<std::uint64_t> wrong{0}, hits{0};
  auto check = [&](std::uint64_t r, std::span<const std::byte> value) {
    hits.fetch_add(1, std::memory_order_relaxed);
    auto expected = one_value(r);
    if (!std::equal(value.begin(), value.end(), expected.begin(), expected.end()))
      wrong.fetch_add(1);
  };
  auto writer = [&](stack_type& stack, std::uint64_t seed) {
    std::mt19937_64 random(seed);
    for (int step = 0; step < 4000; ++step) {
      std::uint64_t r = random() % keys_total;
      auto value = one_value(r);
      switch (random() % 4) {
        case 0:
          stack.erase(key_of(r));
          break;
        case 1: {
          std::uint64_t s = (r + 1 + random() % (keys_total - 1)) % keys_total;
          auto other = one_value(s);
          std::vector<cy::cache_key> keys{key_of(r), key_of(s)};
          std::vector<std::span<const std::byte>> values{bytes(value), bytes(other)};
          stack.put_many(keys, values);
          break;
        }
        default:
          stack.put(key_of(r), bytes(value));
      }
    }
    writers_left.fetch_sub(1);
  };
  auto reader = [&](stack_type& stack, std::uint64_t seed) {
    std::mt19937_64 random(seed);
    cy::byte_buffer out;
    std::vector<cy::cache_key> keys(4);
    std::vector<std::uint64_t> records(4);
    std::vector<cy::byte_buffer> values(4);
    std::vector<std::uint8_t> found(4);
    while (writers_left.load() != 0) {
      for (std::size_t i = 0; i < 4; ++i) {
        records[i] = random() % keys_total;
        keys[i] = key_of(records[i]);
      }
      switch (random() % 3) {
        case 0:
          if (stack.get(keys[0], out)) check(records[0], bytes(out));
          break;
        case 1:
          stack.get_many(keys, values, found);
          for (std::size_t i = 0; i < 4; ++i)
            if (found[i] != 0) check(records[i], bytes(values[i]));
          break;
        default:
          stack.visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
            check(records[i], value);
          });
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, std::ref(a), 1);
  threads.emplace_back(writer, std::ref(b), 2);
  threads.emplace_back(reader, std::ref(a), 3);
  threads.emplace_back(reader, std::ref(b), 4);
  for (auto& thread : threads) thread.join();
  CHECK(wrong.load() == 0);
  CHECK(hits.load() > 0);
  CHECK(shared.stats().hits > 0);
  MESSAGE("hits: ", hits.load(), ", shared tier hits: ", shared.stats().hits);
}

TEST_CASE(
    "tiered stacks sharing a lower tier, a key rewritten with other bytes: no order between "
    "them") {
  // What the contract does not promise: B put v1 (kept in its top), A put v2
  // after it (written through to the shared tier); B's top then evicts v1
  // and hands it down over v2. A lookup through A, whose last completed
  // write was v2, returns v1: a value older than A's last write. Each stack
  // orders only the writes made through it.
  using lower = cy::memory_tier<cy::eviction::lru>;
  lower shared(1 << 20);
  constexpr std::uint64_t pusher = 7;
  cy::memory_tier_options one_value;  // one shard holding exactly one of these values
  const std::size_t largest = std::max(
      {value_for(record, 1).size(), value_for(record, 2).size(), value_for(pusher, 1).size()});
  one_value.capacity_bytes = cy::memory_tier<>::charged_bytes(largest);
  one_value.shard_count = 1;
  REQUIRE(2 * cy::memory_tier<>::charged_bytes(value_for(pusher, 1).size()) >
          one_value.capacity_bytes);
  cy::tiered<cy::memory_tier<>, lower&> a(cy::write_policy::write_through,
                                          cy::memory_tier<>(one_value), shared);
  cy::tiered<cy::memory_tier<>, lower&> b(cy::write_policy::write_back,
                                          cy::memory_tier<>(one_value), shared);
  REQUIRE(b.put(key_of(record), bytes(value_for(record, 1))));  // B's top only
  REQUIRE(a.put(key_of(record), bytes(value_for(record, 2))));  // A's top and the shared tier
  REQUIRE(a.put(key_of(pusher), bytes(value_for(pusher, 1))));  // v2 leaves A's top
  REQUIRE(b.put(key_of(pusher), bytes(value_for(pusher, 1))));  // v1 handed down over v2
  cy::byte_buffer out;
  REQUIRE(a.get(key_of(record), out));
  CHECK(out == value_for(record, 1));
}
