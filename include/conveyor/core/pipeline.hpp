// conveyor/core/pipeline.hpp: the one static type a chain of stages becomes.
//
// `source | shuffle(seed) | shard(rank, world) | batch(n) | stage | ...` yields
// a `pipeline<Source, Batched, Stages...>`. Plan stages (shuffle,
// block_shuffle, shard, batch) fold into its plan_spec; every other stage is
// kept, by value, in order. `pipeline.epoch(e)` builds the runtime chain and
// returns a range of batches; nothing is type-erased.
//
// Lifetime: a pipeline must outlive the epoch runs it returns (as a container
// outlives its views). An epoch run stops every thread it started when it is
// destroyed, including on an early `break` or an exception.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/core/source.hpp"
#include "conveyor/core/state.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor {

/// How a stage attaches to a chain.
enum class stage_kind : std::uint8_t {
  map,   ///< batch -> batch, on whichever thread runs it; `op(batch&&, const stage_context&)`
  node,  ///< builds its own runtime node from the upstream one; `op.attach(upstream, env)`
};

namespace detail {

template <class Op, class In>
struct stage_output;
template <class Op, class In>
  requires(Op::kind == stage_kind::map)
struct stage_output<Op, In> {
  using type = std::invoke_result_t<const Op&, In&&, const stage_context&>;
};
template <class Op, class In>
  requires(Op::kind == stage_kind::node)
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

/// Does any stage in Ops turn the chain into a stream (prefetch, parallel)?
template <class Op>
consteval bool makes_stream() {
  if constexpr (Op::kind == stage_kind::node) return Op::makes_stream;
  return false;
}

template <class T>
inline constexpr bool always_false = false;

/// Pipeline-wide settings and counters, shared by the pipelines a chain of
/// `|` creates so stats accumulate in one place.
struct pipeline_shared {
  std::shared_ptr<buffer_pool> pool = default_pool();
  error_policy policy = on_error::fail;
  stats_registry registry;
  std::vector<stage_counters*> counters;
  pipeline_state position;               ///< where the last epoch run stood
  std::optional<pipeline_state> resume;  ///< set by restore(), used by the next epoch()
};

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
  static constexpr bool streaming = (detail::makes_stream<Stages>() || ...);

  pipeline(Source source, plan_spec plan, std::tuple<Stages...> stages, std::shared_ptr<detail::pipeline_shared> shared)
      : source_(std::move(source)), plan_(plan), stages_(std::move(stages)), shared_(std::move(shared)) {}

  explicit pipeline(Source source)
    requires(sizeof...(Stages) == 0)
      : source_(std::move(source)), shared_(std::make_shared<detail::pipeline_shared>()) {}

