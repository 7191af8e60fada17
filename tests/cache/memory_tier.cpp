// Tests of conveyor/cache/memory_tier.hpp: the cache_tier contract for each
// eviction policy, then what is the memory tier's own: exact byte accounting,
// shard sizing, eviction order of S3-FIFO, SIEVE and LRU, concurrent eviction.
#include "conveyor/cache/memory_tier.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tier_contract.hpp"

namespace cy = conveyor;

static_assert(cy::cache_tier<cy::memory_tier<>>);
static_assert(cy::cache_tier<cy::memory_tier<cy::eviction::s3fifo>>);
static_assert(cy::cache_tier<cy::memory_tier<cy::eviction::lru>>);
static_assert(cy::cache_tier<cy::memory_tier<cy::eviction::sieve>>);
static_assert(std::is_nothrow_move_constructible_v<cy::memory_tier<>>);

namespace {

cy::cache_key key_of(std::uint64_t record) {
  return cy::cache_key{7, 11, record};
}

// A value that names its key and version in every byte, so a torn or wrong
// value cannot pass `value_matches`.
cy::byte_buffer value_for(std::uint64_t record, std::uint64_t version, std::size_t size) {
  cy::byte_buffer value(size);
  for (std::size_t i = 0; i < size; ++i)
    value[i] = static_cast<std::byte>((record * 131 + version * 31 + i * 7) & 0xff);
  if (size >= 16) {
    std::memcpy(value.data(), &record, 8);
    std::memcpy(value.data() + 8, &version, 8);
  }
  return value;
}

bool value_matches(std::uint64_t record, const cy::byte_buffer& value) {
  if (value.size() < 16) return false;
  std::uint64_t stored_record = 0, version = 0;
  std::memcpy(&stored_record, value.data(), 8);
  std::memcpy(&version, value.data() + 8, 8);
  return stored_record == record && value == value_for(record, version, value.size());
}

// Options without designated initializers (GCC 12 warns about omitted fields).
cy::memory_tier_options options(std::uint64_t capacity, std::size_t shards = 0,
                                std::uint32_t sample_period = 16) {
  cy::memory_tier_options out;
  out.capacity_bytes = capacity;
  out.shard_count = shards;
  out.latency_sample_period = sample_period;
  return out;
}

std::span<const std::byte> bytes(const cy::byte_buffer& buffer) {
  return {buffer.data(), buffer.size()};
}

constexpr std::size_t small_value = 100;

// One shard holding exactly `entries` values of `small_value` bytes; evicted
// records are appended to `evicted` in eviction order.
template <class Policy>
cy::memory_tier<Policy> exact_tier(std::size_t entries, std::vector<std::uint64_t>& evicted,
                                   double small_fraction = 0.1) {
  auto tier_options = options(entries * cy::memory_tier<Policy>::charged_bytes(small_value), 1, 1);
  tier_options.small_queue_fraction = small_fraction;
  tier_options.on_evict = [&evicted](const cy::cache_key& key, std::span<const std::byte>) {
    evicted.push_back(key.record);
  };
  return cy::memory_tier<Policy>(std::move(tier_options));
}

template <class Tier>
void put_record(Tier& tier, std::uint64_t record) {
  CHECK(tier.put(key_of(record), bytes(value_for(record, 0, small_value))));
}

template <class Tier>
void hit(Tier& tier, std::uint64_t record, int times = 1) {
  cy::byte_buffer out;
  for (int i = 0; i < times; ++i) REQUIRE(tier.get(key_of(record), out));
}

// 16 MiB in 4 shards, every call timed. A value whose charge exceeds a shard's
// 4 MiB is refused.
template <class Policy>
struct memory_contract_fixture {
  static constexpr std::uint64_t capacity = 16 << 20;
  static constexpr std::size_t shards = 4;
  static bool available() { return true; }
  cy::memory_tier<Policy>& tier() { return tier_; }
  [[nodiscard]] std::size_t refused_value_bytes() const { return capacity / shards; }
  cy::memory_tier<Policy> tier_{options(capacity, shards, 1)};
};

}  // namespace

