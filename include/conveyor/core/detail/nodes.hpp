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
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/context.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor::detail {

using clock = std::chrono::steady_clock;

/// What building a chain needs: the pool, the policy and the stage counters
/// (created on the first epoch, reused by position afterwards).
struct build_env {
  std::shared_ptr<buffer_pool> pool;
  error_policy policy;
  stats_registry* registry = nullptr;
  std::vector<stage_counters*>* counters = nullptr;
  std::size_t next_counter = 0;
  /// The source's identity and content (fingerprinted_source), else its name.
  std::uint64_t dataset_fingerprint = 0;
  /// Every stage attached so far and its parameters: a cache keys its entries
  /// by (dataset_fingerprint, chain_fingerprint, record) so a changed file or
  /// decoder never reads stale values.
  std::uint64_t chain_fingerprint = 0x6a09e667f3bcc908ull;

  stage_counters& counters_for(const std::string& name) {
    if (next_counter == counters->size()) counters->push_back(&registry->add(name));
    return *(*counters)[next_counter++];
  }
  [[nodiscard]] stage_context context(stage_counters& c) const { return {pool, policy, &c, {}}; }
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

/// FNV-1a of a name, for stages that offer no fingerprint of their own.
constexpr std::uint64_t hash_name(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

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
    stage_context local = ctx;
    local.info = info;
    unsigned attempts = ctx.policy.action == error_policy::kind::retry ? ctx.policy.attempts : 1;
    return run_stage(name, info, [&] {
      for (unsigned attempt = 1;; ++attempt) {
        auto begin = clock::now();
        try {
          batch_type out = source->read(indices, local);
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

/// A map stage applied to every batch of a batch function.
template <class Up, class Op>
struct map_function {
  using batch_type = std::invoke_result_t<const Op&, typename Up::batch_type&&, const stage_context&>;
  Up up;
  Op op;
  stage_context ctx;
  std::string name;

  batch_type produce(std::span<const std::uint64_t> indices, batch_info info) const {
    auto in = up.produce(indices, info);
    stage_context local = ctx;
    local.info = info;
    return run_stage(name, info, [&] {
      auto begin = clock::now();
      batch_type out = op(std::move(in), local);
      ctx.counters->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
      return out;
    });
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
template <batch_stream Up, class Op>
struct map_stream {
  using batch_type = std::invoke_result_t<const Op&, typename Up::batch_type&&, const stage_context&>;
  Up up;
  Op op;
  stage_context ctx;
  std::string name;

  void start(const epoch_plan& p, std::uint64_t first) { up.start(p, first); }
  std::optional<batch_type> next() {
    auto in = up.next();
    if (!in) return std::nullopt;
    stage_context local = ctx;
    local.info = in->info();
    return run_stage(name, local.info, [&] {
      auto begin = clock::now();
      batch_type out = op(std::move(*in), local);
      ctx.counters->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
      return std::optional<batch_type>(std::move(out));
    });
  }
  void stop() noexcept { up.stop(); }
};

/// Attaches a map stage to a function or a stream.
template <class Up, class Op>
auto attach_map(Up&& up, const Op& op, build_env& env) {
  std::string name(op.name());
  auto& counters = env.counters_for(name);
  if constexpr (batch_function<std::remove_cvref_t<Up>>) {
    return map_function<std::remove_cvref_t<Up>, Op>{std::forward<Up>(up), op, env.context(counters), name};
  } else {
    return map_stream<std::remove_cvref_t<Up>, Op>{std::forward<Up>(up), op, env.context(counters), name};
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
