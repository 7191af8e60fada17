// Tests of conveyor/cache/shm_tier.hpp: the cache_tier contract, then sharing
// across processes and attachments, kill -9 mid-write and with the lock held,
// damaged segments, a segment too small to exist.
#include "conveyor/cache/shm_tier.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tier_contract.hpp"

using conveyor::byte_buffer;
using conveyor::cache_key;
using conveyor::shm_tier;
using conveyor::shm_tier_options;

namespace {

static_assert(conveyor::cache_tier<shm_tier>);

// A segment name unique to this process and test, removed before and after.
struct scoped_name {
  std::string name;
  explicit scoped_name(const char* tag)
      : name("conveyor-test-" + std::to_string(::getpid()) + "-" + tag) {
    shm_tier::remove(name);
  }
  ~scoped_name() { shm_tier::remove(name); }
};

byte_buffer value_for(const cache_key& key, std::size_t max_size = 3000) {
  std::mt19937_64 random(key.hash());
  byte_buffer value(random() % max_size);
  for (auto& b : value) b = static_cast<std::byte>(random());
  return value;
}

cache_key key_of(std::uint64_t record) {
  return cache_key{3, 5, record};
}

std::size_t verify_all(shm_tier& tier, std::uint64_t count, std::size_t max_size = 3000) {
  std::size_t hits = 0;
  byte_buffer out;
  for (std::uint64_t r = 0; r < count; ++r) {
    if (!tier.get(key_of(r), out)) continue;
    ++hits;
    REQUIRE(out == value_for(key_of(r), max_size));
  }
  return hits;
}

// Maps the segment directly, as a misbehaving process would.
struct raw_mapping {
  boost::interprocess::shared_memory_object memory;
  boost::interprocess::mapped_region region;
  explicit raw_mapping(const std::string& name)
      : memory(boost::interprocess::open_only, name.c_str(), boost::interprocess::read_write),
        region(memory, boost::interprocess::read_write) {}
  conveyor::detail::shm::segment_header& header() {
    return *static_cast<conveyor::detail::shm::segment_header*>(region.get_address());
  }
};

constexpr shm_tier_options small{.capacity_bytes = 4 << 20, .average_value_bytes = 2048};

// 16 MiB with a slot per 512 bytes: room for every contract value with no
// bucket overflowing. `put` refuses values above a quarter of the arena.
struct shm_contract_fixture {
  static bool available() { return true; }
  shm_tier& tier() { return tier_; }
  [[nodiscard]] std::size_t refused_value_bytes() const { return tier_.max_value_bytes() + 1; }
  scoped_name name{"contract"};
  shm_tier tier_{name.name, {.capacity_bytes = 16 << 20, .average_value_bytes = 1024}};
};

// A segment too small to hold a header: created, but never usable.
struct too_small_shm_fixture {
  static bool available() { return true; }
  shm_tier& tier() { return tier_; }
  scoped_name name{"too-small"};
  shm_tier tier_{name.name, {.capacity_bytes = 1}};
};

}  // namespace

TYPE_TO_STRING_AS("shm_tier", shm_contract_fixture);
TYPE_TO_STRING_AS("shm_tier of 1 byte", too_small_shm_fixture);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, shm_contract_fixture);
TEST_CASE_TEMPLATE_INVOKE(failing_tier_contract, too_small_shm_fixture);

TEST_CASE("shm_tier: a segment too small for its header is an unavailable tier, or io_error") {
  scoped_name name("tiny");
  shm_tier tier(name.name, {.capacity_bytes = 1});
  CHECK_FALSE(tier.available());
  CHECK(tier.unavailable_reason().find("too small") != std::string::npos);
  CHECK(tier.capacity_bytes() == 0);
  CHECK_THROWS_AS(shm_tier(name.name, {.capacity_bytes = 1, .throw_if_unavailable = true}),
                  conveyor::io_error);
}

