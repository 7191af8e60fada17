// conveyor/exec/prefetch.hpp: prefetch(depth) runs everything upstream on a
// background thread, up to `depth` batches ahead of the consumer;
// prefetch(autotune) chooses the depth while the epoch runs.
//
// Call forms: `prefetch(pipe, depth)`, `pipe | prefetch(depth)`,
// `prefetch(pipe, autotune)`, `pipe | prefetch(autotune)` and
// `pipe | prefetch(autotune, max_depth)` (default max 64). Columns: unchanged.
// Memory: at most depth + 2 batches alive (depth queued, one being produced,
// one held by the consumer); the queue's slots (empty optionals) are
// allocated once for the largest depth. Under memory_budget(bytes) the depth
// is what the budget allows beside the other stages, and one batch is queued
// until the consumer was handed the first one (measured there). Thread: one std::thread per epoch
// run, started by begin(); autotune decides on the consumer's thread once per probe (see
// exec/autotune.hpp), nothing per record. Errors: an exception upstream is
// delivered after the batches produced before it, on the consumer's thread; a
// budget too small for the pipeline's minimum is a std::invalid_argument naming
// the numbers, delivered the same way. Early exit: destroying the epoch run
// cancels the queue and joins the thread; the thread finishes at most the
// batch it is producing.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/memory_budget.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/exec/autotune.hpp"
#include "conveyor/exec/spsc_ring.hpp"

namespace conveyor {

namespace detail {

/// What prefetch(...) was given: a fixed depth, or autotune up to a limit.
struct prefetch_options {
  std::size_t depth = 1;  ///< the fixed depth (autotune: the largest)
  bool autotune = false;
};

template <batch_stream Up>
class prefetch_stream {
 public:
  using batch_type = typename Up::batch_type;

  prefetch_stream(Up up, prefetch_options options, stage_counters& counters,
                  std::shared_ptr<memory_governor> memory)
      : up_(std::move(up)),
        options_(options),
        counters_(&counters),
        memory_(std::move(memory)),
        tuner_(2, options.depth) {
    if (!memory_) memory_ = std::make_shared<memory_governor>(0, 0);
    if (options_.autotune) {
      auto earlier = counters.tuning.load(std::memory_order_relaxed);
      auto depth =
          static_cast<std::size_t>(counters.queue_capacity.load(std::memory_order_relaxed));
      // A later epoch keeps the depth an earlier one settled on (also an
      // upstream-bound one: the parallel stage above has settled by then), so
      // the values found in the first epoch stay.
      if (earlier != tuning_state::fixed && earlier != tuning_state::searching && depth != 0)
        tuner_.settle(depth, earlier);
      else if (depth != 0)
        tuner_ = prefetch_tuner(depth, options_.depth);
    }
    wanted_.store(options_.autotune ? tuner_.depth() : options_.depth, std::memory_order_relaxed);
    // The batch the producer holds while it waits for room counts as well.
    holder_ = memory_->enrol("prefetch queue and its producer's batch",
                             options_.autotune ? 1 : options_.depth, 1, 1);
  }
  prefetch_stream(prefetch_stream&& other) noexcept
      : up_(std::move(other.up_)),
        options_(other.options_),
        counters_(other.counters_),
        memory_(std::move(other.memory_)),
        tuner_(other.tuner_),
        holder_(other.holder_),
        wanted_(other.wanted_.load(std::memory_order_relaxed)) {}
  ~prefetch_stream() { stop(); }

  void start(const epoch_plan& plan, std::uint64_t first) {
    up_.start(plan, first);
    ring_ = std::make_unique<spsc_ring<batch_type>>(options_.depth);
    seen_generation_ = memory_->generation();
    apply_depth();
    counters_->tuning.store(options_.autotune ? tuner_.state() : tuning_state::fixed,
                            std::memory_order_relaxed);
    probe_restart(clock::now());
    worker_ = std::thread([this] { produce(); });
  }

  std::optional<batch_type> next() {
    trace_span waiting(counters_->trace, span_kind::wait_upstream);
    auto begin = clock::now();
    counters_->sample_queue(ring_->size());
    auto item = ring_->pop();
    auto waited = clock::now() - begin;
    counters_->add_starved(waited);
    probe_starved_ += waited;
    if (!item) {
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return std::nullopt;
    }
    counters_->add_batch(item->rows(), item->size_bytes(), std::chrono::nanoseconds(0));
    if (options_.autotune && !tuner_.settled()) tune();
    return item;
  }

  void stop() noexcept {
    if (ring_) ring_->cancel();
    if (worker_.joinable()) worker_.join();
    if (ring_) up_.stop();
    ring_.reset();
  }

