// conveyor/exec/parallel.hpp: parallel(workers) produces batches on a pool of
// threads and delivers them in plan order; parallel(autotune) chooses the
// worker count while the epoch runs.
//
// Everything upstream of parallel (the source's read and the stages between)
// runs once per batch on one of the workers; batch b always holds the same
// records whatever the worker count or timing. Call forms:
// `parallel(pipe, n)`, `pipe | parallel(n)`, `parallel(pipe, autotune)`,
// `pipe | parallel(autotune)` and `pipe | parallel(autotune, max_workers)`
// (default max: 64, or 4 per hardware thread if more). Columns: unchanged.
// Memory: a reorder window of 2 x workers batches in flight, plus the one the
// consumer holds; under memory_budget(bytes) the window shrinks to what the
// budget allows (never below the worker count), and only one batch is made
// before the consumer was handed the first one (measured there, after every
// stage). Threads: std::threads started by begin();
// under autotune more start as the count grows (up to max_workers), and those
// above the count park, each after finishing the batch in hand. The worker
// count is decided on the consumer's thread, once per probe (see
// exec/autotune.hpp); a worker pays one atomic load per batch for it (under
// autotune, while the count is still searching, also two reads each of its
// CPU clock and of its run-queue time, a pread of /proc/thread-self/schedstat
// on Linux: about 3 us a batch; none once settled), and nothing per record. Errors: an exception in
// batch b reaches the consumer after batches before b, as a stage_error naming the stage; a budget
// too small for the pipeline's minimum is a std::invalid_argument naming the numbers, thrown when
// the first batch is measured. Early exit: destroying the run wakes and joins every worker; each
// finishes at most its current batch. It must come before prefetch (which streams) and appear once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/memory_budget.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/exec/autotune.hpp"

namespace conveyor {

namespace detail {

/// What parallel(...) was given: a fixed count, or autotune up to a limit.
struct parallel_options {
  unsigned workers = 1;  ///< the fixed count (autotune: ignored)
  bool autotune = false;
  unsigned max_workers = 1;
};

template <batch_function Fn>
class parallel_stream {
 public:
  using batch_type = typename Fn::batch_type;

  parallel_stream(Fn fn, parallel_options options, stage_counters& counters,
                  std::shared_ptr<memory_governor> memory)
      : fn_(std::move(fn)),
        options_(options),
        counters_(&counters),
        memory_(std::move(memory)),
        tuner_(1, options.autotune ? options.max_workers : options.workers,
               std::thread::hardware_concurrency()) {
    if (!memory_) memory_ = std::make_shared<memory_governor>(0, 0);
    if (options_.autotune) {
      // A pipeline's later epochs start from what an earlier one settled on.
      auto earlier = counters.tuning.load(std::memory_order_relaxed);
      auto workers = static_cast<unsigned>(counters.workers.load(std::memory_order_relaxed));
      if (earlier != tuning_state::fixed && earlier != tuning_state::searching && workers != 0)
        tuner_.settle(workers, earlier);
      else if (workers != 0)
        tuner_ = parallel_tuner(workers, options_.max_workers, std::thread::hardware_concurrency());
    }
    holder_ = memory_->enrol("parallel window",
                             options_.autotune ? 1 : 2 * std::uint64_t{options_.workers}, 0,
                             options_.autotune ? 1 : options_.workers);
  }
  parallel_stream(parallel_stream&& other) noexcept
      : fn_(std::move(other.fn_)),
        options_(other.options_),
        counters_(other.counters_),
        memory_(std::move(other.memory_)),
        tuner_(other.tuner_),
        holder_(other.holder_) {}
  ~parallel_stream() { stop(); }

  void start(const epoch_plan& plan, std::uint64_t first) {
    plan_.emplace(plan);
    end_ = plan.batch_count();
    next_ = first;
    claim_.store(first, std::memory_order_relaxed);
    delivered_.store(first, std::memory_order_relaxed);
    stopping_.store(false, std::memory_order_relaxed);
    unsigned most = options_.autotune ? options_.max_workers : options_.workers;
    capacity_ = 2 * static_cast<std::size_t>(most);
    slots_ = std::make_unique<slot[]>(capacity_);
    threads_.reserve(most);
    seen_generation_ = memory_->generation();
    set_workers(options_.autotune ? tuner_.workers() : options_.workers);
    measuring_.store(options_.autotune && !tuner_.settled(), std::memory_order_relaxed);
    counters_->tuning.store(options_.autotune ? tuner_.state() : tuning_state::fixed,
                            std::memory_order_relaxed);
    probe_restart(clock::now());
  }