TYPE_TO_STRING_AS("memory_tier<s3fifo>", memory_contract_fixture<cy::eviction::s3fifo>);
TYPE_TO_STRING_AS("memory_tier<lru>", memory_contract_fixture<cy::eviction::lru>);
TYPE_TO_STRING_AS("memory_tier<sieve>", memory_contract_fixture<cy::eviction::sieve>);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, memory_contract_fixture<cy::eviction::s3fifo>,
                          memory_contract_fixture<cy::eviction::lru>,
                          memory_contract_fixture<cy::eviction::sieve>);

TEST_CASE_TEMPLATE(
    "memory_tier charges each entry its value, key and overhead, times sampled calls, clears "
    "`out` on a miss and keeps its capacity",
    Policy, cy::eviction::s3fifo, cy::eviction::lru, cy::eviction::sieve) {
  cy::memory_tier<Policy> tier(options(1 << 20, 0, 1));
  cy::byte_buffer out = value_for(9, 9, 40);
  CHECK_FALSE(tier.get(key_of(1), out));
  CHECK(out.empty());
  CHECK(out.capacity() >= 40);
  CHECK(tier.put(key_of(1), bytes(value_for(1, 0, 300))));
  CHECK(tier.size_bytes() == tier.charged_bytes(300));
  CHECK(tier.put(key_of(1), bytes(value_for(1, 1, 50))));
  CHECK(tier.size_bytes() == tier.charged_bytes(50));
  CHECK(tier.entry_count() == 1);
  CHECK(tier.put(key_of(2), {}));
  CHECK(tier.get(key_of(1), out));
  CHECK(tier.get(key_of(2), out));
  CHECK(tier.erase(key_of(1)));
  CHECK(tier.size_bytes() == tier.charged_bytes(0));
  CHECK(tier.entry_count() == 1);

  auto stats = tier.stats();
  CHECK(stats.evictions == 0);
  CHECK(stats.capacity_bytes == 1 << 20);
  CHECK(stats.get_latency.count() == 3);  // latency_sample_period 1: every call
  CHECK(stats.put_latency.count() == 3);
  CHECK(tier.name() == std::string("memory/") + std::string(Policy::name));
}

TEST_CASE("memory_tier picks a power-of-two shard count of at least twice the hardware threads") {
  cy::memory_tier<> tier(64 << 20);
  auto threads = std::max(1u, std::thread::hardware_concurrency());
  CHECK(std::has_single_bit(tier.shard_count()));
  CHECK(tier.shard_count() >= 2 * threads);
}

TEST_CASE_TEMPLATE("memory_tier rejects values larger than a shard and drops the older value",
                   Policy, cy::eviction::s3fifo, cy::eviction::lru, cy::eviction::sieve) {
  cy::memory_tier<Policy> tier(options(4 * 4096, 4));
  std::size_t largest = 0;  // the largest value whose charge fits one shard's 4096 bytes
  while (tier.charged_bytes(largest + 1) <= 4096) ++largest;
  auto fits = value_for(3, 0, largest);
  auto too_big = value_for(3, 1, fits.size() + 1);
  CHECK(tier.put(key_of(3), bytes(fits)));
  CHECK(tier.size_bytes() == tier.charged_bytes(largest));
  CHECK(tier.size_bytes() > 4096 - 128);  // size classes round by at most 64 bytes here
  CHECK_FALSE(tier.put(key_of(3), bytes(too_big)));
  cy::byte_buffer out;
  CHECK_FALSE(tier.get(key_of(3), out));  // never serve a value older than the last put
  CHECK(tier.stats().rejected_puts == 1);
  CHECK(tier.size_bytes() == 0);
  CHECK(tier.stats().evictions == 0);
}

