// docs/cache-stage.md: the DEA pipeline with a memory + disk cache stack.
// Self-contained: 512 DEA-like records (names, a birthday, a 1024-bit filter)
// written to a temporary TSV, the disk tier in a temporary directory. Checks
// that epoch 0 fills the cache, later epochs are served from it without
// calling upstream, and every epoch delivers the same values; exits 1 otherwise.
// Laid out as docs/cache-stage.md quotes it.
// clang-format off
#include <conveyor/conveyor.hpp>
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/cache/tiered.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
namespace cy = conveyor;
// clang-format on

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "dea_like_records.hpp"

namespace {

// Each record's x and y sums, by record index, per epoch: epochs must agree.
std::vector<double> seen(512 * 2);
std::uint64_t mismatches = 0, rows = 0;
template <class Batch>
void train_step(const Batch& batch) {
  const auto& x = batch.template get<"x">();
  const auto& y = batch.template get<"y">();
  for (std::size_t r = 0; r < batch.rows(); ++r) {
    double sx = 0, sy = 0;
    for (float v : x.row(r)) sx += v;
    for (float v : y.row(r)) sy += v;
    auto record = batch.indices()[r];
    if (batch.info().epoch == 0) {
      seen[record * 2] = sx;
      seen[record * 2 + 1] = sy;
    } else if (seen[record * 2] != sx || seen[record * 2 + 1] != sy) {
      ++mismatches;
    }
    ++rows;
  }
}
}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-docs-cache-" + std::to_string(::getpid()));
  const auto path = docs_example::write_records(dir, 512);
  const auto cache_dir = dir / "cache";
  bool ok = true;
  {
    // clang-format off
    cy::disk_tier disk(cache_dir);  // must outlive the stack below (held by reference)
    auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>(
        cy::write_policy::write_back, cy::memory_tier<>(2ull << 30), disk);

    auto pipe = cy::tsv_file(path) | cy::shuffle(42) | cy::batch(256)
              | cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                           cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">)
              | cy::cache(stack)          // or cy::cache(cy::memory_tier<>(2ull << 30))
              | cy::parallel(2) | cy::prefetch(4);

    for (std::uint64_t epoch = 0; epoch < 20; ++epoch)
      for (auto& batch : pipe.epoch(epoch)) train_step(batch);
    std::cout << pipe.stats();            // has a "cache" row: rows, busy time, latency
    std::cout << cy::cache_stats(pipe);   // hits, misses, invalid, stored, tier failures
    // clang-format on

    // The counts: epoch 0 misses every record and stores it; epochs 1-19 hit
    // every record and never call upstream (2 batches of 256 in epoch 0).
    auto counts = cy::cache_stats(pipe);
    ok &= counts.misses == 512 && counts.stored == 512 && counts.hits == 19 * 512 &&
          counts.invalid == 0 && counts.upstream_calls == 2 && counts.tier_errors == 0;
    // Write-back: every value is in the memory tier (nothing was evicted).
    ok &= stack->tier<0>().entry_count() == 512;
  }
  ok &= rows == 20 * 512 && mismatches == 0;
  std::filesystem::remove_all(dir);
  std::printf("\ncache_pipeline: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
