// conveyor/exec/autotune.hpp: the `autotune` tag that parallel(...) and
// prefetch(...) take in place of a number, and the rules they tune by.
//
// `pipe | parallel(autotune) | prefetch(autotune)` lets each stage choose its
// worker count or queue depth from what it measures while the epoch runs:
// the time its consumer waits for it (starved), the wall and CPU time its
// workers spend per batch, and the time its producer waits for room
// (blocked). Each stage decides on its consumer's thread, once per probe (at
// least 8 batches and 50 ms), and stops deciding once it has settled: a
// value that holds for the rest of the run and for later epochs of the same
// pipeline. stats() shows the value and why (tuning_state). Order never
// depends on it: batch b holds the plan's records for b at any worker count.
// See docs/tuning.md.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <thread>

#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>
#endif

#include "conveyor/core/stats.hpp"

namespace conveyor {

/// Pass to parallel(...) or prefetch(...) instead of a number to let the
/// stage choose (see the top of this header).
struct autotune_t {
  explicit constexpr autotune_t() = default;
};
/// parallel(autotune), prefetch(autotune): see the top of this header.
inline constexpr autotune_t autotune{};

namespace detail {

/// CPU time of the calling thread; wall time where the platform has no
/// per-thread clock (the tuner then sees every worker as CPU-bound, the
/// cautious reading).
inline std::chrono::nanoseconds thread_cpu_time() noexcept {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec t{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0)
    return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
#endif
  return std::chrono::steady_clock::now().time_since_epoch();
}

/// The time the calling thread has spent runnable but waiting for a CPU (the
/// second field of /proc/thread-self/schedstat on Linux: other threads or
/// processes held the cores), read through a descriptor opened once per
/// thread; 0 where the platform does not say. A worker's wall time minus this
/// is the time it ran or waited on something else (I/O, a lock): its CPU share
/// of that is what the work needs, whatever the machine's load.
class run_queue_clock {
 public:
  run_queue_clock() noexcept {
#if defined(__linux__)
    fd_ = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
#endif
  }
  run_queue_clock(const run_queue_clock&) = delete;
  run_queue_clock& operator=(const run_queue_clock&) = delete;
  ~run_queue_clock() {
#if defined(__linux__)
    if (fd_ >= 0) ::close(fd_);
#endif
  }
  /// Nanoseconds spent waiting for a CPU since the thread started (0: unknown).
  [[nodiscard]] std::uint64_t waited_ns() const noexcept {
#if defined(__linux__)
    if (fd_ < 0) return 0;
    char text[96];
    auto n = ::pread(fd_, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    char* end = nullptr;
    (void)std::strtoull(text, &end, 10);  // time on a CPU (clock_gettime is finer)
    if (end == text) return 0;
    return std::strtoull(end, nullptr, 10);
#else
    return 0;
#endif
  }

 private:
  int fd_ = -1;
};

/// How long a probe lasts: enough batches and enough time that one slow
/// batch, or a few milliseconds of another process on the core, do not decide.
struct probe_length {
  static constexpr std::uint64_t min_batches = 8;
  static constexpr std::chrono::milliseconds min_time{50};
};

/// A change must raise throughput by this factor to be kept; else the stage
/// goes back to the smaller value (which holds fewer batches).
inline constexpr double tuning_gain = 1.05;
/// Below this share of the probe spent starved, the consumer is never kept waiting.
inline constexpr double starved_threshold = 0.03;
/// Below this share of the probe spent blocked, the producer never waited for room.
inline constexpr double blocked_threshold = 0.03;
/// From this share of their busy time spent waiting for a core (in the run
/// queue), a probe's workers were held back by other threads: other processes
/// held the cores, or there were more workers than cores. Such a probe cannot
/// tell whether a step up to the core count pays.
inline constexpr double queued_threshold = 0.10;

/// What one probe of a parallel stage measured.
struct parallel_probe {
  std::uint64_t batches = 0;
  double wall_s = 0;         ///< probe length
  double starved_s = 0;      ///< the consumer waiting for the next batch in order
  double busy_wall_s = 0;    ///< sum over workers of the time producing batches
  double busy_cpu_s = 0;     ///< the CPU time within busy_wall_s
  double busy_queued_s = 0;  ///< the time within busy_wall_s spent waiting for a CPU
};

/// parallel(autotune)'s rule, as tf.data's AUTOTUNE and Grain frame it: a
/// model proposes, a measurement decides. The model (Little's law) says how
/// many workers keep the consumer fed: per-batch production time over the
/// consumer's per-batch time, capped by the cores the workers would actually
/// use (cores / the CPU share of their busy time not spent waiting for a
/// core: a worker that mostly waits on I/O uses little) and by the memory
/// budget. The step is then measured:
/// kept if throughput rose by tuning_gain, else undone (the machine had no
/// more to give: cpu_bound). Two exceptions. If the consumer no longer
/// waited at the new count, the step is kept (consumer_bound): the consumer,
/// not this stage, set the rate during that probe, and the smaller count
/// starved it. And if the step's workers waited for
/// a core for queued_threshold of their busy time or more, the probe saw
/// other processes' load, not the step (on a loaded 2-core machine one
/// decoder gets the share two would: no gain, and a pipeline settled at one
/// worker then keeps one when the load is gone). Then the stage settles at
/// the smaller of the step and the core count (never below the count before
/// the step): a count that pays on an idle machine, whose only cost under
/// load is its batches' memory, within the budget. Pure: fed probes, returns
/// counts; no clock.
class parallel_tuner {
 public:
  parallel_tuner(unsigned start, unsigned max_workers, unsigned cores) noexcept
      : current_(std::max(1u, std::min(start, max_workers))),
        max_(std::max(1u, max_workers)),
        cores_(std::max(1u, cores)) {}

