// conveyor/core/pipeline.hpp: the one static type a chain of stages becomes.
//
// `source | shuffle(seed) | shard(rank, world) | batch(n) | stage | ...` yields
// a `pipeline<Source, Batched, Stages...>`. Plan stages (shuffle,
// block_shuffle, shard, batch) fold into its plan_spec; every other stage is
// kept, by value, in order, after append_stage checked where it stands (see
// stage.hpp). `pipeline.epoch(e)` builds the runtime chain and returns a range
// of batches; nothing is type-erased.
//
// A pipeline is a value: a copy has its own settings (error policy, pool), its
// own stats rows and its own checkpoint position; changing the copy leaves the
// original alone. Stages hold their own shared state where sharing is the
// point (a cache stage's tier and counters).
//
// Lifetime: a pipeline must outlive the epoch runs it returns (as a container
// outlives its views). An epoch run stops every thread it started when it is
// destroyed, including on an early `break` or an exception.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/detail/trace.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/core/source.hpp"
#include "conveyor/core/stage.hpp"
#include "conveyor/core/state.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor {

namespace detail {

template <class Op, class In>
struct stage_output;
template <class Op, class In>
  requires(Op::kind == stage_kind::map)
struct stage_output<Op, In> {
  using type = map_output_t<Op, In>;
};
template <class Op, class In>
  requires(Op::kind != stage_kind::map)
struct stage_output<Op, In> {
  using type = typename Op::template output<In>;
};

template <class In, class... Ops>
struct batch_after {
  using type = In;
};
template <class In, class Op, class... Rest>
struct batch_after<In, Op, Rest...> {
  using type = typename batch_after<typename stage_output<Op, In>::type, Rest...>::type;
};

template <class... Stages>
struct last_stage {
  using type = void;
};
template <class... Stages>
  requires(sizeof...(Stages) > 0)
struct last_stage<Stages...> {
  using type = std::tuple_element_t<sizeof...(Stages) - 1, std::tuple<Stages...>>;
};

/// The names of the columns a batch type delivers (see delivered_batch), as
/// an array of string_views; none for a type that delivers none.
template <class Batch>
struct column_names {
  static constexpr std::span<const std::string_view> span{};
};
template <class... Columns>
struct column_names<record_batch<Columns...>> {
  static constexpr std::string_view value[sizeof...(Columns) + 1] = {std::string_view(Columns::name.view())..., ""};
  static constexpr std::span<const std::string_view> span{value, sizeof...(Columns)};
};
template <class Batch>
  requires(delivers_columns<Batch> && !is_batch_v<Batch>)
struct column_names<Batch> : column_names<delivered_batch_t<Batch>> {
  static_assert(is_batch_v<delivered_batch_t<Batch>>,
                "conveyor: a batch type's delivered_batch must be a record_batch<...> (see "
                "delivered_batch in conveyor/core/stage.hpp).");
};

/// What a pipeline decides once for all its stages: copied with it.
struct pipeline_settings {
  std::shared_ptr<buffer_pool> output_pool;  ///< with_pool(...); null: pageable
  error_policy policy = on_error::fail;
  std::uint64_t memory_budget = 0;  ///< memory_budget(bytes); 0: none
  std::shared_ptr<trace_file> trace;  ///< with_trace(...); null: CONVEYOR_TRACE's, if set
};

/// What a pipeline accumulates while it runs: its own, never shared by copies.
struct pipeline_runtime {
  std::shared_ptr<buffer_pool> pool = default_pool();  ///< intermediate columns
  stats_registry registry;
  std::vector<stage_counters*> counters;
  pipeline_state position;               ///< where the last epoch run stood
  std::optional<pipeline_state> resume;  ///< set by restore(), used by the next epoch()

  /// A fresh runtime that remembers the position and pending resume (not the stats).
  [[nodiscard]] std::shared_ptr<pipeline_runtime> fresh_copy() const {
    auto copy = std::make_shared<pipeline_runtime>();
    copy->position = position;
    copy->resume = resume;
    return copy;
  }
};

struct pipeline_access;

}  // namespace detail

template <class Stream>
class epoch_run;