  [[nodiscard]] const Source& source() const noexcept { return source_; }
  [[nodiscard]] const plan_spec& plan() const noexcept { return plan_; }
  [[nodiscard]] const std::tuple<Stages...>& stages() const noexcept { return stages_; }
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept { return shared_->pool; }
  [[nodiscard]] error_policy policy() const noexcept { return shared_->policy; }

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
    if (shared_->resume && shared_->resume->epoch == e) {
      first = shared_->resume->next_batch;
      shared_->resume.reset();
    }
    return start(e, first);
  }

  /// Restores a checkpoint taken with state() (in this process or another):
  /// the next epoch(state.epoch) delivers exactly the batches that remained.
  /// Throws data_error if the state belongs to a different plan or dataset size.
  void restore(const pipeline_state& state) {
    check_state(state);
    shared_->resume = state;
  }
  /// restore(state) and epoch(state.epoch) in one call.
  [[nodiscard]] auto resume(const pipeline_state& state) {
    restore(state);
    return epoch(state.epoch);
  }

  /// The position after the last batch delivered by the latest epoch run.
  [[nodiscard]] pipeline_state state() const { return shared_->position; }

  /// A snapshot of every stage's counters, upstream first.
  [[nodiscard]] pipeline_stats stats() const { return shared_->registry.snapshot(); }

  // Used by stages to extend the chain; not meant for users.
  template <class Stage>
  [[nodiscard]] auto then(Stage stage) && {
    return pipeline<Source, Batched, Stages..., Stage>(
        std::move(source_), plan_, std::tuple_cat(std::move(stages_), std::tuple<Stage>(std::move(stage))),
        std::move(shared_));
  }
  template <bool NowBatched = Batched>
  [[nodiscard]] auto with_plan(plan_spec plan) && {
    return pipeline<Source, NowBatched, Stages...>(std::move(source_), plan, std::move(stages_), std::move(shared_));
  }
  [[nodiscard]] detail::pipeline_shared& shared() noexcept { return *shared_; }

 private:
  template <class Stream>
  friend class epoch_run;

  void check_state(const pipeline_state& state) const {
    if (state.plan_fingerprint != plan_.fingerprint())
      throw data_error("checkpoint was taken with a different plan (shuffle, shard or batch settings)",
                       std::string(source_.name()));
    if (state.record_count != source_.size())
      throw data_error("checkpoint was taken on " + std::to_string(state.record_count) + " records, the source has " +
                           std::to_string(source_.size()),
                       std::string(source_.name()));
  }

  auto build(detail::build_env& env) const {
    if constexpr (fingerprinted_source<Source>) {
      env.dataset_fingerprint = source_.fingerprint();
    } else {
      env.dataset_fingerprint = detail::hash_name(source_.name()) ^ detail::mix64(source_.size());
    }
    env.chain_fingerprint = 0x6a09e667f3bcc908ull;
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
    env.chain_fingerprint = detail::mix64(env.chain_fingerprint ^ detail::stage_fingerprint(stage));
    return chain(std::move(attached), env, rest...);
  }

  auto start(std::uint64_t e, std::uint64_t first) {
    detail::build_env env{shared_->pool, shared_->policy, &shared_->registry, &shared_->counters, 0};
    using stream_type = decltype(build(env));
    auto stream = std::make_unique<stream_type>(build(env));
    return epoch_run<stream_type>(std::move(stream), plan_of(e), first, shared_);
  }

  Source source_;
  plan_spec plan_;
  std::tuple<Stages...> stages_;
  std::shared_ptr<detail::pipeline_shared> shared_;
};

/// The batches of one epoch, as an input range. Move-only. Destroying it (or
/// leaving the loop early) stops the epoch's threads before returning.
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
            std::shared_ptr<detail::pipeline_shared> shared)
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
    current_.reset();
  }

 private:
  [[nodiscard]] pipeline_state position() const noexcept {
    return pipeline_state{plan_.epoch(), next_, plan_.spec().fingerprint(), plan_.records()};
  }
  void advance() {
    current_.reset();
    if (finished_) return;
    current_ = stream_->next();
    if (current_) {
      ++next_;
      rows_ += current_->rows();
      shared_->position = position();
    }
  }

  std::unique_ptr<Stream> stream_;
  epoch_plan plan_;
  std::uint64_t first_;
  std::uint64_t next_;
  std::uint64_t rows_ = 0;
  std::shared_ptr<detail::pipeline_shared> shared_;
  std::optional<batch_type> current_;
  detail::clock::time_point begin_time_{};
  bool started_ = false;
  bool finished_ = false;
};

/// Is P a pipeline<...>?
template <class P>
inline constexpr bool is_pipeline_v = false;
template <class S, bool B, class... St>
inline constexpr bool is_pipeline_v<pipeline<S, B, St...>> = true;

/// Anything a stage can follow: a pipeline, or a source (which starts one).
template <class T>
concept pipeline_or_source = is_pipeline_v<std::remove_cvref_t<T>> || record_source<std::remove_cvref_t<T>>;

/// Turns a source into a pipeline; leaves a pipeline as it is.
template <pipeline_or_source T>
auto as_pipeline(T&& upstream) {
  if constexpr (is_pipeline_v<std::remove_cvref_t<T>>) {
    return std::forward<T>(upstream);
  } else {
    return pipeline<std::remove_cvref_t<T>, false>(std::forward<T>(upstream));
  }
}

}  // namespace conveyor