TEST_CASE(
    "shm_tier: its capacity is the segment's size; values above a quarter arena are refused") {
  scoped_name name("basic");
  shm_tier tier(name.name, small);
  REQUIRE(tier.available());
  CHECK(tier.name() == "shm");
  CHECK(tier.capacity_bytes() == small.capacity_bytes);
  CHECK(tier.max_value_bytes() < small.capacity_bytes / 4);
  CHECK(tier.put(key_of(1), byte_buffer(tier.max_value_bytes())));
  CHECK_FALSE(tier.put(key_of(2), byte_buffer(tier.max_value_bytes() + 1)));
  CHECK(tier.stats().rejected_puts == 1);
}

TEST_CASE("shm_tier: a second attach sees the first's values; eviction keeps newest") {
  scoped_name name("share");
  shm_tier first(name.name, small);
  shm_tier second(name.name, {.capacity_bytes = 1 << 30});  // attaching uses the existing size
  CHECK(second.capacity_bytes() == small.capacity_bytes);
  for (std::uint64_t r = 0; r < 5000; ++r) REQUIRE(first.put(key_of(r), value_for(key_of(r))));
  CHECK(second.contains(key_of(4999)));
  CHECK_FALSE(second.contains(key_of(0)));
  auto hits = verify_all(second, 5000);
  CHECK(hits > 500);
  CHECK(hits < 5000);
}

TEST_CASE("shm_tier: a damaged header is rebuilt, a foreign layout version is refused") {
  scoped_name name("damage");
  {
    shm_tier tier(name.name, small);
    REQUIRE(tier.put(key_of(1), value_for(key_of(1))));
    raw_mapping raw(name.name);
    raw.header().shape.arena_bytes ^= 1;  // damage while attached: detected on the next operation
    byte_buffer out;
    CHECK_FALSE(tier.get(key_of(1), out));
    CHECK(tier.rebuilds() == 1);
    CHECK(tier.put(key_of(2), value_for(key_of(2))));
    CHECK(verify_all(tier, 3) == 1);
  }
  {
    raw_mapping raw(name.name);
    std::memset(static_cast<void*>(&raw.header().shape.magic_value), 0xff, 8);  // damage at rest
  }
  {
    shm_tier tier(name.name, small);
    REQUIRE(tier.available());
    CHECK(tier.rebuilds() == 1);
    CHECK(verify_all(tier, 3) == 0);
    CHECK(tier.put(key_of(1), value_for(key_of(1))));
  }
  {
    raw_mapping raw(name.name);
    raw.header().shape.version = 99;
    raw.header().geometry_checksum = conveyor::detail::shm::geometry_checksum(raw.header().shape);
  }
  shm_tier refused(name.name, small);
  CHECK_FALSE(refused.available());
  CHECK(refused.unavailable_reason().find("layout version 99") != std::string::npos);
  byte_buffer out;
  CHECK_NOTHROW(CHECK_FALSE(refused.get(key_of(1), out)));
  CHECK_FALSE(refused.put(key_of(1), value_for(key_of(1))));
  CHECK(refused.stats().failures >= 2);
  CHECK_THROWS_AS(shm_tier(name.name, {.throw_if_unavailable = true}), conveyor::io_error);
}