template <record_source Source, bool Batched, class... Stages>
class pipeline {
 public:
  using source_type = Source;
  /// The batch type the consumer receives.
  using batch_type = typename detail::batch_after<typename Source::batch_type, Stages...>::type;
  static constexpr bool batched = Batched;
  /// Has a stage turned the chain into a stream (parallel, prefetch)?
  static constexpr bool streaming = ((Stages::kind == stage_kind::stream) || ...);
  /// Does the last stage have to stay last (a sink)?
  static constexpr bool sealed = [] {
    if constexpr (sizeof...(Stages) == 0) {
      return false;
    } else {
      return detail::placement_of<typename detail::last_stage<Stages...>::type>().must_be_last;
    }
  }();

  explicit pipeline(Source source)
    requires(sizeof...(Stages) == 0)
      : source_(std::move(source)), runtime_(std::make_shared<detail::pipeline_runtime>()) {}

  pipeline(const pipeline& other)
      : source_(other.source_), plan_(other.plan_), stages_(other.stages_), settings_(other.settings_),
        runtime_(other.runtime_->fresh_copy()) {}
  pipeline(pipeline&&) noexcept = default;
  /// Assignment works for every pipeline, also one whose stages hold
  /// lambdas (which cannot be assigned): such a pipeline is rebuilt in place.
  pipeline& operator=(const pipeline& other) {
    if (this != &other) assign(pipeline(other));
    return *this;
  }
  pipeline& operator=(pipeline&& other) noexcept(std::is_nothrow_move_constructible_v<pipeline>) {
    if (this != &other) assign(std::move(other));
    return *this;
  }
  ~pipeline() = default;

  [[nodiscard]] const Source& source() const noexcept { return source_; }
  [[nodiscard]] const plan_spec& plan() const noexcept { return plan_; }
  [[nodiscard]] const std::tuple<Stages...>& stages() const noexcept { return stages_; }
  /// The pool delivered columns come from (with_pool's, else a pageable one).
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept {
    return settings_.output_pool ? settings_.output_pool : runtime_->pool;
  }
  [[nodiscard]] error_policy policy() const noexcept { return settings_.policy; }

  /// The plan of epoch e for this rank (batch count, indices of any batch).
  [[nodiscard]] epoch_plan plan_of(std::uint64_t epoch) const {
    static_assert(Batched, "conveyor: this pipeline has no batch(n) stage; add | batch(n) to set the batch size.");
    return epoch_plan(plan_, source_.size(), epoch);
  }

  /// Starts epoch e (or, after restore(), resumes it). Threads start when the
  /// returned range's begin() is called.
  [[nodiscard]] auto epoch(std::uint64_t e) {
    static_assert(Batched,
                  "conveyor: a pipeline yields batches only after batch(n); add | batch(n) after the plan stages.");
    std::uint64_t first = 0;
    if (runtime_->resume && runtime_->resume->epoch == e) {
      first = runtime_->resume->next_batch;
      runtime_->resume.reset();
    }
    return start(e, first);
  }

  /// Restores a checkpoint taken with state() (in this process or another):
  /// the next epoch(state.epoch) delivers exactly the batches that remained.
  /// Throws data_error if the state belongs to a different plan or dataset
  /// size, or lies past the end of its epoch.
  void restore(const pipeline_state& state) {
    check_state(state);
    runtime_->resume = state;
  }
  /// restore(state) and epoch(state.epoch) in one call.
  [[nodiscard]] auto resume(const pipeline_state& state) {
    restore(state);
    return epoch(state.epoch);
  }

  /// The position after the last batch delivered by the latest epoch run.
  [[nodiscard]] pipeline_state state() const { return runtime_->position; }

  /// A snapshot of every stage's counters, upstream first.
  [[nodiscard]] pipeline_stats stats() const { return runtime_->registry.snapshot(); }

 private:
  template <class Stream>
  friend class epoch_run;
  friend struct detail::pipeline_access;
  template <record_source, bool, class...>
  friend class pipeline;

  void assign(pipeline&& other) {
    if constexpr (std::is_move_assignable_v<Source> && std::is_move_assignable_v<std::tuple<Stages...>>) {
      source_ = std::move(other.source_);
      plan_ = other.plan_;
      stages_ = std::move(other.stages_);
      settings_ = std::move(other.settings_);
      runtime_ = std::move(other.runtime_);
    } else {
      // A stage holds something that cannot be assigned (a lambda): end this
      // pipeline's lifetime and move-construct the other in its place.
      static_assert(std::is_nothrow_move_constructible_v<pipeline>,
                    "conveyor: this pipeline cannot be assigned: a stage can be neither assigned nor moved without "
                    "throwing; construct a new pipeline instead.");
      std::destroy_at(this);
      std::construct_at(this, std::move(other));
    }
  }