TEST_CASE_TEMPLATE("memory_tier put_many_if stores only the kept values and keeps older ones",
                   Policy, cy::eviction::s3fifo, cy::eviction::lru, cy::eviction::sieve) {
  // Keys 0..3 hold version 0. The batch: key 0 kept, key 1 not kept, key 2
  // too large for a shard, key 4 (new) kept. Keys 1 and 2 keep version 0
  // (put_many would have erased key 2's); keep(i) is asked with key i's
  // shard lock held (an erase of that key from another thread waits).
  cy::memory_tier<Policy> tier(options(4 * 4096, 4));
  for (std::uint64_t r = 0; r < 4; ++r) REQUIRE(tier.put(key_of(r), bytes(value_for(r, 0, 200))));
  std::vector<cy::cache_key> keys{key_of(0), key_of(1), key_of(2), key_of(4)};
  std::vector<cy::byte_buffer> owned{value_for(0, 1, 200), value_for(1, 1, 200),
                                     value_for(2, 1, 5000), value_for(4, 1, 200)};
  std::vector<std::span<const std::byte>> values;
  for (const auto& one : owned) values.push_back(bytes(one));
  std::vector<std::uint8_t> stored(4, 9);
  std::vector<std::size_t> asked;
  std::atomic<bool> erased{false};
  std::thread eraser;
  std::size_t count = tier.put_many_if(
      keys, values,
      [&](std::size_t i) {
        asked.push_back(i);
        if (i == 3) {
          // An erase of key 4 needs the shard's lock: it must wait until the
          // call is done. The sleep only decides whether it got the chance.
          eraser = std::thread([&] {
            tier.erase(key_of(4));
            erased = true;
          });
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          CHECK_FALSE(erased.load());
        }
        return i != 1;
      },
      stored);
  eraser.join();
  CHECK(erased.load());
  CHECK_FALSE(tier.contains(key_of(4)));  // erased after the put, not before
  CHECK(count == 2);
  CHECK(stored == std::vector<std::uint8_t>{1, 0, 0, 1});
  std::sort(asked.begin(), asked.end());
  CHECK(asked == std::vector<std::size_t>{0, 1, 3});  // not asked for the value that cannot fit
  cy::byte_buffer out;
  CHECK(tier.get(key_of(0), out));
  CHECK(out == value_for(0, 1, 200));
  CHECK(tier.get(key_of(1), out));
  CHECK(out == value_for(1, 0, 200));
  CHECK(tier.get(key_of(2), out));
  CHECK(out == value_for(2, 0, 200));
  CHECK(tier.stats().rejected_puts == 1);
}

TEST_CASE_TEMPLATE("memory_tier never exceeds its budget and accounts bytes exactly", Policy,
                   cy::eviction::s3fifo, cy::eviction::lru, cy::eviction::sieve) {
  constexpr std::uint64_t capacity = 200'000;
  std::vector<std::uint64_t> evicted;
  auto tier_options = options(capacity, 4);
  tier_options.on_evict = [&](const cy::cache_key& key, std::span<const std::byte> value) {
    cy::byte_buffer copy(value.begin(), value.end());
    CHECK(value_matches(key.record, copy));
    evicted.push_back(key.record);
  };
  cy::memory_tier<Policy> tier(std::move(tier_options));
  std::mt19937_64 random(42);
  std::unordered_map<std::uint64_t, std::size_t> latest_size;
  cy::byte_buffer out;
  for (int step = 0; step < 5000; ++step) {
    std::uint64_t record = random() % 600;
    if (random() % 10 == 0) {
      tier.erase(key_of(record));
    } else if (random() % 3 == 0) {
      if (tier.get(key_of(record), out)) CHECK(value_matches(record, out));
    } else {
      std::size_t size = 16 + random() % 3000;
      if (tier.put(key_of(record), bytes(value_for(record, step, size))))
        latest_size[record] = size;
    }
    REQUIRE(tier.size_bytes() <= capacity);
  }
  std::uint64_t expected_bytes = 0;
  std::size_t present = 0;
  for (auto [record, size] : latest_size)
    if (tier.contains(key_of(record))) {
      expected_bytes += tier.charged_bytes(size);
      ++present;
    }
  CHECK(tier.size_bytes() == expected_bytes);
  CHECK(tier.entry_count() == present);
  CHECK(tier.stats().evictions == evicted.size());
  CHECK(evicted.size() > 100);
}

