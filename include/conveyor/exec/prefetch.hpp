// conveyor/exec/prefetch.hpp: prefetch(depth) runs everything upstream on a
// background thread, up to `depth` batches ahead of the consumer.
//
// Call forms: `prefetch(pipe, depth)` and `pipe | prefetch(depth)`.
// Columns: unchanged. Memory: at most depth + 2 batches alive (depth queued,
// one being produced, one held by the consumer). Thread: one std::thread per
// epoch run, started by begin(). Errors: an exception upstream is delivered
// after the batches produced before it, on the consumer's thread. Early exit:
// destroying the epoch run cancels the queue and joins the thread; the thread
// finishes at most the batch it is producing.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/exec/spsc_ring.hpp"

namespace conveyor {

namespace detail {

template <batch_stream Up>
class prefetch_stream {
 public:
  using batch_type = typename Up::batch_type;

  prefetch_stream(Up up, std::size_t depth, stage_counters& counters)
      : up_(std::move(up)), depth_(depth), counters_(&counters) {
    counters.queue_capacity.store(depth, std::memory_order_relaxed);
  }
  prefetch_stream(prefetch_stream&& other) noexcept
      : up_(std::move(other.up_)), depth_(other.depth_), counters_(other.counters_) {}
  ~prefetch_stream() { stop(); }

  void start(const epoch_plan& plan, std::uint64_t first) {
    up_.start(plan, first);
    ring_ = std::make_unique<spsc_ring<batch_type>>(depth_);
    worker_ = std::thread([this] { produce(); });
  }

  std::optional<batch_type> next() {
    trace_span waiting(counters_->trace, span_kind::wait_upstream);
    auto begin = clock::now();
    counters_->sample_queue(ring_->size());
    auto item = ring_->pop();
    counters_->add_starved(clock::now() - begin);
    if (!item) {
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return std::nullopt;
    }
    counters_->add_batch(item->rows(), item->size_bytes(), std::chrono::nanoseconds(0));
    return item;
  }

  void stop() noexcept {
    if (ring_) ring_->cancel();
    if (worker_.joinable()) worker_.join();
    if (ring_) up_.stop();
    ring_.reset();
  }

 private:
  void produce() {
    name_trace_thread("prefetch");
    try {
      for (;;) {
        auto item = up_.next();
        if (!item) break;
        trace_span handoff(counters_->trace, span_kind::handoff, item->info().epoch, item->info().number);
        auto begin = clock::now();
        bool accepted = ring_->push(std::move(*item));
        counters_->add_blocked(clock::now() - begin);
        if (!accepted) break;
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    ring_->close();
  }

  Up up_;
  std::size_t depth_;
  stage_counters* counters_;
  std::unique_ptr<spsc_ring<batch_type>> ring_;
  std::thread worker_;
  std::exception_ptr error_;  // written by the worker before close(), read after pop() sees it
};

struct prefetch_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{.needs_batches = true, .host_only = false};
  CONVEYOR_STAGE_MESSAGES("prefetch(n)")
  [[nodiscard]] std::string_view name() const noexcept { return "prefetch"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("prefetch"); }
  template <class In>
  using output = In;
  std::size_t depth;

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    auto stream = as_stream(std::forward<Up>(up));
    return prefetch_stream<decltype(stream)>(std::move(stream), depth, env.counters_for("prefetch"));
  }
};

}  // namespace detail

struct prefetch_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::size_t depth) const {
    if (depth == 0) throw std::invalid_argument("prefetch: depth must be at least 1");
    return append_stage(std::forward<Upstream>(upstream), detail::prefetch_stage{depth});
  }
  auto operator()(std::size_t depth) const { return bound_closure<prefetch_fn, std::size_t>(depth); }
};
/// prefetch(depth): see the top of this header.
inline constexpr prefetch_fn prefetch{};

}  // namespace conveyor
