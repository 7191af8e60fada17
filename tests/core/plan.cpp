#include <doctest/doctest.h>

#include <algorithm>
#include <conveyor/core/plan.hpp>
#include <numeric>
#include <set>
#include <vector>

namespace cy = conveyor;

namespace {
std::vector<std::uint64_t> epoch_order(const cy::plan_spec& spec, std::uint64_t n, std::uint64_t epoch) {
  cy::epoch_plan plan(spec, n, epoch);
  std::vector<std::uint64_t> out;
  for (std::uint64_t b = 0; b < plan.batch_count(); ++b) {
    auto idx = plan.batch_indices(b);
    out.insert(out.end(), idx.begin(), idx.end());
  }
  return out;
}
bool is_permutation_of_range(std::vector<std::uint64_t> v, std::uint64_t n) {
  if (v.size() != n) return false;
  std::sort(v.begin(), v.end());
  for (std::uint64_t i = 0; i < n; ++i)
    if (v[i] != i) return false;
  return true;
}
}  // namespace

TEST_CASE("keyed_permutation is a bijection for many sizes and keys") {
  for (std::uint64_t n : {1ull, 2ull, 3ull, 5ull, 16ull, 17ull, 100ull, 1000ull, 4097ull, 65536ull, 100003ull}) {
    for (std::uint64_t key : {0ull, 1ull, 42ull, 0xdeadbeefull}) {
      cy::keyed_permutation p(n, key);
      std::vector<std::uint8_t> hit(n, 0);
      for (std::uint64_t i = 0; i < n; ++i) {
        auto j = p(i);
        REQUIRE(j < n);
        REQUIRE(hit[j] == 0);
        hit[j] = 1;
      }
    }
  }
}

TEST_CASE("shuffle differs between epochs and seeds, and repeats for the same ones") {
  cy::plan_spec spec;
  spec.order = cy::order_kind::shuffle;
  spec.seed = 42;
  spec.batch_size = 10;
  auto e0 = epoch_order(spec, 1000, 0);
  auto e1 = epoch_order(spec, 1000, 1);
  CHECK(is_permutation_of_range(e0, 1000));
  CHECK(is_permutation_of_range(e1, 1000));
  CHECK(e0 != e1);
  CHECK(e0 == epoch_order(spec, 1000, 0));
  spec.seed = 43;
  CHECK(epoch_order(spec, 1000, 0) != e0);
  // Not the identity, and not merely a rotation: few fixed points.
  std::vector<std::uint64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  std::size_t fixed = 0;
  for (std::size_t i = 0; i < 1000; ++i) fixed += e0[i] == i;
  CHECK(fixed < 20);
}

TEST_CASE("block_shuffle is a permutation that keeps blocks together") {
  for (std::uint64_t n : {1ull, 7ull, 64ull, 1000ull, 1001ull, 12345ull}) {
    for (std::uint64_t block : {1ull, 3ull, 64ull, 5000ull}) {
      cy::plan_spec spec;
      spec.order = cy::order_kind::block_shuffle;
      spec.block = block;
      spec.seed = 9;
      spec.batch_size = 7;
      auto order = epoch_order(spec, n, 2);
      REQUIRE(is_permutation_of_range(order, n));
      // Every run of `block` consecutive positions aligned to a block boundary
      // of the output comes from at most two source blocks (the short block
      // shifts later ones).
      for (std::size_t start = 0; start < order.size(); start += block) {
        std::set<std::uint64_t> blocks;
        for (std::size_t i = start; i < std::min<std::size_t>(start + block, order.size()); ++i)
          blocks.insert(order[i] / block);
        CHECK(blocks.size() <= 2);
      }
    }
  }
}

TEST_CASE("shards are disjoint, complete and give every rank the same batch count") {
  for (std::uint64_t n : {0ull, 1ull, 10ull, 97ull, 1000ull}) {
    for (std::uint32_t world : {1u, 2u, 3u, 8u}) {
      for (auto remainder : {cy::shard_remainder::drop, cy::shard_remainder::pad}) {
        for (bool drop_last : {false, true}) {
          std::vector<std::uint64_t> all;
          std::set<std::uint64_t> counts;
          for (std::uint32_t rank = 0; rank < world; ++rank) {
            cy::plan_spec spec;
            spec.order = cy::order_kind::shuffle;
            spec.seed = 5;
            spec.rank = rank;
            spec.world = world;
            spec.remainder = remainder;
            spec.batch_size = 4;
            spec.drop_last = drop_last;
            cy::epoch_plan plan(spec, n, 1);
            counts.insert(plan.batch_count());
            auto order = epoch_order(spec, n, 1);
            all.insert(all.end(), order.begin(), order.end());
          }
          CHECK(counts.size() == 1);
          std::set<std::uint64_t> distinct(all.begin(), all.end());
          if (remainder == cy::shard_remainder::drop) {
            CHECK(distinct.size() == all.size());  // disjoint
            if (!drop_last) CHECK(all.size() == n / world * world);
          } else if (!drop_last) {
            CHECK(distinct.size() == n);  // complete
            CHECK(all.size() == (n + world - 1) / world * world);
          }
        }
      }
    }
  }
}

TEST_CASE("batch sizes and drop_last") {
  cy::plan_spec spec;
  spec.batch_size = 4;
  cy::epoch_plan keep(spec, 10, 0);
  CHECK(keep.batch_count() == 3);
  CHECK(keep.batch_rows(2) == 2);
  spec.drop_last = true;
  cy::epoch_plan drop(spec, 10, 0);
  CHECK(drop.batch_count() == 2);
  spec.rank = 2;
  spec.world = 2;
  CHECK_THROWS_AS(cy::epoch_plan(spec, 10, 0), std::invalid_argument);
}

TEST_CASE("plan fingerprints tell plans apart") {
  cy::plan_spec a, b;
  a.batch_size = b.batch_size = 8;
  CHECK(a.fingerprint() == b.fingerprint());
  b.seed = 1;
  CHECK(a.fingerprint() != b.fingerprint());
}