  [[nodiscard]] unsigned workers() const noexcept { return current_; }
  [[nodiscard]] tuning_state state() const noexcept { return state_; }
  [[nodiscard]] bool settled() const noexcept { return state_ != tuning_state::searching; }
  /// Takes a settled value (from an earlier epoch): no further probes.
  void settle(unsigned workers, tuning_state why) noexcept {
    current_ = std::max(1u, std::min(workers, max_));
    state_ = why;
  }

  /// One probe at workers(); `memory_cap`: the most workers the budget
  /// allows now. Returns the worker count for the next probe.
  unsigned decide(const parallel_probe& p, unsigned memory_cap) noexcept {
    if (p.batches == 0 || p.wall_s <= 0) return current_;
    double rate = static_cast<double>(p.batches) / p.wall_s;
    if (tried_more_) {
      tried_more_ = false;
      if (rate < best_rate_ * tuning_gain) {
        if (p.starved_s / p.wall_s < starved_threshold) {
          // The step fed the consumer (starved at the smaller count, not at
          // this one), yet the rate did not rise: the consumer set it during
          // this probe (on a loaded machine its thread, too, waits for a
          // core). Going back would starve it again: keep the step.
          state_ = tuning_state::consumer_bound;
          return current_;
        }
        bool held_back = p.busy_wall_s > 0 && p.busy_queued_s >= p.busy_wall_s * queued_threshold;
        current_ = held_back ? std::max(best_workers_, std::min(current_, cores_)) : best_workers_;
        state_ = tuning_state::cpu_bound;
        return current_;
      }
    }
    best_workers_ = current_;
    best_rate_ = rate;
    double starved = p.starved_s / p.wall_s;
    if (starved < starved_threshold) {
      state_ = tuning_state::consumer_bound;
      return current_;
    }
    double batches = static_cast<double>(p.batches);
    double produce = p.busy_wall_s / batches;  // one worker, one batch
    double consume = std::max(p.wall_s - p.starved_s, p.wall_s * 1e-3) /
                     batches;  // the consumer's own time per batch
    double needed = std::ceil(produce / consume * 1.25);
    // The share of a worker's time that needs a core: CPU time over the time
    // it was not merely waiting for one (on a loaded machine a decoder waits
    // in the run queue; that is not I/O, and more workers would not help).
    double not_queued = std::max(p.busy_wall_s - p.busy_queued_s, p.busy_cpu_s);
    double cpu_share = not_queued > 0 ? std::clamp(p.busy_cpu_s / not_queued, 0.01, 1.0) : 1.0;
    double cpu_cap = std::ceil(static_cast<double>(cores_) / cpu_share);
    double proposal = std::max(needed, static_cast<double>(current_) + 1);
    unsigned cap = std::min({max_, std::max(1u, memory_cap), to_unsigned(cpu_cap)});
    unsigned next = std::min(cap, to_unsigned(proposal));
    if (next <= current_) {
      if (std::max(1u, memory_cap) <= current_)
        state_ = tuning_state::memory_bound;
      else if (max_ <= current_)
        state_ = tuning_state::at_limit;
      else
        state_ = tuning_state::cpu_bound;
      return current_;
    }
    tried_more_ = true;
    current_ = next;
    return current_;
  }

