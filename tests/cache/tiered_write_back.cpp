// Tests of tiered<...>'s write-back hand-over (conveyor/cache/tiered.hpp,
// eviction_listener.hpp): a value evicted from the top tier is handed to the
// tier below before the top tier's lock is released, so no lookup misses it
// on its way down, an erase meanwhile is not undone by it, and a newer value
// is not overwritten by it. Then a stress run of every call at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "conveyor/cache/disk_tier.hpp"
#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/cache/tiered.hpp"
#include "support/temp_dir.hpp"
#include "versioned_values.hpp"

namespace cy = conveyor;

namespace {

cy::cache_key key_of(std::uint64_t record) {
  return cy::cache_key{3, 4, record};
}

using conveyor::test::bytes;
using conveyor::test::value_for;

// A lower tier that holds the first put of one key ("the victim in transit")
// until the test releases it, and counts what reaches it meanwhile: a lookup
// of that key arriving then is exactly the window this file is about.
class gated_tier {
 public:
  gated_tier() : inner_(1 << 20) {}

  void hold_next_put_of(const cy::cache_key& key) {
    std::lock_guard lock(mutex_);
    held_ = key;
    armed_ = true;
  }
  // Waits until the held put arrived (true), or `limit` passed (false).
  bool wait_until_holding(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return holding_; });
  }
  // Waits until `done()` or a lookup of the held key arrived, or `limit`
  // passed; then lets the held put finish. The wait only decides how long the
  // other thread gets to run into the window, never whether the test passes.
  template <class Done>
  void release_after(std::chrono::milliseconds limit, Done done) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, limit, [&] { return done() || lookups_while_holding_ != 0; });
    released_ = true;
    changed_.notify_all();
  }
  void notify() {
    std::lock_guard lock(mutex_);
    changed_.notify_all();
  }
  int lookups_while_holding() {
    std::lock_guard lock(mutex_);
    return lookups_while_holding_;
  }

  bool get(const cy::cache_key& key, cy::byte_buffer& out) {
    note_lookup(key);
    return inner_.get(key, out);
  }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    {
      std::unique_lock lock(mutex_);
      if (armed_ && key == held_) {
        armed_ = false;
        holding_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return released_; });
        holding_ = false;
      }
    }
    return inner_.put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_.erase(key); }
  bool contains(const cy::cache_key& key) { return inner_.contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    for (const auto& key : keys) note_lookup(key);
    return inner_.get_many(keys, values, found);
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
  void note_lookup(const cy::cache_key& key) {
    std::lock_guard lock(mutex_);
    if (holding_ && key == held_) {
      ++lookups_while_holding_;
      changed_.notify_all();
    }
  }

  cy::memory_tier<cy::eviction::lru> inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  cy::cache_key held_;
  bool armed_ = false, holding_ = false, released_ = false;
  int lookups_while_holding_ = 0;
};
static_assert(cy::cache_tier<gated_tier>);
static_assert(!cy::eviction_reporting_tier<gated_tier>);

// One shard that holds exactly one value of value_for(record) bytes.
cy::memory_tier<> one_value_top(std::uint64_t record) {
  cy::memory_tier_options options;
  options.capacity_bytes = cy::memory_tier<>::charged_bytes(value_for(record).size());
  options.shard_count = 1;
  return cy::memory_tier<>(std::move(options));
}

// pusher's value (471 bytes) is shorter than victim's (524): the top tier,
// sized for victim's, takes pusher's by evicting victim.
constexpr std::uint64_t victim = 8, pusher = 7;
constexpr auto give_it_time = std::chrono::milliseconds(300);

// Puts `victim`, then on a second thread puts `pusher`, whose eviction of
// `victim` is held in the gated tier; runs `during` on a third thread while
// it is held and releases the hand-over when `during` is done or has reached
// the tier below (or after give_it_time). Returns once everything finished.
template <class During>
void while_in_transit(cy::tiered<cy::memory_tier<>, gated_tier&>& stack, gated_tier& below,
                      During during) {
  REQUIRE(stack.put(key_of(victim), bytes(value_for(victim))));
  below.hold_next_put_of(key_of(victim));
  std::thread evicting([&] { stack.put(key_of(pusher), bytes(value_for(pusher))); });
  REQUIRE(below.wait_until_holding(std::chrono::seconds(30)));
  std::atomic<bool> done{false};
  std::thread other([&] {
    during();
    done = true;
    below.notify();
  });
  below.release_after(give_it_time, [&] { return done.load(); });
  evicting.join();
  other.join();
}

}  // namespace

