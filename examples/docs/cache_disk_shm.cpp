// docs/cache-disk-shm.md: a disk tier under a shared-memory tier, a lookup
// that promotes a disk hit into shared memory. A first disk tier stores the
// record and closes (its destructor flushes); the quoted code reopens the
// directory, finds the record on disk and copies it into shared memory.
// Checks the outcome; exits 1 if anything is off. Laid out as the page quotes it.
// clang-format off
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/shm_tier.hpp>
namespace cy = conveyor;
// clang-format on

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <span>
#include <string>

int main() {
  const std::uint64_t dataset_fingerprint = 1, chain_fingerprint = 2, record_index = 42;
  const std::string text = "decoded record 42";
  const auto bytes = std::as_bytes(std::span(text.data(), text.size()));
  const auto cache_dir =
      std::filesystem::temp_directory_path() / ("conveyor-docs-disk-shm-" + std::to_string(::getpid()));
  const std::string shm_name = "conveyor-docs-dea-" + std::to_string(::getpid());
  {
    cy::disk_tier earlier(cache_dir / "dea");
    if (!earlier.put({dataset_fingerprint, chain_fingerprint, record_index}, bytes)) return 1;
  }  // flushed and closed
  bool ok = true;
  {
// clang-format off
cy::disk_tier disk(cache_dir / "dea", {.capacity_bytes = 20ull << 30});  // 20 GiB
cy::shm_tier shm(shm_name, {.capacity_bytes = 64ull << 20});  // shared by all ranks on the node

cy::cache_key key{dataset_fingerprint, chain_fingerprint, record_index};
cy::byte_buffer value;
if (!shm.get(key, value) && disk.get(key, value)) shm.put(key, value);
if (!disk.available()) std::cerr << "disk cache off: " << disk.unavailable_reason() << "\n";
std::cout << disk.stats().hit_ratio() << "\n";
    // clang-format on
    ok &= disk.available() && disk.stats().hit_ratio() == 1.0;
    ok &= value.size() == text.size() && shm.contains(key);  // promoted into shared memory
  }
  cy::shm_tier::remove(shm_name);
  std::filesystem::remove_all(cache_dir);
  if (!ok) std::printf("FAILED: the disk hit was not found or not promoted\n");
  return ok ? 0 : 1;
}
