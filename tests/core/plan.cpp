#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <initializer_list>
#include <conveyor/conveyor.hpp>
#include <conveyor/core/plan.hpp>
#include <map>
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

TEST_CASE("keyed_permutation maps exactly as its definition (orders are stable across versions)") {
  // The Feistel network written out as documented (4 rounds, round key
  // mix64(key + round * golden ratio), cycle walking): any rewrite of the
  // class must give the very same images, or every shuffled order and
  // checkpoint would change.
  auto reference = [](std::uint64_t n, std::uint64_t key, std::uint64_t i) {
    unsigned bits = n <= 1 ? 2 : static_cast<unsigned>(std::bit_width(n - 1));
    unsigned half = (bits + 1) / 2;
    std::uint64_t mask = half >= 32 ? 0xffffffffull : ((std::uint64_t{1} << half) - 1);
    std::uint64_t x = i;
    do {
      std::uint64_t left = x >> half, right = x & mask;
      for (std::uint64_t round = 0; round < 4; ++round) {
        std::uint64_t f =
            cy::detail::mix64(right ^ cy::detail::mix64(key + round * 0x9e3779b97f4a7c15ull)) & mask;
        std::uint64_t next = left ^ f;
        left = right;
        right = next;
      }
      x = (left << half) | right;
    } while (x >= n);
    return x;
  };
  for (std::uint64_t n : std::initializer_list<std::uint64_t>{1, 2, 7, 1000, 100003, 1ull << 40}) {
    for (std::uint64_t key : {0ull, 5ull, 0x123456789abcdefull}) {
      cy::keyed_permutation p(n, key);
      for (std::uint64_t i : std::initializer_list<std::uint64_t>{0, 1, n / 3, n / 2, n - 1}) {
        if (i >= n) continue;
        CAPTURE(n);
        CAPTURE(key);
        CAPTURE(i);
        CHECK(p(i) == reference(n, key, i));
      }
    }
  }
  // Images pinned as numbers (printed by the class on 2026-12-02): the
  // shuffles of every release so far.
  cy::keyed_permutation small(1000, 42), large(100003, 0x123456789abcdefull);
  CHECK(std::vector<std::uint64_t>{small(0), small(1), small(2), small(3), small(4)} ==
        std::vector<std::uint64_t>{655, 298, 412, 646, 833});
  CHECK(std::vector<std::uint64_t>{large(0), large(1), large(2)} ==
        std::vector<std::uint64_t>{61633, 10978, 48250});
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

namespace {
cy::plan_spec sticky_spec(cy::order_kind order, std::uint32_t rank, std::uint32_t world, cy::shard_remainder remainder,
                          bool drop_last = false) {
  cy::plan_spec spec;
  spec.order = order;
  spec.seed = 9;
  spec.block = 3;
  spec.rank = rank;
  spec.world = world;
  spec.remainder = remainder;
  spec.mode = cy::shard_mode::sticky;
  spec.batch_size = 4;
  spec.drop_last = drop_last;
  return spec;
}
std::set<std::uint64_t> as_set(const std::vector<std::uint64_t>& v) { return {v.begin(), v.end()}; }
}  // namespace

TEST_CASE("sticky shards: the same records every epoch, a new order, equal batch counts, the union is the dataset") {
  for (auto order : {cy::order_kind::sequential, cy::order_kind::shuffle, cy::order_kind::block_shuffle}) {
    for (std::uint64_t n : {0ull, 1ull, 10ull, 97ull, 1000ull}) {
      for (std::uint32_t world : {1u, 2u, 3u, 8u}) {
        for (auto remainder : {cy::shard_remainder::drop, cy::shard_remainder::pad}) {
          CAPTURE(int(order));
          CAPTURE(n);
          CAPTURE(world);
          CAPTURE(int(remainder));
          std::set<std::uint64_t> counts;
          std::vector<std::uint64_t> all_shares;
          std::set<std::uint64_t> seen_any_epoch;
          for (std::uint32_t rank = 0; rank < world; ++rank) {
            auto spec = sticky_spec(order, rank, world, remainder);
            auto share = cy::epoch_plan(spec, n, 0).share();
            all_shares.insert(all_shares.end(), share.begin(), share.end());
            auto owned = as_set(share);
            std::vector<std::vector<std::uint64_t>> orders;
            for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
              cy::epoch_plan plan(spec, n, epoch);
              counts.insert(plan.batch_count());
              CHECK(plan.share() == share);  // fixed by the seed alone
              auto seq = epoch_order(spec, n, epoch);
              CHECK(seq.size() == plan.records_per_rank());
              CHECK(seq == epoch_order(spec, n, epoch));  // a pure function
              auto visited = as_set(seq);
              if (!owned.empty()) {
                for (auto r : visited) CHECK(owned.contains(r));  // only its own share
                // drop: all but at most one of the share; pad: all of it, plus a repeat.
                if (remainder == cy::shard_remainder::pad) CHECK(visited == owned);
                else CHECK(visited.size() + 1 >= owned.size());
              }
              seen_any_epoch.insert(visited.begin(), visited.end());
              orders.push_back(std::move(seq));
            }
            if (order == cy::order_kind::shuffle && n / world >= 8) {
              CHECK(orders[0] != orders[1]);  // a new order each epoch
              // The same set (drop with a share one larger: all but a rotating one).
              if (remainder == cy::shard_remainder::pad || n % world == 0)
                CHECK(as_set(orders[0]) == as_set(orders[1]));
            }
          }
          CHECK(counts.size() == 1);  // every rank, every epoch: the same batch count
          CHECK(is_permutation_of_range(all_shares, n));  // shares are disjoint and cover the dataset
          if (remainder == cy::shard_remainder::pad || n % world == 0)
            CHECK(seen_any_epoch.size() == n);
        }
      }
    }
  }
}

