// conveyor/core/detail/nodes.hpp: the runtime nodes a pipeline's chain turns
// into when an epoch starts.
//
// Upstream of the first execution stage the chain is a *batch function*:
// produce(indices, info) -> batch, pure and callable from several threads, so
// parallel(n) can run it per batch on a pool and a cache can call it for the
// records it misses. An execution stage turns it into a *stream*: start(plan,
// first), next() -> optional<batch>, stop(), driven by one consumer thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/detail/memory_budget.hpp"
#include "conveyor/core/detail/trace.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/core/stage.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor::detail {

using clock = std::chrono::steady_clock;

/// What building a chain needs: the pools, the policy and the stage counters
/// (created on the first epoch, reused by position afterwards), plus what
/// stages learn (build_info).
struct build_env : build_info {
  std::shared_ptr<buffer_pool> pool;         ///< pageable, for intermediate columns
  std::shared_ptr<buffer_pool> output_pool;  ///< the sink's, for delivered columns
  std::span<const std::string_view> delivered;
  error_policy policy;
  stats_registry* registry = nullptr;
  std::vector<stage_counters*>* counters = nullptr;
  std::size_t next_counter = 0;
  /// memory_budget(...)'s account, shared by the epoch's execution stages.
  std::shared_ptr<memory_governor> memory;

  stage_counters& counters_for(const std::string& name) {
    if (next_counter == counters->size()) counters->push_back(&registry->add(name));
    return *(*counters)[next_counter++];
  }
  [[nodiscard]] stage_context context(stage_counters& c) const {
    return {pool, policy, &c, {}, output_pool, delivered, nullptr};
  }
};

template <class N>
concept batch_function = requires(const N& node, std::span<const std::uint64_t> indices, batch_info info) {
  typename N::batch_type;
  { node.produce(indices, info) } -> std::same_as<typename N::batch_type>;
};

template <class N>
concept batch_stream = requires(N& node, const epoch_plan& plan, std::uint64_t first) {
  typename N::batch_type;
  node.start(plan, first);
  { node.next() } -> std::same_as<std::optional<typename N::batch_type>>;
  node.stop();
};

/// A stage's fingerprint: its own `fingerprint()` (parameters included) when it
/// has one, else the hash of its name. map("name", f) cannot see inside f:
/// rename the stage when f changes, or the cache serves the old results.
template <class Stage>
std::uint64_t stage_fingerprint(const Stage& stage) {
  if constexpr (requires { { stage.fingerprint() } -> std::convertible_to<std::uint64_t>; }) {
    return stage.fingerprint();
  } else if constexpr (requires { stage.name(); }) {
    return hash_name(stage.name());
  } else {
    return hash_name(typeid(Stage).name());
  }
}

/// Runs `work` as stage `name`, wrapping any exception in a stage_error.
template <class Work>
auto run_stage(const std::string& name, const batch_info& info, Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const stage_error&) {
    throw;
  } catch (...) {
    throw stage_error(name, info.epoch, info.number, std::current_exception());
  }
}

/// The source's read, retried on io_error under retry(n).
template <class Source>
struct source_function {
  using batch_type = typename Source::batch_type;
  const Source* source;
  stage_context ctx;
  std::string name;

  batch_type produce(std::span<const std::uint64_t> indices, batch_info info) const {
    rejections rejected;
    stage_context local = ctx;
    local.info = info;
    local.rejected = &rejected;
    unsigned attempts = ctx.policy.action == error_policy::kind::retry ? ctx.policy.attempts : 1;
    return run_stage(name, info, [&] {
      for (unsigned attempt = 1;; ++attempt) {
        auto begin = clock::now();
        try {
          trace_span span(ctx.counters->trace, span_kind::call, info.epoch, info.number);
          rejected.clear();
          batch_type out = source->read(indices, local);
          rejected.apply(out);
          ctx.counters->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
          return out;
        } catch (const io_error&) {
          if (attempt >= attempts) throw;
          ctx.counters->retries.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::sleep_for(std::chrono::milliseconds(1u << std::min(attempt, 8u)));
        }
      }
    });
  }
};

/// A map stage as it runs in one epoch: the stage itself, or what its
/// bind(build_info) returned.
template <class In, class Op>
auto bind_map(const Op& op, const build_info& info) {
  if constexpr (requires { op.template bind<In>(info); }) {
    return op.template bind<In>(info);
  } else if constexpr (requires { op.bind(info); }) {
    return op.bind(info);
  } else {
    return op;
  }
}
template <class Op, class In>
using bound_map_t = decltype(bind_map<In>(std::declval<const Op&>(), std::declval<const build_info&>()));

