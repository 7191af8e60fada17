// docs/distributed.md: one pipeline per rank, the two shard modes, and a cache
// per rank vs one cache shared by the ranks. The ranks of a job are processes;
// here both ranks of a world of 2 run in this one process, one after the other,
// so that the example can show (and check) what each rank's cache serves.
#include <unistd.h>

#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/cache/shm_tier.hpp>
#include <conveyor/conveyor.hpp>
#include <cstdio>
#include <memory>
#include <string>

namespace cy = conveyor;

namespace {

constexpr std::uint64_t record_count = 4096;

// Stands for an expensive decoder: the part worth caching.
auto records() {
  return cy::generate<cy::dense<"x", float>>(record_count, 16,
                                             [](std::uint64_t i, std::span<float> row) {
                                               for (std::size_t c = 0; c < row.size(); ++c)
                                                 row[c] = static_cast<float>(i * 16 + c);
                                             });
}

// One rank's pipeline: the same on every rank but for `rank`.
template <class Tier>
auto rank_pipeline(std::uint32_t rank, std::uint32_t world, cy::shard_mode mode,
                   std::shared_ptr<Tier> cache) {
  return records() | cy::shuffle(/*seed=*/42) | cy::shard(rank, world, mode) | cy::batch(64) |
         cy::cache(std::move(cache));
}

// Runs epochs 0 and 1 of one rank and returns the share of epoch 1's records
// its cache served.
template <class Pipe>
double second_epoch_hit_ratio(Pipe& pipe) {
  for (auto& batch : pipe.epoch(0)) (void)batch;
  auto before = cy::cache_stats(pipe);
  for (auto& batch : pipe.epoch(1)) (void)batch;
  auto after = cy::cache_stats(pipe);
  auto hits = after.hits - before.hits, misses = after.misses - before.misses;
  return static_cast<double>(hits) / static_cast<double>(hits + misses);
}

}  // namespace

int main() {
  const std::uint32_t world = 2;
  bool ok = true;

  // A cache per rank (here a memory tier; a disk tier per rank is the same):
  // with per_epoch shards each rank reads other records every epoch.
  for (auto mode : {cy::shard_mode::per_epoch, cy::shard_mode::sticky}) {
    for (std::uint32_t rank = 0; rank < world; ++rank) {
      auto own_cache = std::make_shared<cy::memory_tier<>>(64ull << 20);
      auto pipe = rank_pipeline(rank, world, mode, own_cache);
      double ratio = second_epoch_hit_ratio(pipe);
      std::printf("%-9s shards, a cache per rank:  rank %u epoch 2 hit ratio %.2f\n",
                  mode == cy::shard_mode::sticky ? "sticky" : "per_epoch", rank, ratio);
      ok &= mode == cy::shard_mode::sticky ? ratio == 1.0 : ratio < 0.75;
    }
  }

  // One cache shared by the ranks of a node: every process opens the same
  // shared-memory tier by name. Epoch 2 is served whichever rank decoded it.
  const std::string name = "conveyor-docs-ranks-" + std::to_string(::getpid());
  {
    auto rank0 = rank_pipeline(
        0, world, cy::shard_mode::per_epoch,
        std::make_shared<cy::shm_tier>(name, cy::shm_tier_options{.capacity_bytes = 64ull << 20}));
    auto rank1 = rank_pipeline(
        1, world, cy::shard_mode::per_epoch,
        std::make_shared<cy::shm_tier>(name, cy::shm_tier_options{.capacity_bytes = 64ull << 20}));
    for (auto& batch : rank0.epoch(0)) (void)batch;
    for (auto& batch : rank1.epoch(0)) (void)batch;
    for (auto* pipe : {&rank0, &rank1}) {
      auto before = cy::cache_stats(*pipe);
      for (auto& batch : pipe->epoch(1)) (void)batch;
      auto after = cy::cache_stats(*pipe);
      std::printf("per_epoch shards, one shared cache: epoch 2 hits %llu, misses %llu\n",
                  static_cast<unsigned long long>(after.hits - before.hits),
                  static_cast<unsigned long long>(after.misses - before.misses));
      ok &= after.misses == before.misses;
    }
  }
  cy::shm_tier::remove(name);

  std::printf("distributed: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