TEST_CASE("S3-FIFO: a one-hit-wonder scan does not evict a frequently used key (LRU does)") {
  std::vector<std::uint64_t> evicted_s3fifo, evicted_lru;
  auto s3fifo = exact_tier<cy::eviction::s3fifo>(10, evicted_s3fifo);
  auto lru = exact_tier<cy::eviction::lru>(10, evicted_lru);
  for (std::uint64_t r = 0; r < 10; ++r) {
    put_record(s3fifo, r);
    put_record(lru, r);
  }
  hit(s3fifo, 5, 3);
  hit(lru, 5, 3);
  for (std::uint64_t r = 1000; r < 1100; ++r) {  // a scan of 100 new keys, each seen once
    put_record(s3fifo, r);
    put_record(lru, r);
  }
  CHECK(s3fifo.contains(key_of(5)));
  CHECK_FALSE(lru.contains(key_of(5)));
  CHECK(std::find(evicted_lru.begin(), evicted_lru.end(), 5) != evicted_lru.end());
  CHECK(std::find(evicted_s3fifo.begin(), evicted_s3fifo.end(), 5) == evicted_s3fifo.end());
}

TEST_CASE("S3-FIFO: a key evicted from small returns through the ghost into main") {
  std::vector<std::uint64_t> evicted;
  auto tier = exact_tier<cy::eviction::s3fifo>(10, evicted);
  for (std::uint64_t r = 0; r < 10; ++r) put_record(tier, r);
  put_record(tier, 100);  // small is over its 10%: its unaccessed tail, record 0, goes to the ghost
  REQUIRE(evicted == std::vector<std::uint64_t>{0});
  put_record(tier, 0);  // ghost hit: inserted into main, evicting record 1 from small
  REQUIRE(evicted == std::vector<std::uint64_t>{0, 1});
  for (std::uint64_t r = 200; r < 230; ++r)
    put_record(tier, r);            // never accessed, never in the ghost
  CHECK(tier.contains(key_of(0)));  // main is not touched while small holds >= 10%
  CHECK_FALSE(tier.contains(key_of(100)));
  CHECK(std::count(evicted.begin(), evicted.end(), 0) == 1);
}

namespace {

// The ghost as it was first written (std::deque + std::unordered_map): the
// reference the open-addressing ghost must agree with, call for call.
class reference_ghost {
 public:
  explicit reference_ghost(std::uint64_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}
  void remember(std::uint64_t hash, std::uint64_t charged_bytes) {
    if (charged_bytes > capacity_bytes_) return;
    auto sequence = next_sequence_++;
    order_.push_back({hash, sequence, charged_bytes});
    live_[hash] = sequence;
    bytes_ += charged_bytes;
    while (bytes_ > capacity_bytes_) {
      const auto oldest = order_.front();
      auto found = live_.find(oldest.hash);
      if (found != live_.end() && found->second == oldest.sequence) live_.erase(found);
      bytes_ -= oldest.charged_bytes;
      order_.erase(order_.begin());
    }
  }
  bool take(std::uint64_t hash) { return live_.erase(hash) != 0; }
  [[nodiscard]] std::size_t size() const { return live_.size(); }

 private:
  struct slot {
    std::uint64_t hash, sequence, charged_bytes;
  };
  std::uint64_t capacity_bytes_, bytes_ = 0, next_sequence_ = 0;
  std::vector<slot> order_;
  std::unordered_map<std::uint64_t, std::uint64_t> live_;
};

}  // namespace

TEST_CASE("S3-FIFO ghost: agrees with the reference ghost over random remembers and takes") {
  // Hashes from small pools (re-remembered keys, takes that hit and miss,
  // clustered home slots: hashes that share their low bits) and sizes up to
  // over the capacity, so every path of the ring and the table runs,
  // including growth and backward-shift deletion across the table's end.
  for (std::uint64_t capacity : {std::uint64_t{1}, std::uint64_t{100}, std::uint64_t{5000}}) {
    for (std::uint64_t pool : {std::uint64_t{8}, std::uint64_t{300}, std::uint64_t{100000}}) {
      CAPTURE(capacity);
      CAPTURE(pool);
      cy::detail::ghost_fifo ghost(capacity);
      reference_ghost reference(capacity);
      std::mt19937_64 random(capacity * 1000 + pool);
      auto hash_of = [&] {
        const std::uint64_t k = random() % pool;
        return (random() & 1) ? k << 20 : k * 0x9E37'79B9'7F4A'7C15ull;  // clustered or spread
      };
      for (int step = 0; step < 20000; ++step) {
        CAPTURE(step);
        if (random() % 3 == 0) {
          const std::uint64_t hash = hash_of();
          REQUIRE(ghost.take(hash) == reference.take(hash));
        } else {
          const std::uint64_t hash = hash_of(), bytes = 1 + random() % (capacity / 8 + 2);
          ghost.remember(hash, bytes);
          reference.remember(hash, bytes);
        }
        REQUIRE(ghost.size() == reference.size());
      }
    }
  }
}