 private:
  static unsigned to_unsigned(double v) noexcept {
    if (!(v >= 1)) return 1;
    return v >= static_cast<double>(std::numeric_limits<unsigned>::max())
               ? std::numeric_limits<unsigned>::max()
               : static_cast<unsigned>(v);
  }
  unsigned current_;
  unsigned max_;
  unsigned cores_;
  unsigned best_workers_ = 0;
  double best_rate_ = 0;
  bool tried_more_ = false;
  tuning_state state_ = tuning_state::searching;
};

/// What one probe of a prefetch stage measured.
struct prefetch_probe {
  std::uint64_t batches = 0;
  double wall_s = 0;
  double starved_s = 0;  ///< the consumer waiting on an empty queue
  double blocked_s = 0;  ///< the producer waiting on a full queue
};

/// prefetch(autotune)'s rule. A deeper queue helps only when the consumer
/// waits on an empty queue *and* the producer waits on a full one: production
/// comes in bursts the queue is too short to smooth. If the consumer never
/// waits, the stage is consumer-bound; if it waits but the producer never
/// does, upstream is slower on average and depth cannot help. Depth doubles
/// while it pays (starved time falls or throughput rises by tuning_gain),
/// within the budget; a step that does not pay is undone.
class prefetch_tuner {
 public:
  prefetch_tuner(std::size_t start, std::size_t max_depth) noexcept
      : current_(std::max<std::size_t>(1, std::min(start, max_depth))),
        max_(std::max<std::size_t>(1, max_depth)) {}

  [[nodiscard]] std::size_t depth() const noexcept { return current_; }
  [[nodiscard]] tuning_state state() const noexcept { return state_; }
  /// No further probes. Within the epoch it started in, upstream-bound is not
  /// final while the producer never waited (upstream may speed up as a
  /// parallel stage above it tunes); it is after a deeper queue was tried and
  /// did not pay, and when a later epoch starts (settle).
  [[nodiscard]] bool settled() const noexcept { return frozen_; }
  /// Takes a value an earlier epoch ended with: final unless still searching.
  void settle(std::size_t depth, tuning_state why) noexcept {
    current_ = std::max<std::size_t>(1, std::min(depth, max_));
    state_ = why;
    frozen_ = why != tuning_state::searching;
  }

  /// One probe at depth(); `memory_cap`: the deepest queue the budget allows now.
  std::size_t decide(const prefetch_probe& p, std::size_t memory_cap) noexcept {
    if (p.batches == 0 || p.wall_s <= 0) return current_;
    double rate = static_cast<double>(p.batches) / p.wall_s;
    double starved = p.starved_s / p.wall_s;
    if (tried_more_) {
      tried_more_ = false;
      if (rate < best_rate_ * tuning_gain && starved > best_starved_ * 0.75) {
        current_ = best_depth_;
        state_ = tuning_state::upstream_bound;
        frozen_ = true;
        return current_;
      }
    }
    best_depth_ = current_;
    best_rate_ = rate;
    best_starved_ = starved;
    if (starved < starved_threshold) {
      state_ = tuning_state::consumer_bound;
      frozen_ = true;
      return current_;
    }
    if (p.blocked_s / p.wall_s < blocked_threshold) {
      state_ = tuning_state::upstream_bound;
      return current_;
    }
    std::size_t cap = std::min(max_, std::max<std::size_t>(1, memory_cap));
    std::size_t next = std::min(cap, current_ * 2);
    if (next <= current_) {
      state_ = cap < max_ ? tuning_state::memory_bound : tuning_state::at_limit;
      frozen_ = true;
      return current_;
    }
    tried_more_ = true;
    state_ = tuning_state::searching;
    current_ = next;
    return current_;
  }

 private:
  std::size_t current_;
  std::size_t max_;
  std::size_t best_depth_ = 0;
  double best_rate_ = 0;
  double best_starved_ = 0;
  bool tried_more_ = false;
  bool frozen_ = false;
  tuning_state state_ = tuning_state::searching;
};

/// Defaults when the user gives no limit: enough workers for I/O-bound
/// sources on a small machine, enough depth to smooth bursty producers.
inline unsigned default_max_workers() noexcept {
  return std::max(64u, 4 * std::thread::hardware_concurrency());
}
inline constexpr std::size_t default_max_depth = 64;

}  // namespace detail
}  // namespace conveyor