TEST_CASE("tiered write-back: a lookup waits for a victim's hand-over instead of missing it") {
  static_assert(victim != pusher);
  REQUIRE(value_for(pusher).size() <= value_for(victim).size());  // pusher's put evicts victim
  for (std::string_view lookup : {"get", "get_many", "visit_many"}) {
    CAPTURE(lookup);
    gated_tier below;
    cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back,
                                                     one_value_top(victim), below);
    bool hit = false;
    cy::byte_buffer seen;
    while_in_transit(stack, below, [&] {
      std::vector<cy::cache_key> keys{key_of(victim)};
      std::vector<cy::byte_buffer> values(1);
      std::vector<std::uint8_t> found(1);
      if (lookup == "get") {
        hit = stack.get(key_of(victim), seen);
      } else if (lookup == "get_many") {
        hit = stack.get_many(keys, values, found) == 1 && found[0] == 1;
        seen = values[0];
      } else {
        hit = stack.visit_many(keys, [&](std::size_t, std::span<const std::byte> value) {
          seen.assign(value.begin(), value.end());
        }) == 1;
      }
    });
    CHECK(below.lookups_while_holding() == 0);
    CHECK(hit);
    CHECK(seen == value_for(victim));
    CHECK(stack.tier<0>().stats().evictions >= 1);
  }
}

TEST_CASE("tiered write-back: an erase during a victim's hand-over is not undone by it") {
  gated_tier below;
  cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back,
                                                   one_value_top(victim), below);
  while_in_transit(stack, below, [&] { stack.erase(key_of(victim)); });
  cy::byte_buffer out;
  CHECK_FALSE(stack.contains(key_of(victim)));
  CHECK_FALSE(stack.get(key_of(victim), out));
  CHECK(stack.get(key_of(pusher), out));
}

TEST_CASE("tiered write-back: a newer value put during a victim's hand-over wins over it") {
  // The newer value is too large for the top tier, so it goes straight to the
  // tier below: the older value, in transit, must not land after it.
  gated_tier below;
  cy::tiered<cy::memory_tier<>, gated_tier&> stack(cy::write_policy::write_back,
                                                   one_value_top(victim), below);
  cy::byte_buffer newer(4 * value_for(victim).size(), std::byte{0x5a});
  bool stored = false;
  while_in_transit(stack, below, [&] { stored = stack.put(key_of(victim), bytes(newer)); });
  CHECK(stored);
  cy::byte_buffer out;
  CHECK(stack.get(key_of(victim), out));
  CHECK(out == newer);
  CHECK(stack.tier<1>().get(key_of(victim), out));
  CHECK(out == newer);
}