TEST_CASE("S3-FIFO: accessed small entries move to main; main reinserts with freq-1, capped at 3") {
  std::vector<std::uint64_t> evicted;
  auto tier = exact_tier<cy::eviction::s3fifo>(10, evicted);  // small target: 1 entry
  for (std::uint64_t r = 0; r < 10; ++r) put_record(tier, r);
  for (std::uint64_t r = 0; r < 10; ++r) hit(tier, r);
  // Every small entry was accessed: all move to main with cleared counters,
  // small empties, and main's tail, record 0, is evicted.
  put_record(tier, 100);
  REQUIRE(evicted == std::vector<std::uint64_t>{0});
  hit(tier, 1, 7);  // capped at 3
  hit(tier, 2, 3);
  hit(tier, 3, 1);
  // From here each new record is accessed once right after its put, so small
  // always promotes it and every eviction comes from main.
  hit(tier, 100);
  std::uint64_t next = 101;
  while (std::find(evicted.begin(), evicted.end(), 2) == evicted.end()) {
    put_record(tier, next);
    hit(tier, next);
    ++next;
    REQUIRE(next < 200);
  }
  // Pass 1 (put 101): 1 and 2 go back to the head with 2, 3 with 0, 4 goes.
  REQUIRE(evicted.size() >= 10);
  CHECK(std::vector<std::uint64_t>(evicted.begin(), evicted.begin() + 7) ==
        std::vector<std::uint64_t>{0, 4, 5, 6, 7, 8, 9});
  // 100 (promoted before them) then 3 (freq 0 after one reinsertion) follow.
  CHECK(evicted[7] == 100);
  CHECK(evicted[8] == 3);
  // 1 and 2 stay adjacent and leave together after three reinsertions each:
  // 1's seven hits bought nothing over 2's three.
  auto position_of_1 = std::find(evicted.begin(), evicted.end(), 1) - evicted.begin();
  CHECK(evicted.back() == 2);
  CHECK(position_of_1 == static_cast<std::ptrdiff_t>(evicted.size()) - 2);
  // Worked by hand: the reinsertions happen at puts 101 (freq 3 -> 2), 108
  // (2 -> 1) and 116 (1 -> 0); 1 is evicted at put 124 and 2 at put 125. Had
  // the counter not been capped, 1 would have survived four more passes.
  CHECK(next - 1 == 125);
}

TEST_CASE("SIEVE: the hand skips visited entries once, clearing their bit, and stays put") {
  std::vector<std::uint64_t> evicted;
  auto tier = exact_tier<cy::eviction::sieve>(4, evicted);
  for (std::uint64_t r : {1, 2, 3, 4}) put_record(tier, r);
  hit(tier, 2);
  put_record(tier, 5);  // hand at tail 1: not visited, evicted; hand moves to 2
  CHECK(evicted == std::vector<std::uint64_t>{1});
  hit(tier, 4);
  put_record(tier, 6);  // 2 visited -> cleared, 3 evicted; hand at 4
  CHECK(evicted == std::vector<std::uint64_t>{1, 3});
  put_record(tier, 7);  // 4 visited -> cleared, 5 evicted; hand at 6
  put_record(tier, 8);  // 6 evicted; hand at 7
  CHECK(evicted == std::vector<std::uint64_t>{1, 3, 5, 6});
  CHECK(tier.contains(key_of(2)));
  CHECK(tier.contains(key_of(4)));
  hit(tier, 7);
  hit(tier, 8);
  put_record(tier, 9);  // 7 and 8 cleared, the hand wraps to the tail: 2 (cleared before) goes
  CHECK(evicted == std::vector<std::uint64_t>{1, 3, 5, 6, 2});
  put_record(tier, 10);  // the hand stayed at 4, whose bit is clear
  CHECK(evicted == std::vector<std::uint64_t>{1, 3, 5, 6, 2, 4});
}