  pipeline(Source source, plan_spec plan, std::tuple<Stages...> stages, detail::pipeline_settings settings,
           std::shared_ptr<detail::pipeline_runtime> runtime)
      : source_(std::move(source)), plan_(plan), stages_(std::move(stages)), settings_(std::move(settings)),
        runtime_(std::move(runtime)) {}

  void check_state(const pipeline_state& state) const {
    if (state.plan_fingerprint != plan_.fingerprint())
      throw data_error("checkpoint was taken with a different plan (shuffle, shard or batch settings)",
                       std::string(source_.name()));
    if (state.record_count != source_.size())
      throw data_error("checkpoint was taken on " + std::to_string(state.record_count) + " records, the source has " +
                           std::to_string(source_.size()),
                       std::string(source_.name()));
    if constexpr (Batched) {
      auto batches = plan_of(state.epoch).batch_count();
      if (state.next_batch > batches)
        throw data_error("checkpoint resumes at batch " + std::to_string(state.next_batch) + " of epoch " +
                             std::to_string(state.epoch) + ", which has only " + std::to_string(batches) +
                             " batches",
                         std::string(source_.name()));
    }
  }

  auto build(detail::build_env& env) const {
    if constexpr (fingerprinted_source<Source>) {
      env.dataset_fingerprint = source_.fingerprint();
    } else {
      env.dataset_fingerprint = detail::combine(detail::hash_name(source_.name()), source_.size());
    }
    if constexpr (requires { source_.text_schemas(); }) env.text_schemas = source_.text_schemas();
    env.chain_fingerprint = detail::salt::chain;
    auto& counters = env.counters_for(std::string(source_.name()));
    detail::source_function<Source> head{&source_, env.context(counters), std::string(source_.name())};
    return detail::as_stream(std::apply([&](const auto&... stages) { return chain(std::move(head), env, stages...); },
                                        stages_));
  }
  template <class Node>
  static auto chain(Node&& node, detail::build_env&) {
    return std::forward<Node>(node);
  }
  template <class Node, class Stage, class... Rest>
  static auto chain(Node&& node, detail::build_env& env, const Stage& stage, const Rest&... rest) {
    // A stage sees the fingerprint of the chain upstream of it, then adds its own.
    auto attached = [&] {
      if constexpr (Stage::kind == stage_kind::map) {
        return detail::attach_map(std::forward<Node>(node), stage, env);
      } else {
        return stage.attach(std::forward<Node>(node), env);
      }
    }();
    env.chain_fingerprint = detail::combine(env.chain_fingerprint, detail::stage_fingerprint(stage));
    return chain(std::move(attached), env, rest...);
  }

  auto start(std::uint64_t e, std::uint64_t first) {
    detail::build_env env;
    env.pool = runtime_->pool;
    env.output_pool = settings_.output_pool;
    env.delivered = detail::column_names<batch_type>::span;
    env.policy = settings_.policy;
    env.registry = &runtime_->registry;
    env.counters = &runtime_->counters;
    env.start = batch_info{e, first};
    env.memory = std::make_shared<detail::memory_governor>(
        settings_.memory_budget, settings_.memory_budget == 0 ? 0 : detail::cache_resident_bytes(stages_));
    using stream_type = decltype(build(env));
    auto stream = std::make_unique<stream_type>(build(env));
    auto trace = settings_.trace ? settings_.trace : detail::trace_from_environment();
    for (auto* c : runtime_->counters)
      c->trace.store(trace ? trace->label(c->name) : nullptr, std::memory_order_relaxed);
    auto run = epoch_run<stream_type>(std::move(stream), plan_of(e), first, runtime_);
    if constexpr ((detail::ends_epochs<Stages> || ...)) {
      // The pipeline outlives its epoch runs (see the top), so its stages do.
      run.end_epoch_ = [stages = &stages_](std::uint64_t epoch) {
        std::apply([&](const auto&... stage) { (end_stage_epoch(stage, epoch), ...); }, *stages);
      };
    }
    if (settings_.memory_budget != 0) run.memory_ = env.memory;  // measures what the consumer gets
    run.next_label_ = trace ? trace->label("next batch") : nullptr;
    run.trace_ = std::move(trace);
    return run;
  }