 private:
  // Either thread: the depth wanted, cut to what the budget allows (one batch
  // until the consumer was handed one).
  void apply_depth() {
    std::size_t depth = 1;
    if (!memory_->limited() || memory_->measured())
      depth = static_cast<std::size_t>(
          memory_->grant(holder_, wanted_.load(std::memory_order_acquire)));
    ring_->set_limit(depth);
    counters_->queue_capacity.store(ring_->limit(), std::memory_order_relaxed);
  }

  void probe_restart(clock::time_point now) {
    probe_begin_ = now;
    probe_batches_ = 0;
    probe_starved_ = clock::duration::zero();
    blocked_ns_.store(0, std::memory_order_relaxed);
  }

  // Consumer thread, once per delivered batch while searching.
  void tune() {
    auto now = clock::now();
    if (++probe_batches_ < probe_length::min_batches || now - probe_begin_ < probe_length::min_time)
      return;
    prefetch_probe p;
    p.batches = probe_batches_;
    p.wall_s = std::chrono::duration<double>(now - probe_begin_).count();
    p.starved_s = std::chrono::duration<double>(probe_starved_).count();
    p.blocked_s = static_cast<double>(blocked_ns_.load(std::memory_order_relaxed)) * 1e-9;
    auto room = memory_->most(holder_);
    auto depth =
        tuner_.decide(p, static_cast<std::size_t>(std::min<std::uint64_t>(room, SIZE_MAX)));
    if (depth != wanted_.load(std::memory_order_relaxed)) {
      wanted_.store(depth, std::memory_order_release);
      apply_depth();
    }
    counters_->tuning.store(tuner_.state(), std::memory_order_relaxed);
    probe_restart(clock::now());
  }

  void produce() {
    name_trace_thread("prefetch");
    try {
      for (;;) {
        auto item = up_.next();
        if (!item) break;
        memory_->observe(holder_, host_bytes(*item));
        if (memory_->generation() != seen_generation_) {
          seen_generation_ = memory_->generation();
          apply_depth();
        }
        trace_span handoff(counters_->trace, span_kind::handoff, item->info().epoch,
                           item->info().number);
        auto begin = clock::now();
        bool accepted = ring_->push(std::move(*item));
        auto waited = clock::now() - begin;
        counters_->add_blocked(waited);
        blocked_ns_.fetch_add(static_cast<std::uint64_t>(std::chrono::nanoseconds(waited).count()),
                              std::memory_order_relaxed);
        if (!accepted) break;
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    ring_->close();
  }

  Up up_;
  prefetch_options options_;
  stage_counters* counters_;
  std::shared_ptr<memory_governor> memory_;
  prefetch_tuner tuner_;
  std::size_t holder_ = 0;
  std::atomic<std::size_t> wanted_{1};
  std::unique_ptr<spsc_ring<batch_type>> ring_;
  std::thread worker_;
  std::exception_ptr error_;  // written by the worker before close(), read after pop() sees it
  std::uint32_t seen_generation_ = 0;  // producer thread (after start)
  // Consumer thread only.
  clock::time_point probe_begin_{};
  std::uint64_t probe_batches_ = 0;
  clock::duration probe_starved_{};
  std::atomic<std::uint64_t> blocked_ns_{0};  // producer adds, consumer reads and resets
};

struct prefetch_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{.needs_batches = true, .host_only = false};
  CONVEYOR_STAGE_MESSAGES("prefetch(n)")
  [[nodiscard]] std::string_view name() const noexcept { return "prefetch"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("prefetch"); }
  template <class In>
  using output = In;
  prefetch_options options;

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    auto stream = as_stream(std::forward<Up>(up));
    return prefetch_stream<decltype(stream)>(std::move(stream), options,
                                             env.counters_for("prefetch"), env.memory);
  }
};

}  // namespace detail

struct prefetch_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::size_t depth) const {
    if (depth == 0) throw std::invalid_argument("prefetch: depth must be at least 1");
    return append_stage(std::forward<Upstream>(upstream),
                        detail::prefetch_stage{detail::prefetch_options{depth, false}});
  }
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, autotune_t,
                  std::size_t max_depth = detail::default_max_depth) const {
    if (max_depth == 0)
      throw std::invalid_argument("prefetch(autotune, max_depth): max_depth must be at least 1");
    return append_stage(std::forward<Upstream>(upstream),
                        detail::prefetch_stage{detail::prefetch_options{max_depth, true}});
  }
  auto operator()(std::size_t depth) const {
    return bound_closure<prefetch_fn, std::size_t>(depth);
  }
  auto operator()(autotune_t tag, std::size_t max_depth = detail::default_max_depth) const {
    return bound_closure<prefetch_fn, autotune_t, std::size_t>(tag, max_depth);
  }
};
/// prefetch(depth), prefetch(autotune): see the top of this header.
inline constexpr prefetch_fn prefetch{};

}  // namespace conveyor