TEST_CASE("shm_tier: a child killed while holding the lock does not wedge the parent") {
  scoped_name name("lockholder");
  shm_tier tier(name.name,
                {.capacity_bytes = 4 << 20, .lock_timeout = std::chrono::milliseconds(5000)});
  REQUIRE(tier.put(key_of(1), value_for(key_of(1))));
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    raw_mapping raw(name.name);
    if (::pthread_mutex_lock(&raw.header().mutex) != 0) ::_exit(2);
    char byte = 1;
    (void)!::write(ready[1], &byte, 1);
    for (;;) ::pause();
  }
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  auto start = std::chrono::steady_clock::now();
  byte_buffer out;
  CHECK(tier.get(key_of(1), out));
  CHECK(out == value_for(key_of(1)));
  CHECK(tier.put(key_of(2), value_for(key_of(2))));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  CHECK(tier.recovered_locks() == 1);
  CHECK(tier.stats().failures == 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE(
    "shm_tier: a slot left half written by a killed process is dropped; damaged values miss") {
  scoped_name name("halfwritten");
  shm_tier tier(name.name, small);
  for (std::uint64_t r = 0; r < 20; ++r) REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
  auto slot_of = [](raw_mapping& raw, const cache_key& key) {
    conveyor::detail::shm::segment_view view{static_cast<std::byte*>(raw.region.get_address())};
    auto* bucket = view.bucket_of(key, raw.header().shape);
    for (std::uint32_t way = 0; way < conveyor::detail::shm::ways; ++way)
      if (bucket[way].record == key.record && bucket[way].sequence != 0) return &bucket[way];
    return static_cast<conveyor::detail::shm::slot*>(nullptr);
  };
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // dies "inside put": lock held, slot marked unfinished, value half copied
    raw_mapping raw(name.name);
    ::pthread_mutex_lock(&raw.header().mutex);
    auto* entry = slot_of(raw, key_of(4));
    if (entry == nullptr) ::_exit(2);
    entry->sequence |= 1u;
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  byte_buffer out;
  CHECK_FALSE(tier.get(key_of(4), out));
  CHECK(tier.recovered_locks() == 1);
  CHECK(verify_all(tier, 20) == 19);

  raw_mapping raw(name.name);
  CHECK(slot_of(raw, key_of(4)) == nullptr);  // the repair freed the unfinished slot
  auto* entry = slot_of(raw, key_of(7));
  REQUIRE(entry != nullptr);
  REQUIRE(entry->length > 0);
  conveyor::detail::shm::segment_view view{static_cast<std::byte*>(raw.region.get_address())};
  view.arena()[entry->position % raw.header().shape.arena_bytes] ^= std::byte{0x10};
  CHECK_FALSE(tier.get(key_of(7), out));
  CHECK(out.empty());
  CHECK(tier.stats().failures == 1);
  CHECK(verify_all(tier, 20) == 18);
}

TEST_CASE("shm_tier: a lock held by a live, stuck process times out as a counted miss") {
  scoped_name name("stuck");
  shm_tier tier(name.name,
                {.capacity_bytes = 4 << 20, .lock_timeout = std::chrono::milliseconds(100)});
  raw_mapping raw(name.name);
  std::thread holder([&] {
    ::pthread_mutex_lock(&raw.header().mutex);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::pthread_mutex_unlock(&raw.header().mutex);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  byte_buffer out;
  CHECK_FALSE(tier.put(key_of(1), value_for(key_of(1))));
  CHECK(tier.stats().failures == 1);
  holder.join();
  CHECK(tier.put(key_of(1), value_for(key_of(1))));
}

TEST_CASE("shm_tier: kill -9 of writers mid-write leaves only correct hits") {
  scoped_name name("kill");
  std::mt19937 random(777);
  shm_tier parent(name.name, small);
  for (int round = 0; round < 12; ++round) {
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      shm_tier tier(name.name, small);
      for (std::uint64_t i = 0;; ++i) {
        auto key = key_of(i % 700);
        tier.put(key, value_for(key, 20000));
        if (i % 5 == 0) tier.erase(key_of((i * 13) % 700));
      }
    }
    ::usleep(1000 + random() % 30000);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    auto start = std::chrono::steady_clock::now();
    verify_all(parent, 700, 20000);
    CHECK(parent.put(key_of(0), value_for(key_of(0), 20000)));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  }
  CHECK(parent.stats().failures == 0);
  MESSAGE("locks recovered from killed writers: " << parent.recovered_locks());
}

TEST_CASE("shm_tier: threads reading and writing at once (stress)") {
  scoped_name name("threads");
  shm_tier shared(name.name, small);
  std::atomic<bool> wrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      shm_tier own(name.name, small);  // half the threads use their own attachment
      auto& tier = t % 2 == 0 ? shared : own;
      std::mt19937 random(t);
      byte_buffer out;
      for (int i = 0; i < 5000; ++i) {
        auto key = key_of(random() % 2000);
        switch (random() % 4) {
          case 0:
            tier.put(key, value_for(key));
            break;
          case 1:
            tier.erase(key);
            break;
          default:
            if (tier.get(key, out) && out != value_for(key)) wrong = true;
        }
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK_FALSE(wrong.load());
  CHECK(shared.stats().failures == 0);
}
