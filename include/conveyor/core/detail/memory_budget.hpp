// conveyor/core/detail/memory_budget.hpp: the account that keeps the batches a
// pipeline holds, plus its in-memory cache budgets, within memory_budget(bytes).
//
// Why an account and not a fixed split: parallel(autotune) and
// prefetch(autotune) grow at run time, each on its own thread, and the batch
// size is known only once the first batch exists. Each execution stage enrols
// at build time with the fewest batches it can work with, and the consumer is
// a holder of one batch. Each holder's batches are charged at the size it
// measures where it holds them (a stage after prefetch may make the
// consumer's batches larger than the queued ones); each size that grows
// checks that the minimum fits (else a clear error); once the consumer was
// handed a batch, a stage asks for more (grant) and gets what the others
// leave. One mutex: enrol once, grant once per tuning decision, observe once
// per batch per holder (three threads at most, rarely at the same moment).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/buffer_pool.hpp"

namespace conveyor::detail {

class memory_governor {
 public:
  /// What one pipeline thread is charged beyond the batches: its stack's
  /// touched pages, its TLS, its malloc arena's first pages. bench/exec/autotune
  /// saw about 24 KiB of peak RSS per extra worker; 64 KiB leaves room.
  static constexpr std::uint64_t thread_bytes = 64 * 1024;

  /// budget 0: no budget (grants are never cut). reserved: cache budgets.
  /// The consumer is holder 0: the one batch it is handed at a time.
  memory_governor(std::uint64_t budget, std::uint64_t reserved)
      : budget_(budget), reserved_(reserved) {
    if (budget_ != 0 && reserved_ >= budget_)
      throw std::invalid_argument(
          "memory_budget(" + std::to_string(budget_) +
          " bytes) leaves nothing for batches: the in-memory cache tiers of this pipeline "
          "already take " +
          std::to_string(reserved_) + " bytes");
    holders_.push_back(holder{"the consumer's", 0, 1, 0, 0, 0});
  }

  /// A stage that holds between `minimum` and some number of queued batches,
  /// plus `extra` it always holds (a batch in hand), and runs `threads`
  /// threads (at least; see set_threads). Build time only.
  std::size_t enrol(std::string what, std::uint64_t minimum, std::uint64_t extra,
                    std::uint64_t threads) {
    std::lock_guard lock(mutex_);
    holders_.push_back(holder{std::move(what), minimum, extra, minimum, threads, threads});
    return holders_.size() - 1;
  }
  /// Holder `id` now runs `threads` threads (a parallel stage that grew).
  void set_threads(std::size_t id, std::uint64_t threads) {
    std::lock_guard lock(mutex_);
    holders_[id].threads = std::max(threads, holders_[id].min_threads);
  }
  /// The most threads holder `id` could run if each also held one queued
  /// batch (parallel's window holds one per worker at least). No limit: the
  /// largest uint64.
  [[nodiscard]] std::uint64_t most_threads(std::size_t id) {
    std::lock_guard lock(mutex_);
    if (!limited()) return std::numeric_limits<std::uint64_t>::max();
    auto bytes = size_of(id);
    if (bytes == 0) return holders_[id].min_threads;
    std::uint64_t others = fixed_charge(id, false);
    std::uint64_t free = budget_ - reserved_;
    return free > others ? (free - others) / (bytes + thread_bytes) : 0;
  }

  [[nodiscard]] bool limited() const noexcept { return budget_ != 0; }
  [[nodiscard]] std::uint64_t budget() const noexcept { return budget_; }
  [[nodiscard]] std::uint64_t reserved() const noexcept { return reserved_; }
  /// The largest batch measured so far anywhere (0 before the first).
  [[nodiscard]] std::uint64_t batch_bytes() const {
    std::lock_guard lock(mutex_);
    return largest();
  }
  /// Changes whenever a measured size grows, and when the consumer is handed
  /// its first batch: a stage re-asks for its grant then.
  [[nodiscard]] std::uint32_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  /// True once the consumer has been handed a batch (observe_delivered):
  /// until then a stage holds its minimum, since a stage after it (on the
  /// consumer's side) may make batches larger than the ones it saw.
  [[nodiscard]] bool measured() const noexcept {
    return delivered_.load(std::memory_order_acquire);
  }