/// The batch a map stage makes of In.
template <class Op, class In>
using map_output_t = std::invoke_result_t<const bound_map_t<Op, In>&, In&&, const stage_context&>;

/// Runs a bound map stage on one batch: counts it, wraps its errors, and
/// drops the records it rejected under the skip policy.
template <class Bound, class In>
auto apply_map(const Bound& op, In&& in, const stage_context& ctx, const std::string& name) {
  rejections rejected;
  stage_context local = ctx;
  local.info = in.info();
  local.rejected = &rejected;
  return run_stage(name, local.info, [&] {
    trace_span span(ctx.counters->trace, span_kind::call, local.info.epoch, local.info.number);
    auto begin = clock::now();
    auto out = op(std::forward<In>(in), local);
    if constexpr (is_batch_v<decltype(out)>) {
      rejected.apply(out);
    } else if (!rejected.empty()) {  // a sink's own batch type (see delivered_batch)
      throw std::logic_error(
          "the stage rejected records, but its output is not a record_batch, so they cannot be "
          "dropped; reject them in a stage before it");
    }
    ctx.counters->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
    return out;
  });
}

/// A map stage applied to every batch of a batch function.
template <class Up, class Bound>
struct map_function {
  using batch_type = std::invoke_result_t<const Bound&, typename Up::batch_type&&, const stage_context&>;
  Up up;
  Bound op;
  stage_context ctx;
  std::string name;

  batch_type produce(std::span<const std::uint64_t> indices, batch_info info) const {
    return apply_map(op, up.produce(indices, info), ctx, name);
  }
};

/// A batch function driven in plan order on the consumer's thread.
template <batch_function Fn>
struct sequential_stream {
  using batch_type = typename Fn::batch_type;
  Fn fn;
  std::optional<epoch_plan> plan;
  std::uint64_t next_batch = 0;
  std::uint64_t epoch = 0;
  std::vector<std::uint64_t> indices;

  void start(const epoch_plan& p, std::uint64_t first) {
    plan.emplace(p);
    next_batch = first;
    epoch = p.epoch();
  }
  std::optional<batch_type> next() {
    if (next_batch >= plan->batch_count()) return std::nullopt;
    indices.resize(plan->batch_rows(next_batch));
    plan->batch_indices(next_batch, indices);
    batch_info info{epoch, next_batch++};
    return fn.produce(indices, info);
  }
  void stop() noexcept {}
};

/// A map stage applied on a stream's consumer thread.
template <batch_stream Up, class Bound>
struct map_stream {
  using batch_type = std::invoke_result_t<const Bound&, typename Up::batch_type&&, const stage_context&>;
  Up up;
  Bound op;
  stage_context ctx;
  std::string name;

  void start(const epoch_plan& p, std::uint64_t first) { up.start(p, first); }
  std::optional<batch_type> next() {
    auto in = up.next();
    if (!in) return std::nullopt;
    return std::optional<batch_type>(apply_map(op, std::move(*in), ctx, name));
  }
  void stop() noexcept { up.stop(); }
};

/// Attaches a map stage to a function or a stream, binding it for the epoch.
template <class Up, class Op>
auto attach_map(Up&& up, const Op& op, build_env& env) {
  std::string name(op.name());
  auto& counters = env.counters_for(name);
  // Errors while binding (a field the file lacks) name the stage, as a batch's would.
  auto bound = run_stage(name, env.start,
                         [&] { return bind_map<typename std::remove_cvref_t<Up>::batch_type>(op, env); });
  using Bound = decltype(bound);
  if constexpr (batch_function<std::remove_cvref_t<Up>>) {
    return map_function<std::remove_cvref_t<Up>, Bound>{std::forward<Up>(up), std::move(bound),
                                                        env.context(counters), name};
  } else {
    return map_stream<std::remove_cvref_t<Up>, Bound>{std::forward<Up>(up), std::move(bound), env.context(counters),
                                                      name};
  }
}

/// Turns a batch function into a stream; leaves a stream as it is.
template <class Node>
auto as_stream(Node&& node) {
  if constexpr (batch_function<std::remove_cvref_t<Node>>) {
    return sequential_stream<std::remove_cvref_t<Node>>{std::forward<Node>(node), {}, 0, 0, {}};
  } else {
    return std::forward<Node>(node);
  }
}

}  // namespace conveyor::detail