TEST_CASE(
    "tiered<memory, disk> write-back under concurrent get/get_many/visit_many/put/put_many/erase: "
    "a key is found by every lookup after its first put, and no value is wrong") {
  cy::test::temp_dir dir("tiered-write-back");
  cy::disk_tier disk(dir.path() / "cache", cy::disk_tier_options{.capacity_bytes = 64 << 20});
  cy::memory_tier_options top_options;
  top_options.capacity_bytes = 32 << 10;  // ~40 of the 300 kept values: constant eviction
  top_options.shard_count = 4;
  cy::tiered<cy::memory_tier<>, cy::disk_tier&> stack(cy::write_policy::write_back,
                                                      cy::memory_tier<>(top_options), disk);

  // Kept keys are never erased: once one's put returned, every lookup must
  // find it. Churned keys are erased and put again: a lookup may miss them.
  constexpr std::uint64_t kept = 300, churned_first = 1000, churned = 60;
  std::vector<std::atomic<bool>> published(kept);
  std::atomic<std::uint64_t> wrong{0}, lost{0}, checked{0};
  constexpr int thread_count = 4, steps = 2500;
  constexpr std::size_t batch = 8;

  auto check = [&](std::uint64_t record, bool was_published, bool hit,
                   std::span<const std::byte> value) {
    if (hit) {
      auto expected = value_for(record);
      if (!std::equal(value.begin(), value.end(), expected.begin(), expected.end())) ++wrong;
    } else if (was_published) {
      ++lost;
    }
    if (was_published) checked.fetch_add(1, std::memory_order_relaxed);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(1234 + t);
      cy::byte_buffer out;
      std::vector<cy::cache_key> keys(batch);
      std::vector<std::uint64_t> records(batch);
      std::vector<cy::byte_buffer> values(batch);
      std::vector<std::uint8_t> found(batch), was_published(batch);
      std::vector<std::span<const std::byte>> spans(batch);
      auto pick_batch = [&] {
        for (std::size_t i = 0; i < batch; ++i) {
          records[i] = random() % kept;
          keys[i] = key_of(records[i]);
          was_published[i] = published[records[i]].load(std::memory_order_acquire) ? 1 : 0;
        }
      };
      for (int step = 0; step < steps; ++step) {
        switch (random() % 7) {
          case 0: {  // put one kept key
            std::uint64_t record = random() % kept;
            if (stack.put(key_of(record), bytes(value_for(record))))
              published[record].store(true, std::memory_order_release);
            break;
          }
          case 1: {  // put_many of kept keys
            pick_batch();
            for (std::size_t i = 0; i < batch; ++i) values[i] = value_for(records[i]);
            for (std::size_t i = 0; i < batch; ++i) spans[i] = bytes(values[i]);
            std::vector<std::uint8_t> stored(batch);
            stack.put_many(keys, spans, stored);
            for (std::size_t i = 0; i < batch; ++i)
              if (stored[i] != 0) published[records[i]].store(true, std::memory_order_release);
            break;
          }
          case 2: {  // get
            std::uint64_t record = random() % kept;
            bool was = published[record].load(std::memory_order_acquire);
            bool hit = stack.get(key_of(record), out);
            check(record, was, hit, bytes(out));
            break;
          }
          case 3: {  // get_many
            pick_batch();
            stack.get_many(keys, values, found);
            for (std::size_t i = 0; i < batch; ++i)
              check(records[i], was_published[i] != 0, found[i] != 0, bytes(values[i]));
            break;
          }
          case 4: {  // visit_many
            pick_batch();
            std::fill(found.begin(), found.end(), std::uint8_t{0});
            stack.visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
              found[i] = 1;
              check(records[i], was_published[i] != 0, true, value);
            });
            for (std::size_t i = 0; i < batch; ++i)
              if (found[i] == 0) check(records[i], was_published[i] != 0, false, {});
            break;
          }
          default: {  // churned keys: put, erase, look up; any hit must be right
            std::uint64_t record = churned_first + random() % churned;
            switch (random() % 3) {
              case 0:
                stack.put(key_of(record), bytes(value_for(record)));
                break;
              case 1:
                stack.erase(key_of(record));
                break;
              default: {
                bool hit = stack.get(key_of(record), out);
                check(record, false, hit, bytes(out));
              }
            }
          }
        }
      }
    });
  for (auto& thread : threads) thread.join();
  disk.flush();

  CHECK(wrong.load() == 0);
  CHECK(lost.load() == 0);
  CHECK(checked.load() > 0);
  CHECK(stack.tier<0>().stats().evictions > 0);  // the hand-over ran, concurrently
  CHECK(disk.stats().hits > 0);
  CHECK(disk.stats().failures == 0);
  CHECK(stack.tier<0>().size_bytes() <= stack.tier<0>().capacity_bytes());
  // Afterwards, every published key is still there, with its value.
  cy::byte_buffer out;
  std::size_t missing = 0, published_count = 0;
  for (std::uint64_t record = 0; record < kept; ++record) {
    if (!published[record].load()) continue;
    ++published_count;
    if (!stack.get(key_of(record), out) || out != value_for(record)) ++missing;
  }
  CHECK(published_count > 0);
  CHECK(missing == 0);
  MESSAGE("lookups of published keys: ", checked.load(),
          ", top evictions: ", stack.tier<0>().stats().evictions,
          ", disk hits: ", disk.stats().hits);
}
