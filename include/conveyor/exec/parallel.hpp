// conveyor/exec/parallel.hpp: parallel(workers) produces batches on a pool of
// threads and delivers them in plan order.
//
// Everything upstream of parallel (the source's read and the stages between)
// runs once per batch on one of `workers` threads; batch b always holds the
// same records whatever the worker count or timing. Call forms:
// `parallel(pipe, n)` and `pipe | parallel(n)`. Columns: unchanged.
// Memory: at most 2 x workers batches in flight (a reorder window), plus the
// one the consumer holds. Threads: `workers` std::threads per epoch run,
// started by begin(). Errors: an exception in batch b reaches the consumer
// after batches before b, as a stage_error naming the stage. Early exit:
// destroying the run wakes and joins every worker; each finishes at most its
// current batch. It must come before prefetch (which streams) and appear once.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

namespace detail {

template <batch_function Fn>
class parallel_stream {
 public:
  using batch_type = typename Fn::batch_type;

  parallel_stream(Fn fn, unsigned workers, stage_counters& counters)
      : fn_(std::move(fn)), workers_(workers), window_(2 * static_cast<std::size_t>(workers)), counters_(&counters) {
    counters.queue_capacity.store(window_, std::memory_order_relaxed);
  }
  parallel_stream(parallel_stream&& other) noexcept
      : fn_(std::move(other.fn_)), workers_(other.workers_), window_(other.window_), counters_(other.counters_) {}
  ~parallel_stream() { stop(); }

  void start(const epoch_plan& plan, std::uint64_t first) {
    plan_.emplace(plan);
    end_ = plan.batch_count();
    next_ = first;
    claim_.store(first, std::memory_order_relaxed);
    delivered_.store(first, std::memory_order_relaxed);
    stopping_.store(false, std::memory_order_relaxed);
    slots_ = std::make_unique<slot[]>(window_);
    threads_.reserve(workers_);
    for (unsigned i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  }

  std::optional<batch_type> next() {
    if (next_ >= end_) return std::nullopt;
    auto& s = slots_[next_ % window_];
    auto begin = clock::now();
    counters_->sample_queue(std::min(claim_.load(std::memory_order_relaxed), end_) - next_);
    while (s.ready.load(std::memory_order_acquire) == 0) s.ready.wait(0, std::memory_order_acquire);
    counters_->add_starved(clock::now() - begin);
    std::optional<batch_type> value = std::move(s.value);
    auto error = std::exchange(s.error, nullptr);
    s.value.reset();
    s.ready.store(0, std::memory_order_relaxed);
    ++next_;
    delivered_.store(next_, std::memory_order_release);
    progress_.fetch_add(1, std::memory_order_release);
    progress_.notify_all();
    if (error) std::rethrow_exception(error);
    counters_->add_batch(value->rows(), value->size_bytes(), std::chrono::nanoseconds(0));
    return value;
  }

  void stop() noexcept {
    stopping_.store(true, std::memory_order_release);
    progress_.fetch_add(1, std::memory_order_release);
    progress_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  struct slot {
    std::optional<batch_type> value;
    std::exception_ptr error;
    std::atomic<std::uint32_t> ready{0};
  };

  void work() {
    std::vector<std::uint64_t> indices;
    for (;;) {
      std::uint64_t b = claim_.fetch_add(1, std::memory_order_relaxed);
      if (b >= end_) return;
      // Wait until batch b fits in the reorder window (bounds memory).
      auto begin = clock::now();
      for (;;) {
        auto seen = progress_.load(std::memory_order_acquire);
        if (stopping_.load(std::memory_order_acquire)) return;
        if (b < delivered_.load(std::memory_order_acquire) + window_) break;
        progress_.wait(seen, std::memory_order_acquire);
      }
      counters_->add_blocked(clock::now() - begin);
      auto& s = slots_[b % window_];
      indices.resize(plan_->batch_rows(b));
      plan_->batch_indices(b, indices);
      try {
        s.value.emplace(fn_.produce(indices, batch_info{plan_->epoch(), b}));
      } catch (...) {
        s.error = std::current_exception();
      }
      s.ready.store(1, std::memory_order_release);
      s.ready.notify_one();
    }
  }

  Fn fn_;
  unsigned workers_;
  std::size_t window_;
  stage_counters* counters_;
  std::optional<epoch_plan> plan_;
  std::uint64_t end_ = 0;
  std::uint64_t next_ = 0;  // consumer only
  std::unique_ptr<slot[]> slots_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint32_t> progress_{0};
  std::atomic<bool> stopping_{false};
};

struct parallel_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{.needs_batches = true, .before_streams = true, .host_only = false};
  CONVEYOR_STAGE_MESSAGES("parallel(n)")
  [[nodiscard]] std::string_view name() const noexcept { return "parallel"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("parallel"); }
  template <class In>
  using output = In;
  unsigned workers;

  template <batch_function Up>
  auto attach(Up&& up, build_env& env) const {
    return parallel_stream<std::remove_cvref_t<Up>>(std::forward<Up>(up), workers, env.counters_for("parallel"));
  }
};

}  // namespace detail

struct parallel_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, unsigned workers) const {
    if (workers == 0) throw std::invalid_argument("parallel: needs at least 1 worker");
    return append_stage(std::forward<Upstream>(upstream), detail::parallel_stage{workers});
  }
  auto operator()(unsigned workers) const { return bound_closure<parallel_fn, unsigned>(workers); }
};
/// parallel(workers): see the top of this header.
inline constexpr parallel_fn parallel{};

}  // namespace conveyor