  std::optional<batch_type> next() {
    if (next_ >= end_) return std::nullopt;
    trace_span waiting(counters_->trace, span_kind::wait_upstream, plan_->epoch(), next_);
    auto& s = slots_[next_ % capacity_];
    auto begin = clock::now();
    counters_->sample_queue(std::min(claim_.load(std::memory_order_relaxed), end_) - next_);
    while (s.ready.load(std::memory_order_acquire) == 0) s.ready.wait(0, std::memory_order_acquire);
    auto waited = clock::now() - begin;
    counters_->add_starved(waited);
    probe_starved_ += waited;
    std::optional<batch_type> value = std::move(s.value);
    auto error = std::exchange(s.error, nullptr);
    s.value.reset();
    s.ready.store(0, std::memory_order_relaxed);
    ++next_;
    delivered_.store(next_, std::memory_order_release);
    progress_.fetch_add(1, std::memory_order_release);
    progress_.notify_all();
    if (error) std::rethrow_exception(error);
    memory_->observe(holder_, host_bytes(*value));
    if (memory_->generation() != seen_generation_) {
      seen_generation_ = memory_->generation();
      set_workers(workers_);  // the batch size changed what the budget allows
    }
    counters_->add_batch(value->rows(), value->size_bytes(), std::chrono::nanoseconds(0));
    if (options_.autotune && !tuner_.settled()) tune();
    return value;
  }

  void stop() noexcept {
    stopping_.store(true, std::memory_order_release);
    progress_.fetch_add(1, std::memory_order_release);
    progress_.notify_all();
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
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

  // Consumer thread. Sets the worker count and the window the budget allows
  // for it; starts threads up to the count; wakes parked ones.
  void set_workers(unsigned workers) {
    std::uint64_t window = 1;  // under a budget, one batch until the consumer was handed one
    if (!memory_->limited() || memory_->measured()) {
      memory_->set_threads(holder_, std::max<std::uint64_t>(threads_.size(), workers));
      window = memory_->grant(holder_, 2 * std::uint64_t{workers});
      if (window < workers) {
        workers = static_cast<unsigned>(std::max<std::uint64_t>(1, window));
        if (options_.autotune) {
          tuner_.settle(workers, tuning_state::memory_bound);
          measuring_.store(false, std::memory_order_relaxed);
        }
      }
    }
    workers_ = workers;
    window_.store(static_cast<std::size_t>(std::min<std::uint64_t>(window, capacity_)),
                  std::memory_order_release);
    active_.store(workers, std::memory_order_release);
    while (threads_.size() < workers) {
      auto id = static_cast<unsigned>(threads_.size());
      threads_.emplace_back([this, id] { work(id); });
    }
    memory_->set_threads(holder_, threads_.size());  // parked threads keep their memory
    counters_->workers.store(workers, std::memory_order_relaxed);
    counters_->queue_capacity.store(window_.load(std::memory_order_relaxed),
                                    std::memory_order_relaxed);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    progress_.fetch_add(1, std::memory_order_release);
    progress_.notify_all();
  }

  void probe_restart(clock::time_point now) {
    probe_begin_ = now;
    probe_batches_ = 0;
    probe_starved_ = clock::duration::zero();
    busy_wall_ns_.store(0, std::memory_order_relaxed);
    busy_cpu_ns_.store(0, std::memory_order_relaxed);
    busy_queued_ns_.store(0, std::memory_order_relaxed);
  }

  // Consumer thread, once per delivered batch while searching.
  void tune() {
    auto now = clock::now();
    if (settle_left_ > 0) {  // the new workers are still filling the window
      --settle_left_;
      if (settle_left_ == 0) probe_restart(now);
      return;
    }
    ++probe_batches_;
    if (probe_batches_ <
            std::max<std::uint64_t>(probe_length::min_batches, 2 * std::uint64_t{workers_}) ||
        now - probe_begin_ < probe_length::min_time)
      return;
    parallel_probe p;
    p.batches = probe_batches_;
    p.wall_s = std::chrono::duration<double>(now - probe_begin_).count();
    p.starved_s = std::chrono::duration<double>(probe_starved_).count();
    p.busy_wall_s = static_cast<double>(busy_wall_ns_.load(std::memory_order_relaxed)) * 1e-9;
    p.busy_cpu_s = static_cast<double>(busy_cpu_ns_.load(std::memory_order_relaxed)) * 1e-9;
    p.busy_queued_s = static_cast<double>(busy_queued_ns_.load(std::memory_order_relaxed)) * 1e-9;
    auto room = memory_->most_threads(holder_);
    auto memory_cap =
        static_cast<unsigned>(std::min<std::uint64_t>(room, std::numeric_limits<unsigned>::max()));
    unsigned before = workers_;
    unsigned next = tuner_.decide(p, memory_cap);
    if (next != before) {
      set_workers(next);
      settle_left_ = next;
    }
    counters_->tuning.store(tuner_.state(), std::memory_order_relaxed);
    // Settled: the workers stop timing their batches (nothing reads it now).
    if (tuner_.settled()) measuring_.store(false, std::memory_order_relaxed);
    probe_restart(clock::now());
  }

  void work(unsigned id) {
    name_trace_thread("parallel worker", id + 1);
    std::optional<run_queue_clock> run_queue;
    if (options_.autotune) run_queue.emplace();
    std::vector<std::uint64_t> indices;
    for (;;) {
      // Park while this worker is above the count (one atomic load per batch).
      for (;;) {
        auto seen = wake_.load(std::memory_order_acquire);
        if (stopping_.load(std::memory_order_acquire)) return;
        if (id < active_.load(std::memory_order_acquire)) break;
        wake_.wait(seen, std::memory_order_acquire);
      }
      std::uint64_t b = claim_.fetch_add(1, std::memory_order_relaxed);
      if (b >= end_) return;
      // Wait until batch b fits in the reorder window (bounds memory).
      trace_span blocked(counters_->trace, span_kind::wait_downstream, plan_->epoch(), b);
      auto begin = clock::now();
      for (;;) {
        auto seen = progress_.load(std::memory_order_acquire);
        if (stopping_.load(std::memory_order_acquire)) return;
        if (b <
            delivered_.load(std::memory_order_acquire) + window_.load(std::memory_order_acquire))
          break;
        progress_.wait(seen, std::memory_order_acquire);
      }
      auto produce_begin = clock::now();
      counters_->add_blocked(produce_begin - begin);
      blocked.end();
      // Only while the count is searching; one relaxed load a batch.
      bool measure = run_queue && measuring_.load(std::memory_order_relaxed);
      auto cpu_begin = measure ? thread_cpu_time() : std::chrono::nanoseconds(0);
      auto queued_begin = measure ? run_queue->waited_ns() : 0;
      auto& s = slots_[b % capacity_];
      indices.resize(plan_->batch_rows(b));
      plan_->batch_indices(b, indices);
      try {
        s.value.emplace(fn_.produce(indices, batch_info{plan_->epoch(), b}));
      } catch (...) {
        s.error = std::current_exception();
      }
      if (measure) {
        busy_cpu_ns_.fetch_add(static_cast<std::uint64_t>((thread_cpu_time() - cpu_begin).count()),
                               std::memory_order_relaxed);
        busy_queued_ns_.fetch_add(run_queue->waited_ns() - queued_begin, std::memory_order_relaxed);
        busy_wall_ns_.fetch_add(
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - produce_begin)
                    .count()),
            std::memory_order_relaxed);
      }
      s.ready.store(1, std::memory_order_release);
      s.ready.notify_one();
    }
  }

