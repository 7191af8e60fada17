// docs/cache-memory.md, docs/cache-disk-shm.md, docs/cache-redis.md: the tiers
// used directly. The Redis part runs against 127.0.0.1:6379 when a server is
// there and otherwise shows the tier's behaviour when Redis is down: misses
// and counted failures, no exception, no hang.
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/cache/redis_tier.hpp>
#include <conveyor/cache/shm_tier.hpp>
#include <conveyor/cache/tiered.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace cy = conveyor;

int main() {
  const std::string text = "decoded record 42";
  auto bytes = std::as_bytes(std::span(text.data(), text.size()));
  const cy::cache_key key{/*dataset=*/1, /*chain=*/2, /*record=*/42};
  cy::byte_buffer out;
  bool ok = true;

  // Memory: 64 MiB, S3-FIFO; SIEVE and LRU are template arguments.
  cy::memory_tier<> memory(64ull << 20);
  ok &= memory.put(key, bytes) && memory.get(key, out) && out.size() == text.size();

  // Disk: a 0700 directory of append-only segments, checksummed records.
  auto dir = std::filesystem::temp_directory_path() / ("conveyor-docs-tiers-" + std::to_string(::getpid()));
  {
    cy::disk_tier disk(dir, {.capacity_bytes = 64ull << 20});
    // Memory in front of disk, write-through: a disk hit is promoted to memory.
    cy::tiered stack(cy::memory_tier<cy::eviction::sieve>(16ull << 20), disk);
    ok &= stack.put(key, bytes);
    ok &= disk.contains(key) && stack.get(key, out);
    std::printf("tiered: memory %llu hits, disk holds %llu bytes\n",
                static_cast<unsigned long long>(stack.tier<0>().stats().hits),
                static_cast<unsigned long long>(disk.size_bytes()));
  }
  std::filesystem::remove_all(dir);

  // Shared memory: every process that opens the same name shares the cache.
  std::string shm_name = "conveyor-docs-" + std::to_string(::getpid());
  {
    cy::shm_tier shared(shm_name, {.capacity_bytes = 8ull << 20});
    ok &= shared.put(key, bytes) && shared.get(key, out);
  }
  cy::shm_tier::remove(shm_name);

  // Redis: pipelined batches, a deadline on every call.
  cy::redis_tier_options options;
  options.servers = {"127.0.0.1:6379"};
  options.key_prefix = "conveyor-docs:";
  options.ttl = std::chrono::minutes(1);
  options.connect_timeout = std::chrono::milliseconds(200);
  cy::redis_tier redis(options);
  bool stored = redis.put(key, bytes);
  bool hit = redis.get(key, out);
  std::printf("redis: %s (failures counted: %llu)\n", stored && hit ? "stored and read back" : "unavailable, served as misses",
              static_cast<unsigned long long>(redis.stats().failures));

  std::printf("cache tiers: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
