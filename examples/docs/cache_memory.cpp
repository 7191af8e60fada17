// docs/cache-memory.md: memory_tier's calls and options, and tiered stacks
// (write-through over a disk tier held by reference, write-back over two
// memory tiers). Checks what each call returns; exits 1 if anything is off.
// Laid out as docs/cache-memory.md quotes it.
// clang-format off
#include <conveyor/cache/memory_tier.hpp>
namespace cy = conveyor;
// clang-format on

#include <unistd.h>

#include <atomic>
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/tiered.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace {
bool ok = true;
void check(bool condition, const char* what) {
  if (!condition) {
    std::printf("FAILED: %s\n", what);
    ok = false;
  }
}
std::atomic<int> evicted{0};
}  // namespace

int main() {
  const std::uint64_t dataset = 1, chain = 2, record = 42;
  const std::string text = "decoded record 42";
  const auto bytes = std::as_bytes(std::span(text.data(), text.size()));
  auto use = [&](const cy::byte_buffer& value) {
    check(value.size() == text.size() &&
              std::string(reinterpret_cast<const char*>(value.data()), value.size()) == text,
          "memory_tier: get returns the bytes put");
  };
  bool hit = false;
  // clang-format off
  {
    cy::memory_tier<> cache(2ull << 30);                 // 2 GiB, S3-FIFO, default sharding
    cy::byte_buffer out;
    cache.put(cy::cache_key{dataset, chain, record}, bytes);   // std::span<const std::byte>
    if (cache.get(cy::cache_key{dataset, chain, record}, out)) use(out);
    hit = cache.stats().hits == 1;
  }
  check(hit, "memory_tier: one hit");

  {
    cy::memory_tier_options options;                     // everything configurable
    options.capacity_bytes = 256 << 20;
    options.shard_count = 8;                             // 0: smallest power of two >= 2 x hardware threads
    options.small_queue_fraction = 0.1;                  // S3-FIFO only
    options.latency_sample_period = 16;                  // time 1 call in 16 per thread
    options.on_evict = [](const cy::cache_key&, std::span<const std::byte>) { ++evicted; };  // under the shard lock: keep it short
    options.use_arena = true;                            // entries in 2 MiB chunks, freed blocks reused (false: operator new)
    options.huge_pages = true;                           // ask for THP (declined if slow to fault in)
    options.prefault_chunks = true;                      // one MADV_POPULATE_WRITE per chunk
    cy::memory_tier<cy::eviction::sieve> sieve_cache(std::move(options));
    // clang-format on
    check(sieve_cache.shard_count() == 8, "memory_tier_options: 8 shards");
    // 2 MiB values into 256 MiB: evictions, each reported to on_evict.
    const std::vector<std::byte> big(2 << 20, std::byte{7});
    for (std::uint64_t r = 0; r < 200; ++r)
      (void)sieve_cache.put(cy::cache_key{dataset, chain, r}, big);
    check(sieve_cache.size_bytes() <= sieve_cache.capacity_bytes(),
          "memory_tier: within its budget");
    check(evicted.load() > 0 &&
              static_cast<std::uint64_t>(evicted.load()) == sieve_cache.stats().evictions,
          "on_evict: called once per eviction");
    // Values above 256 KiB get their own mappings, charged to the budget.
    const auto arena = sieve_cache.arena_stats();
    check(arena.large_bytes > 0 && arena.large_bytes <= sieve_cache.size_bytes(),
          "arena: large values in their own mappings, within the budget");
  }

  const cy::cache_key key{dataset, chain, record};
  cy::byte_buffer out;
  auto dir = std::filesystem::temp_directory_path() /
             ("conveyor-docs-memory-" + std::to_string(::getpid()));
  // clang-format off
  {
    cy::disk_tier disk(dir);                                     // some other tier, held by reference
    cy::tiered cache(cy::memory_tier<>(2ull << 30), disk);      // tiered<memory_tier<>, disk_tier&>
    cy::tiered wb(cy::write_policy::write_back,
                  cy::memory_tier<>(1ull << 30), cy::memory_tier<cy::eviction::lru>(8ull << 30));
    wb.put(key, bytes);
    wb.get(key, out);
    auto lower = wb.tier<1>().stats();                           // one tier's own view
    // clang-format on
    // Write-back: the value is in the top tier only; the lower one saw nothing.
    check(out.size() == text.size() && wb.tier<0>().contains(key) && lower.puts == 0,
          "tiered write-back: the top tier only");
    // Write-through (the default): both tiers get the value.
    check(cache.put(key, bytes) && cache.tier<0>().contains(key) && disk.contains(key),
          "tiered write-through: memory and disk");
    cache.tier<0>().erase(key);
    check(cache.get(key, out) && cache.tier<0>().contains(key),
          "tiered: a disk hit is promoted to memory");
  }
  std::filesystem::remove_all(dir);
  {
    cy::memory_tier<> upper(1 << 20);
    bool no_write_since = true;  // tiered: the key's write generation is unchanged
    bool stored = upper.put_if(key, bytes, [&] { return no_write_since; });
    no_write_since = false;
    bool stored_again = upper.put_if(key, bytes, [&] { return no_write_since; });
    std::vector<cy::cache_key> keys{key, cy::cache_key{dataset, chain, record + 1}};
    std::vector<std::span<const std::byte>> values{bytes, bytes};
    std::vector<std::uint8_t> kept(keys.size());
    auto second_only = [](std::size_t i) { return i == 1; };
    upper.put_many_if(keys, values, second_only, kept);  // kept == {0, 1}
    check(stored && !stored_again && upper.contains(key),
          "put_if: stored only while the condition holds, nothing erased when it does not");
    check(kept == std::vector<std::uint8_t>{0, 1} && upper.contains(keys[1]),
          "put_many_if: value i stored only if keep(i)");
  }

  std::printf("cache_memory: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
