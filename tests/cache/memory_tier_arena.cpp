// Tests of conveyor/cache/detail/entry_arena.hpp and of the memory tier on
// it: size classes, reuse of freed blocks (after erase and after eviction),
// byte accounting against what the arena holds, values larger than a chunk,
// mapping failures (values still stored, from the heap, and counted), a write
// that throws, and threads putting, evicting and visiting at once.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "conveyor/cache/detail/entry_arena.hpp"
#include "conveyor/cache/memory_tier.hpp"

namespace cy = conveyor;
namespace d = conveyor::detail;

namespace {

cy::cache_key key_of(std::uint64_t record) {
  return cy::cache_key{3, 5, record};
}

// Every byte depends on record, version and position: a wrong or torn value
// cannot match.
cy::byte_buffer value_for(std::uint64_t record, std::uint64_t version, std::size_t size) {
  cy::byte_buffer value(size);
  for (std::size_t i = 0; i < size; ++i)
    value[i] = static_cast<std::byte>((record * 151 + version * 29 + i * 13 + i / 251) & 0xff);
  return value;
}

std::span<const std::byte> bytes(const cy::byte_buffer& buffer) {
  return {buffer.data(), buffer.size()};
}

cy::memory_tier_options tier_options(std::uint64_t capacity, std::size_t shards) {
  cy::memory_tier_options out;
  out.capacity_bytes = capacity;
  out.shard_count = shards;
  return out;
}

// Page sources that fail: always, or after `maps_allowed` successful maps.
std::atomic<int> maps_allowed{0};
void* map_never(std::size_t) {
  return nullptr;
}
void* map_limited(std::size_t bytes) {
  if (maps_allowed.fetch_sub(1) <= 0) return nullptr;
  return d::arena_page_source::map_anonymous(bytes);
}

// The bytes of blocks the arena has given out and not had back.
std::uint64_t arena_live_bytes(const d::entry_arena_stats& stats) {
  return stats.carved_bytes - stats.free_bytes;
}

}  // namespace