TEST_CASE("sticky shards: per-epoch pad is complete; drop leaves out a rotating record") {
  const std::uint64_t n = 10;
  const std::uint32_t world = 3;  // shares of 4, 3, 3
  std::set<std::uint64_t> pad_epoch;
  for (std::uint32_t rank = 0; rank < world; ++rank) {
    auto order = epoch_order(sticky_spec(cy::order_kind::shuffle, rank, world, cy::shard_remainder::pad), n, 2);
    CHECK(order.size() == 4);
    pad_epoch.insert(order.begin(), order.end());
  }
  CHECK(pad_epoch.size() == n);  // every record in every epoch
  // drop: rank 0 owns 4 records and reads 3 per epoch; over epochs it reads all 4.
  auto spec = sticky_spec(cy::order_kind::shuffle, 0, world, cy::shard_remainder::drop);
  std::set<std::uint64_t> over_epochs;
  for (std::uint64_t epoch = 0; epoch < 32; ++epoch) {
    auto order = epoch_order(spec, n, epoch);
    CHECK(order.size() == 3);
    over_epochs.insert(order.begin(), order.end());
  }
  CHECK(over_epochs == as_set(cy::epoch_plan(spec, n, 0).share()));
}

TEST_CASE("sticky shards of a shuffle are a seeded random subset; per_epoch shares change with the epoch") {
  auto sticky = sticky_spec(cy::order_kind::shuffle, 1, 4, cy::shard_remainder::drop);
  auto share = cy::epoch_plan(sticky, 1000, 0).share();
  CHECK_FALSE(std::is_sorted(share.begin(), share.end()));  // not a contiguous file range
  auto other_seed = sticky;
  other_seed.seed = 10;
  CHECK(cy::epoch_plan(other_seed, 1000, 0).share() != share);
  auto per_epoch = sticky;
  per_epoch.mode = cy::shard_mode::per_epoch;
  CHECK(as_set(epoch_order(per_epoch, 1000, 0)) != as_set(epoch_order(per_epoch, 1000, 1)));
  CHECK(per_epoch.fingerprint() != sticky.fingerprint());
  // per_epoch plans keep their fingerprint from before shard modes (old checkpoints still load).
  std::uint64_t legacy = 0x243f6a8885a308d3ull;
  for (std::uint64_t v : {std::uint64_t(per_epoch.order), per_epoch.seed, per_epoch.block, std::uint64_t(1),
                          std::uint64_t(4), std::uint64_t(per_epoch.remainder), per_epoch.batch_size, std::uint64_t(0)})
    legacy = cy::detail::mix64(legacy ^ v);
  CHECK(per_epoch.fingerprint() == legacy);
}

TEST_CASE("sticky shards through a pipeline: checkpoint mid-epoch and resume to the same remaining batches") {
  auto make = [](std::uint32_t rank) {
    return cy::generate<cy::dense<"x", float>>(103, 1,
                                               [](std::uint64_t i, std::span<float> row) { row[0] = float(i); }) |
           cy::shuffle(5) | cy::shard(rank, 3, cy::shard_mode::sticky) | cy::batch(4);
  };
  static_assert(std::is_same_v<decltype(make(0).plan().mode), cy::shard_mode>);
  CHECK(make(1).plan().mode == cy::shard_mode::sticky);
  std::map<std::uint32_t, std::set<std::uint64_t>> epoch1_sets;
  for (std::uint32_t rank = 0; rank < 3; ++rank) {
    auto pipe = make(rank);
    std::vector<std::uint64_t> full, before, after;
    for (auto& b : pipe.epoch(1)) full.insert(full.end(), b.indices().begin(), b.indices().end());
    cy::pipeline_state state;
    {
      auto run = pipe.epoch(1);
      int taken = 0;
      for (auto& b : run) {
        before.insert(before.end(), b.indices().begin(), b.indices().end());
        if (++taken == 3) break;
      }
      state = run.state();
    }
    auto resumed = make(rank);
    for (auto& b : resumed.resume(state)) after.insert(after.end(), b.indices().begin(), b.indices().end());
    before.insert(before.end(), after.begin(), after.end());
    CHECK(before == full);
    CHECK(full.size() == 103 / 3);
    epoch1_sets[rank] = as_set(full);
    // Epoch 2 of the same rank: the same records.
    std::vector<std::uint64_t> next;
    for (auto& b : pipe.epoch(2)) next.insert(next.end(), b.indices().begin(), b.indices().end());
    auto share = as_set(pipe.plan_of(2).share());
    for (auto r : next) CHECK(share.contains(r));
    for (auto r : full) CHECK(share.contains(r));
  }
  for (std::uint32_t a = 0; a < 3; ++a)
    for (std::uint32_t b = a + 1; b < 3; ++b)
      for (auto r : epoch1_sets[a]) CHECK_FALSE(epoch1_sets[b].contains(r));
}
