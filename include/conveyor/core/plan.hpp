// conveyor/core/plan.hpp: which records each batch of an epoch holds.
//
// An index plan is a pure function of (spec, record count, epoch): batch b of
// rank r holds the same records on every run, whatever the number of worker
// threads or the timing. Nothing is materialized: the i-th record of an epoch
// is computed on demand by a keyed bijection (a Feistel network over the next
// power of four, with cycle walking), so a shuffle of a billion records costs
// O(1) memory and O(batch) work per batch.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "conveyor/core/detail/hash.hpp"

namespace conveyor {

/// A bijection of [0, n) chosen by `key`. O(1) memory; operator() costs a few
/// dozen multiplications (4 Feistel rounds, about 2 walks on average, never
/// more than 4 on average because the domain is below 4n).
class keyed_permutation {
 public:
  keyed_permutation() = default;
  keyed_permutation(std::uint64_t size, std::uint64_t key) : size_(size), key_(key) {
    unsigned bits = size <= 1 ? 2 : static_cast<unsigned>(std::bit_width(size - 1));
    half_bits_ = (bits + 1) / 2;
    if (half_bits_ == 0) half_bits_ = 1;
    half_mask_ = half_bits_ >= 32 ? 0xffffffffull : ((std::uint64_t{1} << half_bits_) - 1);
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

  /// The image of i (< size()).
  [[nodiscard]] std::uint64_t operator()(std::uint64_t i) const noexcept {
    std::uint64_t x = i;
    do {
      x = encrypt(x);
    } while (x >= size_);  // cycle walking: stays inside [0, n) and stays a bijection
    return x;
  }

 private:
  [[nodiscard]] std::uint64_t encrypt(std::uint64_t x) const noexcept {
    std::uint64_t left = x >> half_bits_;
    std::uint64_t right = x & half_mask_;
    for (std::uint64_t round = 0; round < 4; ++round) {
      std::uint64_t f = detail::mix64(right ^ detail::mix64(key_ + round * 0x9e3779b97f4a7c15ull)) & half_mask_;
      std::uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  std::uint64_t size_ = 0;
  std::uint64_t key_ = 0;
  unsigned half_bits_ = 1;
  std::uint64_t half_mask_ = 1;
};

/// How records are ordered within an epoch.
enum class order_kind : std::uint8_t { sequential, shuffle, block_shuffle };
/// What shard(rank, world) does with the records that do not divide evenly.
enum class shard_remainder : std::uint8_t {
  drop,  ///< each rank gets floor(n / world) records; the rest of the epoch is unused
  pad    ///< each rank gets ceil(n / world); the last rank wraps to the epoch's start
};
/// Which records a rank sees from one epoch to the next (docs/distributed.md).
enum class shard_mode : std::uint8_t {
  /// Each epoch's order is split anew: over the epochs every rank sees every
  /// record, and a per-rank cache hits only about 1/world of the time.
  per_epoch,
  /// Each rank keeps the same records every epoch (a share fixed by the seed
  /// alone) and visits them in a new order each epoch, as DALI's
  /// stick_to_shard: a per-rank cache holds exactly its rank's share. Batches
  /// mix records of one share only, so an epoch's batches are drawn from a
  /// 1/world sample fixed for the whole run.
  sticky
};

namespace detail {
inline constexpr std::uint64_t sticky_share_key = 0x3c6ef372fe94f82bull;  ///< salt of the sticky shares
inline constexpr std::uint64_t sticky_rank_key = 0xa54ff53a5f1d36f1ull;   ///< salt of a rank's inner order

/// The order kinds as a map of positions [0, size) onto [0, size), keyed.
/// epoch_plan uses one over the whole epoch (per_epoch shards) or one over a
/// rank's own share (sticky shards).
class position_order {
 public:
  position_order() = default;
  position_order(order_kind kind, std::uint64_t size, std::uint64_t key, std::uint64_t block)
      : kind_(kind), size_(size), block_(block) {
    if (kind == order_kind::shuffle) {
      permutation_ = keyed_permutation(size, key);
    } else if (kind == order_kind::block_shuffle) {
      if (block == 0) throw std::invalid_argument("block_shuffle: block size is 0");
      block_count_ = (size + block - 1) / block;
      last_block_size_ = size - (block_count_ == 0 ? 0 : (block_count_ - 1) * block);
      block_order_ = keyed_permutation(block_count_, key);
      block_key_ = mix64(key ^ salt::block_key);
      // The slot in which the one short block lands, so positions map in O(1).
      if (block_count_ > 0) {
        short_slot_ = block_count_ - 1;
        for (std::uint64_t slot = 0; slot < block_count_; ++slot)
          if (block_order_(slot) == block_count_ - 1) {
            short_slot_ = slot;
            break;
          }
      }
    }
  }

  [[nodiscard]] std::uint64_t operator()(std::uint64_t q) const noexcept {
    switch (kind_) {
      case order_kind::sequential: return q;
      case order_kind::shuffle: return permutation_(q);
      case order_kind::block_shuffle: break;
    }
    // Walk the permuted block order: slots before short_slot_ hold full blocks.
    std::uint64_t block = block_;
    std::uint64_t slot, within, size;
    std::uint64_t short_begin = short_slot_ * block;
    if (q < short_begin) {
      slot = q / block;
      within = q % block;
    } else if (q < short_begin + last_block_size_) {
      slot = short_slot_;
      within = q - short_begin;
    } else {
      std::uint64_t rest = q - short_begin - last_block_size_;
      slot = short_slot_ + 1 + rest / block;
      within = rest % block;
    }
    std::uint64_t source_block = block_order_(slot);
    size = source_block == block_count_ - 1 ? last_block_size_ : block;
    keyed_permutation inside(size, block_key_ ^ mix64(source_block));
    return source_block * block + inside(within);
  }

 private:
  order_kind kind_ = order_kind::sequential;
  std::uint64_t size_ = 0;
  std::uint64_t block_ = 0;
  keyed_permutation permutation_;
  keyed_permutation block_order_;
  std::uint64_t block_key_ = 0;
  std::uint64_t block_count_ = 0;
  std::uint64_t last_block_size_ = 0;
  std::uint64_t short_slot_ = 0;
};
}  // namespace detail

/// Everything that decides an epoch's order. Built by the plan stages
/// (shuffle, block_shuffle, shard, batch); part of a pipeline's checkpoint.
struct plan_spec {
  order_kind order = order_kind::sequential;
  std::uint64_t seed = 0;
  std::uint64_t block = 0;  ///< block_shuffle's block size in records
  std::uint32_t rank = 0;
  std::uint32_t world = 1;
  shard_remainder remainder = shard_remainder::drop;
  std::uint64_t batch_size = 0;  ///< 0 until batch(n)
  bool drop_last = false;
  shard_mode mode = shard_mode::per_epoch;

  friend constexpr bool operator==(const plan_spec&, const plan_spec&) = default;

  /// A stable 64-bit summary, stored in checkpoints to refuse a mismatched restore.
  /// (per_epoch plans keep the fingerprint they had before shard modes existed.)
  [[nodiscard]] constexpr std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = 0x243f6a8885a308d3ull;
    for (std::uint64_t v : {std::uint64_t(order), seed, block, std::uint64_t(rank), std::uint64_t(world),
                            std::uint64_t(remainder), batch_size, std::uint64_t(drop_last)})
      h = detail::mix64(h ^ v);
    if (mode != shard_mode::per_epoch) h = detail::mix64(h ^ (0x5700ull + std::uint64_t(mode)));
    return h;
  }
};

/// One epoch's plan for one rank. Cheap to construct; thread-safe to query.
class epoch_plan {
 public:
  epoch_plan(const plan_spec& spec, std::uint64_t record_count, std::uint64_t epoch)
      : spec_(spec), records_(record_count), epoch_(epoch) {
    if (spec.world == 0 || spec.rank >= spec.world)
      throw std::invalid_argument("shard: rank " + std::to_string(spec.rank) + " is not below world size " +
                                  std::to_string(spec.world));
    if (spec.batch_size == 0) throw std::invalid_argument("epoch_plan: batch size is 0; add batch(n)");
    std::uint64_t key = detail::mix64(spec.seed ^ detail::mix64(epoch + detail::salt::epoch_key));
    std::uint64_t world = spec.world;
    per_rank_ = spec.remainder == shard_remainder::drop ? records_ / world : (records_ + world - 1) / world;
    if (records_ == 0) per_rank_ = 0;
    if (spec.mode == shard_mode::sticky) {
      // The first n % world ranks own one record more; the share is fixed by
      // the seed, the order within it changes with the epoch.
      std::uint64_t base = records_ / world, extra = records_ % world, rank = spec.rank;
      share_size_ = base + (rank < extra ? 1 : 0);
      share_begin_ = rank * base + std::min(rank, extra);
      if (spec.order == order_kind::shuffle)
        share_of_ = keyed_permutation(records_, detail::mix64(spec.seed ^ detail::sticky_share_key));
      order_ = detail::position_order(spec.order, share_size_,
                                      detail::mix64(key ^ detail::mix64(rank + detail::sticky_rank_key)), spec.block);
    } else {
      order_ = detail::position_order(spec.order, records_, key, spec.block);
    }
    batch_count_ = spec.drop_last ? per_rank_ / spec.batch_size : (per_rank_ + spec.batch_size - 1) / spec.batch_size;
  }

  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] const plan_spec& spec() const noexcept { return spec_; }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }

