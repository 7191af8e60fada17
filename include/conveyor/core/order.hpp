// conveyor/core/order.hpp: the plan stages: shuffle, block_shuffle, shard, batch.
//
// They decide which records each batch holds and in what order; they move no
// data. All come before batch(n), which ends the plan: after it the unit that
// flows is a batch. Both call forms work: `shuffle(src, 42)` and
// `src | shuffle(42)`. Order is a pure function of (seed, epoch, rank, world):
// see plan.hpp.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/core/plan.hpp"

namespace conveyor {

namespace detail {
template <class Upstream, class Edit>
auto edit_plan(Upstream&& upstream, Edit edit) {
  auto p = as_pipeline(std::forward<Upstream>(upstream));
  if constexpr (std::is_same_v<decltype(p), invalid_pipeline>) {
    return p;  // an error upstream was reported already
  } else {
    static_assert(!decltype(p)::batched,
                  "conveyor: shuffle, block_shuffle, shard and batch decide the order of records; "
                  "place them before batch(n), not after it.");
    plan_spec spec = p.plan();
    edit(spec);
    return pipeline_access::with_plan<false>(std::move(p), spec);
  }
}
}  // namespace detail

/// shuffle(seed): every epoch visits all records in a new order, a keyed
/// bijection of (seed, epoch). O(1) memory, O(1) work per record.
struct shuffle_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint64_t seed) const {
    return detail::edit_plan(std::forward<Upstream>(upstream), [seed](plan_spec& s) {
      s.order = order_kind::shuffle;
      s.seed = seed;
    });
  }
  auto operator()(std::uint64_t seed) const { return bound_closure<shuffle_fn, std::uint64_t>(seed); }
};
inline constexpr shuffle_fn shuffle{};

/// block_shuffle(block, seed): shuffles the order of blocks of `block`
/// consecutive records and the records within each block, so reads stay
/// within a block's span of the file (locality on disk) while the epoch is
/// still a full permutation.
struct block_shuffle_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint64_t block, std::uint64_t seed) const {
    if (block == 0) throw std::invalid_argument("block_shuffle: block size must be at least 1");
    return detail::edit_plan(std::forward<Upstream>(upstream), [block, seed](plan_spec& s) {
      s.order = order_kind::block_shuffle;
      s.block = block;
      s.seed = seed;
    });
  }
  auto operator()(std::uint64_t block, std::uint64_t seed) const {
    return bound_closure<block_shuffle_fn, std::uint64_t, std::uint64_t>(block, seed);
  }
};
inline constexpr block_shuffle_fn block_shuffle{};

/// shard(rank, world, remainder, mode): rank `rank` of `world` takes its own
/// share of each epoch. Shares are disjoint, and every rank gets the same
/// number of records, hence of batches: `shard_remainder::drop` (default)
/// leaves out n % world records per epoch, `pad` repeats records to fill the
/// ranks that are one short. `shard_mode::per_epoch` (default) cuts each
/// epoch's order into contiguous shares, so a rank sees other records every
/// epoch; `shard_mode::sticky` gives each rank the same records every epoch
/// (a share fixed by the seed) in a new order each epoch, so a per-rank cache
/// holds exactly what its rank reads. `shard(rank, world, mode)` is short for
/// the default remainder. Columns: none (a plan stage, before batch(n)); no
/// allocation, no thread. Throws std::invalid_argument when rank >= world.
/// See docs/distributed.md for the randomness each mode gives.
struct shard_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint32_t rank, std::uint32_t world,
                  shard_remainder remainder = shard_remainder::drop,
                  shard_mode mode = shard_mode::per_epoch) const {
    if (world == 0 || rank >= world)
      throw std::invalid_argument("shard: rank " + std::to_string(rank) + " must be below world size " +
                                  std::to_string(world));
    return detail::edit_plan(std::forward<Upstream>(upstream), [=](plan_spec& s) {
      s.rank = rank;
      s.world = world;
      s.remainder = remainder;
      s.mode = mode;
    });
  }
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint32_t rank, std::uint32_t world, shard_mode mode) const {
    return (*this)(std::forward<Upstream>(upstream), rank, world, shard_remainder::drop, mode);
  }
  auto operator()(std::uint32_t rank, std::uint32_t world, shard_remainder remainder = shard_remainder::drop,
                  shard_mode mode = shard_mode::per_epoch) const {
    return bound_closure<shard_fn, std::uint32_t, std::uint32_t, shard_remainder, shard_mode>(rank, world,
                                                                                              remainder, mode);
  }
  auto operator()(std::uint32_t rank, std::uint32_t world, shard_mode mode) const {
    return (*this)(rank, world, shard_remainder::drop, mode);
  }
};
inline constexpr shard_fn shard{};

/// batch(n, drop_last): groups each rank's sequence into batches of n rows;
/// the last one is short unless drop_last. After batch, stages see batches.
struct batch_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint64_t size, bool drop_last = false) const {
    if (size == 0) throw std::invalid_argument("batch: size must be at least 1");
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    if constexpr (std::is_same_v<decltype(p), invalid_pipeline>) {
      return p;  // an error upstream was reported already
    } else {
      static_assert(!decltype(p)::batched, "conveyor: batch(n) appears twice in this pipeline; keep one.");
      plan_spec spec = p.plan();
      spec.batch_size = size;
      spec.drop_last = drop_last;
      return detail::pipeline_access::with_plan<true>(std::move(p), spec);
    }
  }
  auto operator()(std::uint64_t size, bool drop_last = false) const {
    return bound_closure<batch_fn, std::uint64_t, bool>(size, drop_last);
  }
};
inline constexpr batch_fn batch{};

}  // namespace conveyor