TEST_CASE("LRU evicts the least recently used entry") {
  std::vector<std::uint64_t> evicted;
  auto tier = exact_tier<cy::eviction::lru>(3, evicted);
  for (std::uint64_t r : {1, 2, 3}) put_record(tier, r);
  hit(tier, 1);
  put_record(tier, 4);
  put_record(tier, 5);
  put_record(tier, 6);
  CHECK(evicted == std::vector<std::uint64_t>{2, 3, 1});
}

TEST_CASE_TEMPLATE(
    "memory_tier under concurrent readers, writers and erasers returns only whole, right values",
    Policy, cy::eviction::s3fifo, cy::eviction::lru, cy::eviction::sieve) {
  constexpr std::uint64_t capacity = 256 * 1024;
  constexpr std::uint64_t records = 2000;  // about 4x what fits: constant eviction
  cy::memory_tier<Policy> tier(options(capacity, 4, 4));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> wrong{0}, over_budget{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(t);
      for (std::uint64_t step = 0; step < 20000; ++step) {
        std::uint64_t record = random() % records;
        if (step % 16 == 0)
          tier.erase(key_of(record));
        else
          tier.put(key_of(record), bytes(value_for(record, step, 16 + random() % 1000)));
        if (tier.size_bytes() > capacity) over_budget.fetch_add(1);
      }
    });
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 random(100 + t);
      cy::byte_buffer out;
      while (!stop.load()) {
        std::uint64_t record = random() % records;
        if (tier.get(key_of(record), out)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (!value_matches(record, out)) wrong.fetch_add(1);
        }
        if (tier.contains(key_of(record + 1)) && tier.get(key_of(record + 1), out) &&
            !value_matches(record + 1, out))
          wrong.fetch_add(1);
      }
    });
  for (int t = 0; t < 2; ++t) threads[t].join();
  stop = true;
  for (std::size_t t = 2; t < threads.size(); ++t) threads[t].join();
  CHECK(wrong.load() == 0);
  CHECK(over_budget.load() == 0);
  CHECK(hits.load() > 0);
  CHECK(tier.size_bytes() <= capacity);
  CHECK(tier.stats().evictions > 0);
}

TEST_CASE(
    "memory_tier: visit_many and put_many_with work per shard; a throwing visitor or writer leaves "
    "the tier usable") {
  cy::memory_tier_options options;
  options.capacity_bytes = 4 << 20;
  options.shard_count = 4;
  cy::memory_tier<> tier(options);
  std::vector<cy::cache_key> keys;
  std::vector<std::size_t> sizes;
  for (std::uint64_t r = 0; r < 64; ++r) {
    keys.push_back(key_of(r));
    sizes.push_back(r * 3);
  }
  auto fill = [](std::size_t i, std::span<std::byte> destination) {
    for (std::size_t b = 0; b < destination.size(); ++b)
      destination[b] = static_cast<std::byte>(i + b);
  };
  std::vector<std::uint8_t> stored(keys.size(), 9);
  CHECK(tier.put_many_with(std::span<const cy::cache_key>(keys),
                           std::span<const std::size_t>(sizes), fill, stored) == keys.size());
  CHECK(stored == std::vector<std::uint8_t>(keys.size(), 1));
  CHECK(tier.stats().puts == keys.size());

  std::vector<int> seen(keys.size(), 0);
  std::size_t wrong = 0;
  CHECK(tier.visit_many(std::span<const cy::cache_key>(keys),
                        [&](std::size_t i, std::span<const std::byte> value) {
                          ++seen[i];
                          if (value.size() != sizes[i]) ++wrong;
                          for (std::size_t b = 0; b < value.size(); ++b)
                            if (value[b] != static_cast<std::byte>(i + b)) ++wrong;
                        }) == keys.size());
  CHECK(seen == std::vector<int>(keys.size(), 1));
  CHECK(wrong == 0);

  // A visitor that throws: the exception comes out, what was visited is counted, no lock is left
  // held.
  std::size_t visited = 0;
  CHECK_THROWS_AS(tier.visit_many(std::span<const cy::cache_key>(keys),
                                  [&](std::size_t, std::span<const std::byte>) {
                                    if (++visited == 10) throw std::runtime_error("visitor failed");
                                  }),
                  std::runtime_error);
  CHECK(tier.stats().hits == keys.size() + 10);
  // A writer that throws: nothing of that call is stored, and the older values stay.
  std::vector<std::size_t> bigger(keys.size(), 500);
  std::size_t writes = 0;
  CHECK_THROWS_AS(tier.put_many_with(
                      std::span<const cy::cache_key>(keys), std::span<const std::size_t>(bigger),
                      [&](std::size_t, std::span<std::byte>) {
                        if (++writes == 20) throw std::runtime_error("writer failed");
                      },
                      stored),
                  std::runtime_error);
  cy::byte_buffer out;
  for (std::size_t i = 0; i < keys.size(); ++i) {  // takes every shard's lock: none was left held
    REQUIRE(tier.get(keys[i], out));
    CHECK(out.size() == sizes[i]);
  }
  CHECK(tier.put(key_of(1000), std::span<const std::byte>(out)));

  // A value larger than a shard is refused, and an older value of its key erased.
  std::vector<cy::cache_key> two{key_of(0), key_of(2000)};
  std::vector<std::size_t> two_sizes{(4u << 20) / 4 + 1, 8};
  CHECK(tier.put_many_with(std::span<const cy::cache_key>(two),
                           std::span<const std::size_t>(two_sizes), fill,
                           std::span<std::uint8_t>(stored.data(), 2)) == 1);
  CHECK(stored[0] == 0);
  CHECK(stored[1] == 1);
  CHECK_FALSE(tier.contains(key_of(0)));
  CHECK(tier.contains(key_of(2000)));
  CHECK(tier.stats().rejected_puts == 1);
  CHECK(tier.size_bytes() <= tier.capacity_bytes());
}