  /// Records this rank sees in the epoch (equal on every rank).
  [[nodiscard]] std::uint64_t records_per_rank() const noexcept { return per_rank_; }
  /// Batches this rank sees in the epoch (equal on every rank).
  [[nodiscard]] std::uint64_t batch_count() const noexcept { return batch_count_; }
  /// Rows in batch b (the last one may be short unless drop_last).
  [[nodiscard]] std::uint64_t batch_rows(std::uint64_t b) const noexcept {
    std::uint64_t begin = b * spec_.batch_size;
    return std::min(spec_.batch_size, per_rank_ - begin);
  }

  /// The record at position p (< records_per_rank()) of this rank's sequence.
  [[nodiscard]] std::uint64_t record_at(std::uint64_t p) const noexcept {
    if (spec_.mode == shard_mode::sticky) {
      if (share_size_ == 0) return share_record(std::uint64_t{spec_.rank} % records_);  // pad, world > n
      // drop: a share one record larger leaves out a different record each
      // epoch; pad: a share one record smaller repeats its epoch's first.
      return share_record(share_begin_ + order_(p % share_size_));
    }
    std::uint64_t q = std::uint64_t{spec_.rank} * per_rank_ + p;
    if (q >= records_) q %= records_;  // pad: wrap to the start of the epoch (world may exceed n)
    return order_(q);
  }