TEST_CASE(
    "entry_arena size classes: every size fits its class, rounding is bounded, classes are "
    "ordered") {
  std::size_t previous = 0;
  for (std::size_t c = 0; c < d::entry_arena::class_count; ++c) {
    const std::size_t size = d::arena_class_bytes(c);
    CHECK(size > previous);
    CHECK(size % d::arena_block_align == 0);
    CHECK(d::arena_class_of(size) == c);
    previous = size;
  }
  CHECK(previous == d::arena_max_class_bytes);
  std::size_t wrong = 0;
  for (std::size_t bytes = 1; bytes <= d::arena_max_class_bytes; bytes += 1 + bytes / 97) {
    const std::size_t block = d::arena_block_bytes(bytes);
    if (block < bytes) ++wrong;
    if (bytes > 2048 && static_cast<double>(block) > static_cast<double>(bytes) * 1.032) ++wrong;
    if (bytes <= 2048 && block >= bytes + d::arena_block_align) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(d::arena_block_bytes(d::arena_max_class_bytes + 1) % d::arena_page_bytes == 0);
}

TEST_CASE("entry_arena gives a freed block to the next allocation of its class") {
  d::entry_arena_options options;
  options.limit_bytes = 8 << 20;
  d::entry_arena arena(options);
  auto first = arena.allocate(8312);
  auto second = arena.allocate(8312);
  CHECK(first.data != second.data);
  CHECK(reinterpret_cast<std::uintptr_t>(first.data) % d::arena_block_align == 0);
  std::memset(first.data, 0xab, 8312);
  arena.release(first, 8312);
  CHECK(arena.stats().free_bytes == d::arena_block_bytes(8312));
  auto third = arena.allocate(8300);  // same class
  CHECK(third.data == first.data);
  auto stats = arena.stats();
  CHECK(stats.reused_blocks == 1);
  CHECK(stats.free_bytes == 0);
  CHECK(stats.mapped_bytes == d::entry_arena::chunk_bytes);
  CHECK(arena_live_bytes(stats) == 2 * d::arena_block_bytes(8312));
  arena.release(second, 8312);
  arena.release(third, 8300);
  CHECK(arena_live_bytes(arena.stats()) == 0);
}

TEST_CASE(
    "entry_arena says whether every live block is in its chunks (the tier then skips releasing "
    "them one by one when it goes)") {
  d::entry_arena_options options;
  options.limit_bytes = 8 << 20;
  d::entry_arena arena(options);
  CHECK(arena.all_blocks_in_chunks());
  auto small = arena.allocate(400);
  CHECK(arena.all_blocks_in_chunks());
  auto large = arena.allocate(d::entry_arena::max_class_bytes + 1);  // a mapping of its own
  CHECK_FALSE(arena.all_blocks_in_chunks());
  arena.release(large, d::entry_arena::max_class_bytes + 1);
  CHECK(arena.all_blocks_in_chunks());
  arena.release(small, 400);
  d::entry_arena_options heap_options;
  heap_options.use_heap = true;
  d::entry_arena heap(heap_options);
  auto from_heap = heap.allocate(400);
  CHECK_FALSE(heap.all_blocks_in_chunks());
  heap.release(from_heap, 400);
  CHECK(heap.all_blocks_in_chunks());
  // A tier holding chunk entries, with and without a value in a mapping of
  // its own: destroyed either way without a leak (the sanitizer builds check;
  // the tests of an arena that cannot map cover heap entries).
  for (bool mapping : {false, true}) {
    auto tier = std::make_unique<cy::memory_tier<>>(tier_options(64 << 20, 4));
    for (std::uint64_t r = 0; r < 1000; ++r) tier->put(key_of(r), bytes(value_for(r, 0, 300)));
    if (mapping)
      tier->put(key_of(5000), bytes(value_for(5000, 0, d::entry_arena::max_class_bytes + 10)));
    CHECK((tier->arena_stats().large_bytes != 0) == mapping);
    CHECK(tier->contains(key_of(999)));
    tier.reset();
  }
}

TEST_CASE("entry_arena maps no more than its limit, then serves larger free blocks or the heap") {
  d::entry_arena_options options;
  options.limit_bytes = d::entry_arena::chunk_bytes;  // one chunk
  d::entry_arena arena(options);
  const std::size_t size = 100'000;  // 20 per chunk
  std::vector<d::entry_arena::block> blocks;
  for (int i = 0; i < 25; ++i) blocks.push_back(arena.allocate(size));
  auto stats = arena.stats();
  CHECK(stats.mapped_bytes == d::entry_arena::chunk_bytes);
  CHECK(stats.heap_blocks == 25 - d::entry_arena::chunk_bytes / d::arena_block_bytes(size));
  CHECK(stats.heap_bytes == stats.heap_blocks * d::arena_block_bytes(size));
  // A free block of a larger class serves a smaller request at the limit
  // (one too large for what is left of the chunk).
  const std::size_t smaller_size = 95'000;
  REQUIRE(d::arena_block_bytes(smaller_size) < d::arena_block_bytes(size));
  REQUIRE(d::arena_block_bytes(smaller_size) >
          d::entry_arena::chunk_bytes % d::arena_block_bytes(size));
  arena.release(blocks[0], size);
  auto smaller = arena.allocate(smaller_size);
  CHECK(smaller.data == blocks[0].data);
  CHECK(arena.stats().heap_blocks == stats.heap_blocks);
  arena.release(smaller, smaller_size);
  for (std::size_t i = 1; i < blocks.size(); ++i) arena.release(blocks[i], size);
  stats = arena.stats();
  CHECK(stats.heap_bytes == 0);
  CHECK(arena_live_bytes(stats) == 0);
}

TEST_CASE("memory_tier reuses evicted entries' blocks: the arena stays near the budget") {
  constexpr std::size_t value_size = 8240;
  const std::uint64_t capacity = 200 * cy::memory_tier<>::charged_bytes(value_size);
  cy::memory_tier<> tier(tier_options(capacity, 4));
  std::vector<cy::cache_key> keys(64);
  std::vector<std::size_t> sizes(64, value_size);
  std::vector<std::uint8_t> stored(64);
  for (std::uint64_t batch = 0; batch < 40; ++batch) {  // 2560 values into room for 200
    for (std::uint64_t i = 0; i < 64; ++i) keys[i] = key_of(batch * 64 + i);
    tier.put_many_with(
        keys, sizes,
        [&](std::size_t i, std::span<std::byte> out) {
          auto value = value_for(keys[i].record, 0, value_size);
          std::memcpy(out.data(), value.data(), out.size());
        },
        stored);
  }
  auto stats = tier.arena_stats();
  CHECK(tier.stats().evictions > 2000);
  CHECK(stats.reused_blocks > 2000);
  CHECK(stats.heap_blocks == 0);
  CHECK(stats.mapped_bytes <= capacity + 4 * d::entry_arena::chunk_bytes);
  // What the arena has given out is exactly the held entries' blocks.
  CHECK(arena_live_bytes(stats) ==
        tier.size_bytes() - tier.entry_count() * cy::memory_tier<>::index_bytes_per_entry);
  std::size_t present = 0, wrong = 0;
  cy::byte_buffer out;
  for (std::uint64_t record = 0; record < 40 * 64; ++record)
    if (tier.get(key_of(record), out)) {
      ++present;
      if (out != value_for(record, 0, value_size)) ++wrong;
    }
  CHECK(present == tier.entry_count());
  CHECK(wrong == 0);
}

TEST_CASE(
    "memory_tier's byte accounting counts the arena's blocks, through puts, replacements and "
    "erases") {
  cy::memory_tier<> tier(tier_options(4 << 20, 2));
  std::mt19937_64 random(17);
  std::vector<std::size_t> latest(300, 0);
  cy::byte_buffer out;
  for (int step = 0; step < 6000; ++step) {
    const std::uint64_t record = random() % 300;
    if (random() % 7 == 0) {
      tier.erase(key_of(record));
    } else {
      const std::size_t size = random() % 4 == 0 ? random() % 40'000 : 100 + random() % 9000;
      if (tier.put(key_of(record), bytes(value_for(record, step, size)))) latest[record] = size;
    }
    REQUIRE(tier.size_bytes() <= tier.capacity_bytes());
  }
  std::uint64_t charged = 0;
  for (std::uint64_t record = 0; record < 300; ++record)
    if (tier.contains(key_of(record))) charged += tier.charged_bytes(latest[record]);
  CHECK(tier.size_bytes() == charged);
  auto stats = tier.arena_stats();
  CHECK(stats.heap_blocks == 0);
  CHECK(arena_live_bytes(stats) ==
        tier.size_bytes() - tier.entry_count() * cy::memory_tier<>::index_bytes_per_entry);
  CHECK(stats.mapped_bytes <= tier.capacity_bytes() + 4 * d::entry_arena::chunk_bytes);
}

TEST_CASE("memory_tier stores values larger than a chunk in their own mappings") {
  cy::memory_tier<> tier(tier_options(64 << 20, 1));
  const std::size_t big = 3 * d::entry_arena::chunk_bytes + 12345;
  auto value = value_for(1, 1, big);
  REQUIRE(tier.put(key_of(1), bytes(value)));
  CHECK(tier.arena_stats().large_bytes == d::arena_block_bytes(d::memory_entry_bytes(big)));
  CHECK(tier.size_bytes() == tier.charged_bytes(big));
  cy::byte_buffer out;
  REQUIRE(tier.get(key_of(1), out));
  CHECK(out == value);
  auto replacement = value_for(1, 2, 300'000);  // above the largest class, below a chunk
  REQUIRE(tier.put(key_of(1), bytes(replacement)));
  CHECK(tier.arena_stats().large_bytes == d::arena_block_bytes(d::memory_entry_bytes(300'000)));
  REQUIRE(tier.get(key_of(1), out));
  CHECK(out == replacement);
  CHECK(tier.erase(key_of(1)));
  CHECK(tier.arena_stats().large_bytes == 0);
  CHECK(tier.size_bytes() == 0);
}

TEST_CASE("memory_tier whose arena cannot map stores every value from the heap, and counts it") {
  auto options = tier_options(16 << 20, 2);
  options.arena_pages.map = &map_never;
  cy::memory_tier<> tier(std::move(options));
  for (std::uint64_t record = 0; record < 50; ++record)
    REQUIRE(tier.put(key_of(record), bytes(value_for(record, 0, 1000 + record * 97))));
  REQUIRE(tier.put(key_of(99), bytes(value_for(99, 0, 5 << 20))));  // a large block, too
  auto stats = tier.arena_stats();
  CHECK(stats.mapped_bytes == 0);
  CHECK(stats.map_failures >= 2);
  CHECK(stats.heap_blocks == 51);
  cy::byte_buffer out;
  for (std::uint64_t record = 0; record < 50; ++record) {
    REQUIRE(tier.get(key_of(record), out));
    CHECK(out == value_for(record, 0, 1000 + record * 97));
  }
  REQUIRE(tier.get(key_of(99), out));
  CHECK(out == value_for(99, 0, 5 << 20));
}

TEST_CASE("memory_tier whose arena stops mapping part way keeps every value right") {
  maps_allowed = 2;  // two regions (two chunks), then failures
  auto options = tier_options(64 << 20, 4);
  options.arena_pages.map = &map_limited;
  cy::memory_tier<> tier(std::move(options));
  std::vector<cy::cache_key> keys(128);
  std::vector<std::size_t> sizes(128, 8240);
  std::vector<std::uint8_t> stored(128);
  for (std::uint64_t batch = 0; batch < 8; ++batch) {
    for (std::uint64_t i = 0; i < 128; ++i) keys[i] = key_of(batch * 128 + i);
    CHECK(tier.put_many_with(
              keys, sizes,
              [&](std::size_t i, std::span<std::byte> out) {
                auto value = value_for(keys[i].record, 3, out.size());
                std::memcpy(out.data(), value.data(), out.size());
              },
              stored) == 128);
  }
  auto stats = tier.arena_stats();
  CHECK(stats.map_failures >= 1);
  CHECK(stats.heap_blocks > 0);
  CHECK(stats.mapped_bytes > 0);
  std::size_t wrong = 0;
  cy::byte_buffer out;
  for (std::uint64_t record = 0; record < 8 * 128; ++record)
    if (!tier.get(key_of(record), out) || out != value_for(record, 3, 8240)) ++wrong;
  CHECK(wrong == 0);
  for (std::uint64_t record = 0; record < 8 * 128; ++record) tier.erase(key_of(record));
  stats = tier.arena_stats();
  CHECK(stats.heap_bytes == 0);
  CHECK(arena_live_bytes(stats) == 0);
}

TEST_CASE("memory_tier put_many_with whose write throws returns every block to the arena") {
  cy::memory_tier<> tier(tier_options(8 << 20, 2));
  std::vector<cy::cache_key> keys{key_of(1), key_of(2), key_of(3)};
  std::vector<std::size_t> sizes{500, 9000, 70'000};
  std::vector<std::uint8_t> stored(3);
  CHECK_THROWS_AS(tier.put_many_with(
                      keys, sizes,
                      [](std::size_t i, std::span<std::byte>) {
                        if (i == 2) throw std::runtime_error("write failed");
                      },
                      stored),
                  std::runtime_error);
  CHECK(tier.entry_count() == 0);
  auto stats = tier.arena_stats();
  CHECK(stats.carved_bytes > 0);
  CHECK(arena_live_bytes(stats) == 0);
}

TEST_CASE("memory_tier with the largest budget maps chunks as it fills, without overflow") {
  cy::memory_tier<> tier(tier_options(UINT64_MAX, 2));
  auto value = value_for(4, 0, 5000);
  REQUIRE(tier.put(key_of(4), bytes(value)));
  cy::byte_buffer out;
  REQUIRE(tier.get(key_of(4), out));
  CHECK(out == value);
  CHECK(tier.arena_stats().mapped_bytes == d::entry_arena::chunk_bytes);
  CHECK(tier.arena_stats().heap_blocks == 0);
}

TEST_CASE("memory_tier with use_arena = false takes every entry from the heap") {
  auto options = tier_options(4 << 20, 2);
  options.use_arena = false;
  cy::memory_tier<> tier(std::move(options));
  REQUIRE(tier.put(key_of(1), bytes(value_for(1, 0, 777))));
  cy::byte_buffer out;
  REQUIRE(tier.get(key_of(1), out));
  CHECK(out == value_for(1, 0, 777));
  CHECK(tier.arena_stats().mapped_bytes == 0);
  CHECK(tier.arena_stats().heap_blocks == 1);
  CHECK(tier.erase(key_of(1)));
  CHECK(tier.arena_stats().heap_bytes == 0);
}

TEST_CASE(
    "memory_tier arena under threads: puts that evict, erases and visits never show a wrong "
    "value") {
  constexpr std::uint64_t records = 400;
  cy::memory_tier<> tier(tier_options(60 * cy::memory_tier<>::charged_bytes(6000), 4));
  std::atomic<std::size_t> wrong{0}, visited{0};
  auto worker = [&](unsigned seed) {
    std::mt19937_64 random(seed);
    std::vector<cy::cache_key> keys(16);
    std::vector<std::size_t> sizes(16);
    std::vector<std::uint8_t> stored(16);
    for (int step = 0; step < 300; ++step) {
      for (std::size_t i = 0; i < 16; ++i) {
        keys[i] = key_of(random() % records);
        sizes[i] = 64 + (keys[i].record * 37) % 6000;  // a record's size never changes
      }
      switch (random() % 3) {
        case 0:
          tier.put_many_with(
              keys, sizes,
              [&](std::size_t i, std::span<std::byte> out) {
                auto value = value_for(keys[i].record, 0, out.size());
                std::memcpy(out.data(), value.data(), out.size());
              },
              stored);
          break;
        case 1:
          tier.erase(keys[random() % 16]);
          break;
        default:
          tier.visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
            cy::byte_buffer copy(value.begin(), value.end());
            if (copy != value_for(keys[i].record, 0, sizes[i])) ++wrong;
            ++visited;
          });
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 3; ++t) threads.emplace_back(worker, 100 + t);
  for (auto& thread : threads) thread.join();
  CHECK(wrong == 0);
  CHECK(visited > 0);
  auto stats = tier.arena_stats();
  CHECK(arena_live_bytes(stats) + stats.heap_bytes ==
        tier.size_bytes() - tier.entry_count() * cy::memory_tier<>::index_bytes_per_entry);
}