  template <class Stage>
  static void end_stage_epoch(const Stage& stage, std::uint64_t epoch) {
    if constexpr (detail::ends_epochs<Stage>) stage.end_epoch(epoch);
  }

  Source source_;
  plan_spec plan_;
  std::tuple<Stages...> stages_;
  detail::pipeline_settings settings_;
  std::shared_ptr<detail::pipeline_runtime> runtime_;
};

/// The batches of one epoch, as an input range. Move-only. Destroying it (or
/// leaving the loop early) stops the epoch's threads before returning.
/// When the consumer reaches the end of the epoch, the run stops the threads
/// and then calls each stage's `end_epoch(epoch)` (stage.hpp) on the
/// consumer's thread; an epoch left early never calls it.
template <class Stream>
class epoch_run {
 public:
  using batch_type = typename Stream::batch_type;

  class iterator {
   public:
    using value_type = batch_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(epoch_run* run) : run_(run) {}
    batch_type& operator*() const { return *run_->current_; }
    batch_type* operator->() const { return &*run_->current_; }
    iterator& operator++() {
      run_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    [[nodiscard]] bool at_end() const { return !run_->current_; }
    epoch_run* run_ = nullptr;
  };

  epoch_run(std::unique_ptr<Stream> stream, epoch_plan plan, std::uint64_t first,
            std::shared_ptr<detail::pipeline_runtime> shared)
      : stream_(std::move(stream)), plan_(plan), first_(first), next_(first), shared_(std::move(shared)) {
    shared_->position = position();
  }
  epoch_run(epoch_run&&) noexcept = default;
  epoch_run& operator=(epoch_run&&) = delete;
  ~epoch_run() { finish(); }