  /// The batch the consumer is handed (epoch_run, once per batch): measured
  /// after every stage, so a stage after prefetch that makes batches larger
  /// is charged for the consumer's batch. The first call lets the stages grow.
  void observe_delivered(std::uint64_t bytes) {
    observe(0, bytes);
    if (delivered_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(mutex_);
    delivered_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

  /// Records the size of one batch holder `id` holds (its thread, once per
  /// batch): its batches are charged at the largest it measured (before it
  /// measured one, at the largest measured anywhere). A size that grows
  /// checks that the pipeline's minimum fits and throws
  /// std::invalid_argument naming the numbers if not.
  void observe(std::size_t id, std::uint64_t bytes) {
    std::lock_guard lock(mutex_);
    auto& h = holders_[id];
    if (bytes <= h.bytes) return;
    auto before = h.bytes;
    h.bytes = bytes;
    if (limited()) {
      try {
        check_minimum();
      } catch (...) {
        h.bytes = before;  // a later, smaller batch is checked again
        throw;
      }
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

  /// Holder `id` wants `wanted` queued batches: returns what fits beside the
  /// others' current holdings (at least its minimum) and records it.
  std::uint64_t grant(std::size_t id, std::uint64_t wanted) {
    std::lock_guard lock(mutex_);
    auto& me = holders_[id];
    std::uint64_t granted = std::max(wanted, me.minimum);
    granted = std::max(std::min(granted, room(id)), me.minimum);
    me.current = granted;
    return granted;
  }
  /// The most queued batches holder `id` could be granted now (no limit:
  /// the largest uint64).
  [[nodiscard]] std::uint64_t most(std::size_t id) {
    std::lock_guard lock(mutex_);
    return room(id);
  }

 private:
  struct holder {
    std::string what;
    std::uint64_t minimum, extra, current, min_threads, threads;
    std::uint64_t bytes = 0;  // the largest batch it measured; 0: none yet
  };

  // Caller holds mutex_ (as for every helper below).
  [[nodiscard]] std::uint64_t largest() const {
    std::uint64_t most = 0;
    for (const auto& h : holders_) most = std::max(most, h.bytes);
    return most;
  }
  // What one batch of holder `id` is charged: its own measure, else the largest.
  [[nodiscard]] std::uint64_t size_of(std::size_t id) const {
    return holders_[id].bytes != 0 ? holders_[id].bytes : largest();
  }

  // Bytes held by all but holder `id`'s queue: every holder's extra (the
  // consumer's batch among them), the others' queues, and the threads
  // (holder id's own too when `own_threads`).
  [[nodiscard]] std::uint64_t fixed_charge(std::size_t id, bool own_threads) const {
    std::uint64_t bytes = 0, threads = 0;
    for (std::size_t i = 0; i < holders_.size(); ++i) {
      bytes += (holders_[i].extra + (i == id ? 0 : holders_[i].current)) * size_of(i);
      threads += (i == id && !own_threads) ? 0 : holders_[i].threads;
    }
    return bytes + threads * thread_bytes;
  }

  [[nodiscard]] std::uint64_t room(std::size_t id) const {
    if (!limited()) return std::numeric_limits<std::uint64_t>::max();
    auto bytes = size_of(id);
    if (bytes == 0) return holders_[id].minimum;  // nothing measured yet: hold the least
    std::uint64_t others = fixed_charge(id, true);
    std::uint64_t free = budget_ - reserved_;
    return free > others ? (free - others) / bytes : 0;
  }

  void check_minimum() const {
    std::uint64_t batches = 0, bytes = 0, threads = 0;
    const std::uint64_t most = largest();
    bool uniform = true;
    for (const auto& h : holders_) {
      batches += h.minimum + h.extra;
      bytes += (h.minimum + h.extra) * (h.bytes != 0 ? h.bytes : most);
      threads += h.min_threads;
      uniform = uniform && (h.bytes == 0 || h.bytes == most);
    }
    if (bytes + threads * thread_bytes + reserved_ <= budget_) return;
    std::string message = "memory_budget(" + std::to_string(budget_) + " bytes) ";
    if (most + reserved_ > budget_) {
      message += "is smaller than one batch: a batch measures " + std::to_string(most) + " bytes";
    } else {
      std::string parts;
      for (const auto& h : holders_) {
        if (h.minimum + h.extra == 0) continue;
        parts += (parts.empty() ? "" : ", ") + h.what + " " + std::to_string(h.minimum + h.extra);
        if (!uniform) parts += " x " + std::to_string(h.bytes != 0 ? h.bytes : most) + " bytes";
      }
      message += "is too small: ";
      if (uniform) message += "a batch measures " + std::to_string(most) + " bytes and ";
      message += "this pipeline holds at least " + std::to_string(batches) + " (" + parts + "), " +
                 std::to_string(bytes) + " bytes, and runs " + std::to_string(threads) +
                 " threads charged " + std::to_string(thread_bytes) + " bytes each";
    }
    if (reserved_ != 0)
      message += ", plus " + std::to_string(reserved_) + " bytes of in-memory cache tiers";
    throw std::invalid_argument(message);
  }

  std::uint64_t budget_;
  std::uint64_t reserved_;
  mutable std::mutex mutex_;
  std::vector<holder> holders_;
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<bool> delivered_{false};
};

/// What the heap takes for a buffer of `capacity` bytes: a large one (128
/// KiB and up, glibc's first mmap threshold) whole pages plus a page of
/// header and alignment; a small one its bytes plus a 16-byte header.
constexpr std::uint64_t allocation_bytes(std::uint64_t capacity) noexcept {
  if (capacity == 0) return 0;
  constexpr std::uint64_t page = 4096;
  if (capacity >= (std::uint64_t{128} << 10)) return (capacity + page - 1) / page * page + page;
  return capacity + 16;
}

/// The host memory a batch holds: the buffers of its index column and its
/// host-accessible columns (pageable or pinned) as allocated (a pool's size
/// class, not the bytes used: pageable_pool rounds up to a power of two,
/// which can nearly double a column), plus the heap's overhead
/// (allocation_bytes). Device columns live in GPU memory, which
/// memory_budget does not cover. A type without columns() counts its
/// size_bytes(), or 0 without one.
template <class Batch>
std::uint64_t host_bytes(const Batch& batch) noexcept {
  if constexpr (requires {
                  batch.columns();
                  batch.indices();
                }) {
    auto column_bytes = [](const auto& column) -> std::uint64_t {
      using column_type = std::remove_cvref_t<decltype(column)>;
      if constexpr (requires { column_type::space; }) {
        if constexpr (!host_accessible(column_type::space)) return 0;
      }
      if constexpr (requires { column.buffer().capacity(); }) {
        return allocation_bytes(
            std::max<std::uint64_t>(column.buffer().capacity(), column.size_bytes()));
      } else {
        return allocation_bytes(column.size_bytes());
      }
    };
    // The index column's buffer is not exposed: its size class as
    // pageable_pool rounds it (powers of two from 256 bytes).
    std::uint64_t index_bytes = std::uint64_t{batch.indices().size()} * sizeof(std::uint64_t);
    std::uint64_t index_class =
        index_bytes == 0 ? 0 : std::max<std::uint64_t>(256, std::bit_ceil(index_bytes));
    return allocation_bytes(index_class) +
           std::apply([&](const auto&... c) { return (std::uint64_t{0} + ... + column_bytes(c)); },
                      batch.columns());
  } else if constexpr (requires { batch.size_bytes(); }) {
    return batch.size_bytes();
  } else {
    return 0;
  }
}

/// The memory a cache tier keeps resident: its capacity, unless it keeps its
/// values elsewhere (a disk tier has a directory(): it counts the bound of its
/// write-behind queue, the values it holds in memory on their way to disk;
/// Redis reports 0); a tiered stack sums its own tiers.
template <class Tier>
std::uint64_t resident_bytes(const Tier& tier);

template <class Tier, std::size_t... I>
std::uint64_t resident_bytes_of_parts(const Tier& tier, std::index_sequence<I...>) {
  return (std::uint64_t{0} + ... + resident_bytes(tier.template tier<I>()));
}

template <class T>
struct tier_parameter_count : std::integral_constant<std::size_t, 0> {};
template <template <class...> class Tpl, class... Ts>
struct tier_parameter_count<Tpl<Ts...>> : std::integral_constant<std::size_t, sizeof...(Ts)> {};

template <class Tier>
std::uint64_t resident_bytes(const Tier& tier) {
  constexpr std::size_t parts = tier_parameter_count<Tier>::value;
  if constexpr (parts > 0 && requires { tier.template tier<0>(); }) {
    return resident_bytes_of_parts(tier, std::make_index_sequence<parts>{});
  } else if constexpr (requires { tier.directory(); }) {
    if constexpr (requires { tier.write_behind_bytes(); })
      return static_cast<std::uint64_t>(tier.write_behind_bytes());
    return 0;
  } else {
    return static_cast<std::uint64_t>(tier.capacity_bytes());
  }
}

/// The bytes a cache stage keeps in memory; 0 for any other stage.
template <class Stage>
std::uint64_t stage_resident_bytes(const Stage& stage) {
  if constexpr (requires { stage.tier->capacity_bytes(); }) {
    return stage.tier ? resident_bytes(*stage.tier) : 0;
  } else {
    return 0;
  }
}

/// The bytes the cache stages among `stages` keep in memory.
template <class... Stages>
std::uint64_t cache_resident_bytes(const std::tuple<Stages...>& stages) {
  return std::apply(
      [](const auto&... stage) { return (std::uint64_t{0} + ... + stage_resident_bytes(stage)); },
      stages);
}

}  // namespace conveyor::detail