  Fn fn_;
  parallel_options options_;
  stage_counters* counters_;
  std::shared_ptr<memory_governor> memory_;
  parallel_tuner tuner_;
  std::size_t holder_ = 0;
  std::optional<epoch_plan> plan_;
  std::uint64_t end_ = 0;
  std::size_t capacity_ = 0;  // slots: the largest window
  std::unique_ptr<slot[]> slots_;
  std::vector<std::thread> threads_;
  // Consumer thread only.
  std::uint64_t next_ = 0;
  unsigned workers_ = 0;
  std::uint32_t seen_generation_ = 0;
  unsigned settle_left_ = 0;
  clock::time_point probe_begin_{};
  std::uint64_t probe_batches_ = 0;
  clock::duration probe_starved_{};
  // Shared with the workers.
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint32_t> progress_{0};
  std::atomic<std::size_t> window_{1};
  std::atomic<unsigned> active_{0};
  std::atomic<std::uint32_t> wake_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> measuring_{false};  // autotune, not settled: workers time their batches
  std::atomic<std::uint64_t> busy_wall_ns_{0};
  std::atomic<std::uint64_t> busy_cpu_ns_{0};
  std::atomic<std::uint64_t> busy_queued_ns_{0};
};

struct parallel_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{
      .needs_batches = true, .before_streams = true, .host_only = false};
  CONVEYOR_STAGE_MESSAGES("parallel(n)")
  [[nodiscard]] std::string_view name() const noexcept { return "parallel"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("parallel"); }
  template <class In>
  using output = In;
  parallel_options options;

  template <batch_function Up>
  auto attach(Up&& up, build_env& env) const {
    return parallel_stream<std::remove_cvref_t<Up>>(std::forward<Up>(up), options,
                                                    env.counters_for("parallel"), env.memory);
  }
};

}  // namespace detail

struct parallel_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, unsigned workers) const {
    if (workers == 0) throw std::invalid_argument("parallel: needs at least 1 worker");
    return append_stage(std::forward<Upstream>(upstream),
                        detail::parallel_stage{detail::parallel_options{workers, false, workers}});
  }
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, autotune_t,
                  unsigned max_workers = detail::default_max_workers()) const {
    if (max_workers == 0)
      throw std::invalid_argument(
          "parallel(autotune, max_workers): max_workers must be at least 1");
    return append_stage(std::forward<Upstream>(upstream),
                        detail::parallel_stage{detail::parallel_options{1, true, max_workers}});
  }
  auto operator()(unsigned workers) const { return bound_closure<parallel_fn, unsigned>(workers); }
  auto operator()(autotune_t tag, unsigned max_workers = detail::default_max_workers()) const {
    return bound_closure<parallel_fn, autotune_t, unsigned>(tag, max_workers);
  }
};
/// parallel(workers), parallel(autotune): see the top of this header.
inline constexpr parallel_fn parallel{};

}  // namespace conveyor