  /// Starts the epoch's threads and fetches the first batch.
  iterator begin() {
    if (!started_) {
      started_ = true;
      begin_time_ = detail::clock::now();
      if (trace_) detail::name_trace_thread_if_unnamed("consumer");
      stream_->start(plan_, first_);
      advance();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Batches this epoch delivers in all (from its first batch, not the resume point).
  [[nodiscard]] std::uint64_t batch_count() const noexcept { return plan_.batch_count(); }
  /// The position after the last delivered batch: save it to resume later.
  [[nodiscard]] pipeline_state state() const noexcept { return position(); }
  [[nodiscard]] const epoch_plan& plan() const noexcept { return plan_; }

  /// Stops the epoch's threads now; the range is empty afterwards.
  void finish() noexcept {
    if (!stream_ || finished_) return;
    finished_ = true;
    if (started_) {
      stream_->stop();
      shared_->registry.add_wall(detail::clock::now() - begin_time_, rows_);
    }
    if (trace_) trace_->flush();
    current_.reset();
  }

 private:
  [[nodiscard]] pipeline_state position() const noexcept {
    return pipeline_state{plan_.epoch(), next_, plan_.spec().fingerprint(), plan_.records()};
  }
  void advance() {
    current_.reset();
    if (finished_) return;
    detail::trace_span span(next_label_, detail::span_kind::next, plan_.epoch(), next_);
    current_ = stream_->next();
    if (current_ && memory_) {
      try {  // after every stage: a stage after prefetch may make batches larger
        memory_->observe_delivered(detail::host_bytes(*current_));
      } catch (...) {
        current_.reset();
        finish();
        throw;
      }
    }
    if (current_) {
      ++next_;
      rows_ += current_->rows();
      shared_->position = position();
    } else {
      end_of_epoch();
    }
  }
  // The batches are exhausted: stop the threads, then the stages' epoch-end
  // hooks (a hook that throws propagates to the consumer's loop).
  void end_of_epoch() {
    finish();
    if (end_epoch_) {
      auto hook = std::move(end_epoch_);
      end_epoch_ = nullptr;
      hook(plan_.epoch());
    }
  }

  std::unique_ptr<Stream> stream_;
  epoch_plan plan_;
  std::uint64_t first_;
  std::uint64_t next_;
  std::uint64_t rows_ = 0;
  std::shared_ptr<detail::pipeline_runtime> shared_;
  std::optional<batch_type> current_;
  detail::clock::time_point begin_time_{};
  bool started_ = false;
  bool finished_ = false;
  std::shared_ptr<trace_file> trace_;  // what this run's spans go to (kept open while it runs)
  const detail::trace_label* next_label_ = nullptr;
  std::function<void(std::uint64_t)> end_epoch_;  // the stages' end_epoch hooks; empty: none
  std::shared_ptr<detail::memory_governor> memory_;  // memory_budget(...)'s account; null: none

  template <record_source, bool, class...>
  friend class pipeline;
};

/// Is P a pipeline<...>?
template <class P>
inline constexpr bool is_pipeline_v = false;
template <class S, bool B, class... St>
inline constexpr bool is_pipeline_v<pipeline<S, B, St...>> = true;

/// What a chain becomes after a stage was placed where it cannot work: the
/// compile error has been reported; this absorbs the stages after it so the
/// error is not repeated for each of them.
struct invalid_pipeline {
  static constexpr bool batched = true;
  static constexpr bool streaming = false;
  using batch_type = record_batch<>;
};

/// Anything a stage can follow: a pipeline, or a source (which starts one).
template <class T>
concept pipeline_or_source = is_pipeline_v<std::remove_cvref_t<T>> || record_source<std::remove_cvref_t<T>> ||
                             std::same_as<std::remove_cvref_t<T>, invalid_pipeline>;

/// Turns a source into a pipeline; leaves a pipeline as it is (copying an lvalue).
template <pipeline_or_source T>
auto as_pipeline(T&& upstream) {
  if constexpr (is_pipeline_v<std::remove_cvref_t<T>> || std::same_as<std::remove_cvref_t<T>, invalid_pipeline>) {
    return std::remove_cvref_t<T>(std::forward<T>(upstream));
  } else {
    return pipeline<std::remove_cvref_t<T>, false>(std::forward<T>(upstream));
  }
}

namespace detail {

/// The pipeline's internals for the library's own stages; not for users.
struct pipeline_access {
  template <class S, bool B, class... St, class Stage>
  static auto append(pipeline<S, B, St...>&& p, Stage stage) {
    return pipeline<S, B, St..., Stage>(std::move(p.source_), p.plan_,
                                        std::tuple_cat(std::move(p.stages_), std::tuple<Stage>(std::move(stage))),
                                        std::move(p.settings_), std::move(p.runtime_));
  }
  template <bool NowBatched, class S, bool B, class... St>
  static auto with_plan(pipeline<S, B, St...>&& p, plan_spec plan) {
    return pipeline<S, NowBatched, St...>(std::move(p.source_), plan, std::move(p.stages_), std::move(p.settings_),
                                          std::move(p.runtime_));
  }
  template <class S, bool B, class... St>
  static pipeline_settings& settings(pipeline<S, B, St...>& p) noexcept {
    return p.settings_;
  }
};

template <class P>
struct last_stage_of;
template <class S, bool B, class... St>
struct last_stage_of<pipeline<S, B, St...>> : last_stage<St...> {};

}  // namespace detail

/// Appends `stage` to the chain after checking, once, that it may stand
/// there (see stage_placement); a misplaced stage is a compile error whose
/// message names the stage and the fix. Every stage function calls this; so
/// does a user's own stage (docs/extending.md).
template <pipeline_or_source Upstream, class Stage>
auto append_stage(Upstream&& upstream, Stage stage) {
  auto p = as_pipeline(std::forward<Upstream>(upstream));
  using P = decltype(p);
  if constexpr (std::same_as<P, invalid_pipeline>) {
    return p;
  } else {
    using messages = detail::stage_messages<Stage>;
    constexpr stage_placement place = detail::placement_of<Stage>();
    using device_column = typename detail::first_device_column<typename P::batch_type>::type;
    if constexpr (P::sealed) {
      (void)sizeof(typename detail::stage_messages<typename detail::last_stage_of<P>::type>::template check_nothing_after<false>);
      return invalid_pipeline{};
    } else if constexpr (place.needs_batches && !P::batched) {
      (void)sizeof(typename messages::template check_batched<false>);
      return invalid_pipeline{};
    } else if constexpr (place.before_streams && P::streaming) {
      (void)sizeof(typename messages::template check_before_streams<false>);
      return invalid_pipeline{};
    } else if constexpr (place.host_only && !std::is_void_v<device_column>) {
      (void)sizeof(typename messages::template check_host_column<false, device_column>);
      return invalid_pipeline{};
    } else {
      return detail::pipeline_access::append(std::move(p), std::move(stage));
    }
  }
}

}  // namespace conveyor