TEST_CASE(
    "entry_index: random inserts, erases, finds and find_hash agree with a map, with colliding "
    "hashes and wraparound") {
  namespace d = cy::detail;
  std::mt19937_64 random(5);
  d::entry_index index;
  std::unordered_map<std::uint64_t, d::memory_entry*> model;  // record -> entry
  d::entry_arena_options arena_options;
  arena_options.limit_bytes = 1 << 20;
  d::entry_arena arena(arena_options);
  std::vector<d::memory_entry_ptr> owned;
  std::size_t wrong = 0;
  for (int step = 0; step < 20000; ++step) {
    std::uint64_t record = random() % 300;
    // Few distinct hashes, many near the table's end: long runs that wrap.
    std::uint64_t hash =
        (record % 7 == 0) ? ~std::uint64_t{0} - record % 3 : (record * 0x9e3779b97f4a7c15ull) % 61;
    auto key = key_of(record);
    auto found = model.find(record);
    if (random() % 3 == 0) {
      if (found != model.end()) {
        index.erase(found->second);
        model.erase(found);
      }
    } else if (found == model.end()) {
      owned.push_back(d::allocate_memory_entry(arena, key, hash, 0, 0));
      index.reserve_one();
      index.insert(owned.back().get());
      model.emplace(record, owned.back().get());
    }
    if (index.size() != model.size()) ++wrong;
    for (std::uint64_t probe = step % 300, n = 0; n < 4; ++n, probe = (probe + 77) % 300) {
      std::uint64_t probe_hash =
          (probe % 7 == 0) ? ~std::uint64_t{0} - probe % 3 : (probe * 0x9e3779b97f4a7c15ull) % 61;
      auto expected = model.find(probe);
      auto* got = index.find(key_of(probe), probe_hash);
      if (got != (expected == model.end() ? nullptr : expected->second)) ++wrong;
      // visit_many's two steps: the first entry of that hash, then, when its
      // key differs (a collision), the walk on with find.
      auto* candidate = index.find_hash(probe_hash);
      const bool hash_present = std::any_of(model.begin(), model.end(), [&](const auto& held) {
        return held.second->hash == probe_hash;
      });
      if ((candidate != nullptr) != hash_present) ++wrong;
      if (candidate != nullptr && candidate->hash != probe_hash) ++wrong;
      auto* two_steps = candidate != nullptr && candidate->key == key_of(probe)
                            ? candidate
                            : index.find(key_of(probe), probe_hash);
      if (two_steps != got) ++wrong;
    }
  }
  CHECK(wrong == 0);
  std::size_t visited = 0;
  index.for_each([&](d::memory_entry*) { ++visited; });
  CHECK(visited == model.size());
}
