// conveyor/core/stream.hpp: what a wrap or stream stage of your own is written
// against (stage_kind::wrap and stage_kind::stream, core/stage.hpp), by the
// names the built-in ones use.
//
// When an epoch starts, the pipeline builds its chain: each such stage's
// `attach(upstream, env)` receives what the stages before it became and
// returns what it becomes itself, one of
//
//   batch_function  `produce(indices, info) -> batch_type`, pure and callable
//                   from several threads at once: the chain up to the first
//                   execution stage (a wrap stage such as a cache gets and
//                   returns one; parallel(n) runs one on its pool);
//   batch_stream    `start(plan, first)`, `next() -> optional<batch_type>`
//                   (nullopt at the epoch's end), `stop()`: driven by the
//                   consumer's thread (parallel, prefetch, a device stager, a
//                   sink). stop() is called once after start(), at the end
//                   and on an early exit (break, an exception), and must not
//                   throw; it stops upstream and any thread the stream started.
//
// A stream stage that may follow either calls as_stream(upstream): a batch
// function is then run in plan order on the consumer's thread. `env`
// (build_env) holds the epoch's build_info and hands out the stage's stats row
// (counters_for) and a stage_context for it (context). run_stage wraps what a
// stage's work throws in a stage_error naming the stage, the epoch and the
// batch, as the pipeline does for map stages. docs/extending.md, "A stream
// sink", has a whole example.
#pragma once

#include <concepts>
#include <string>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/detail/nodes.hpp"

namespace conveyor {

/// What a wrap or stream stage's `attach(upstream, env)` gets, once per epoch:
/// the build_info (text schemas, fingerprints, the epoch and its first batch),
/// `counters_for(name)`, the stage's row in `stats()` (call it once per attach,
/// in chain order), and `context(counters)`, a stage_context for that row (the
/// pools, the error policy). Its other members are the pipeline's.
using build_env = detail::build_env;

/// A pure batch function: `produce(indices, info)` returns `batch_type`, and
/// may be called from several threads at once.
template <class N>
concept batch_function = detail::batch_function<N>;

/// A stream of batches driven by one consumer thread: `start(plan, first)`,
/// `next()` returning `std::optional<batch_type>`, `stop()`.
template <class N>
concept batch_stream = detail::batch_stream<N>;

// as_stream and run_stage are the functions the built-in stages call, published
// here by using-declarations. Doxygen lists no function from a using-declaration,
// so it reads the declarations below instead (docs/Doxyfile defines
// CONVEYOR_DOXYGEN); the compiler checks that the published names still match
// them.
#ifdef CONVEYOR_DOXYGEN
/// `as_stream(upstream)`: a batch_function as a batch_stream that produces the
/// plan's batches in order on the consumer's thread; a batch_stream unchanged.
template <class Node>
auto as_stream(Node&& upstream);

/// `run_stage(name, info, work)`: returns `work()`; what it throws leaves as a
/// stage_error naming stage `name`, `info.epoch` and `info.number` (a
/// stage_error from upstream passes unchanged).
template <class Work>
auto run_stage(const std::string& name, const batch_info& info, Work&& work) -> decltype(work());
#else
using detail::as_stream;
using detail::run_stage;

static_assert(
    requires(int upstream) {
      { as_stream(upstream) } -> std::same_as<int>;
    },
    "as_stream(upstream) no longer matches its declaration for the API reference above");
static_assert(
    requires(const std::string& name, const batch_info& info, int (&work)()) {
      { run_stage(name, info, work) } -> std::same_as<int>;
    },
    "run_stage(name, info, work) no longer matches its declaration for the API reference above");
#endif

}  // namespace conveyor