  /// Sticky shards: the records this rank owns in every epoch (per_epoch: empty).
  [[nodiscard]] std::vector<std::uint64_t> share() const {
    std::vector<std::uint64_t> out;
    if (spec_.mode != shard_mode::sticky) return out;
    out.reserve(share_size_);
    for (std::uint64_t i = 0; i < share_size_; ++i) out.push_back(share_record(share_begin_ + i));
    return out;
  }

  /// Writes the records of batch b into out (size batch_rows(b)).
  void batch_indices(std::uint64_t b, std::span<std::uint64_t> out) const noexcept {
    std::uint64_t begin = b * spec_.batch_size;
    for (std::uint64_t i = 0; i < out.size(); ++i) out[i] = record_at(begin + i);
  }
  [[nodiscard]] std::vector<std::uint64_t> batch_indices(std::uint64_t b) const {
    std::vector<std::uint64_t> out(batch_rows(b));
    batch_indices(b, out);
    return out;
  }

 private:
  // Sticky shards: the record at position i of the fixed arrangement the
  // shares are cut from (a seed-keyed shuffle, or the file order).
  [[nodiscard]] std::uint64_t share_record(std::uint64_t i) const noexcept {
    return spec_.order == order_kind::shuffle ? share_of_(i) : i;
  }

  plan_spec spec_;
  std::uint64_t records_;
  std::uint64_t epoch_;
  detail::position_order order_;  // over the epoch, or (sticky) over this rank's share
  keyed_permutation share_of_;    // sticky shuffle: the seed's arrangement of all records
  std::uint64_t share_begin_ = 0;
  std::uint64_t share_size_ = 0;
  std::uint64_t per_rank_ = 0;
  std::uint64_t batch_count_ = 0;
};

}  // namespace conveyor
