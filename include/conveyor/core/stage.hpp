// conveyor/core/stage.hpp: the stage protocol, what every stage of a pipeline
// is and where it may stand.
//
// A stage is a value the pipeline keeps, with a name() for its stats row and
// one of three kinds:
//
//   stage_kind::map     a batch function: `out = op(std::move(in), ctx)` per
//                       batch, on whichever thread runs that part of the chain.
//                       Optionally `op.bind(build_info)` once per epoch returns
//                       the callable used for that epoch's batches (decoders
//                       bind field names there).
//   stage_kind::wrap    wraps the upstream batch function in another batch
//                       function (a cache answering from its tier first):
//                       `op.attach(upstream_function, env)`, and
//                       `template <class In> using output = ...`.
//   stage_kind::stream  turns the upstream (function or stream) into a stream
//                       driven by the consumer's thread (parallel, prefetch, a
//                       device stager, a sink): `op.attach(upstream, env)` and
//                       `output`.
//
// and a `placement` saying where it may stand, which append_stage checks once,
// for every stage, with a message that names the stage and the fix:
//
//   needs_batches    comes after batch(n)
//   before_streams   comes before parallel(n) and prefetch(n) (wrap stages,
//                    and parallel itself: they need the batch function)
//   host_only        reads its input columns on the host: none may be in
//                    device memory
//   must_be_last     a sink: nothing may follow it
//
// A sink's batch type (any type with rows() and size_bytes()) says which
// record_batch's columns it delivers, so with_pool(...) serves them: a member
// `using delivered_batch = ...;` or a specialization of delivered_batch below.
//
// Optionally, a stage of any kind may have `void end_epoch(std::uint64_t
// epoch) const`: the pipeline calls it once an epoch's batches are exhausted
// (the consumer's next() found the end), on the consumer's thread, after every
// thread the epoch started has stopped, for each stage that has it, upstream
// first. An epoch left early (break, an exception, finish()) does not call it.
// A cache flushes its write-behind tier there (docs/execution.md).
//
// A stage opts into messages that name it with CONVEYOR_STAGE_MESSAGES("its
// name(...)") inside its class; without it the messages say "this stage" and
// the compiler's instantiation note names the type. New kinds of stages (a
// device stager, a LibTorch sink) are written against this header and, for
// the upstream a wrap or stream stage attaches to (batch_function,
// batch_stream, as_stream, build_env, run_stage), core/stream.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/text.hpp"

namespace conveyor {

/// How a stage attaches to a chain (see the top of this header).
enum class stage_kind : std::uint8_t { map, wrap, stream };

/// Where a stage may stand in a chain.
struct stage_placement {
  bool needs_batches = true;    ///< must follow batch(n)
  bool before_streams = false;  ///< must precede parallel(n) and prefetch(n)
  bool host_only = true;        ///< reads its input columns on the host
  bool must_be_last = false;    ///< delivers the batches: nothing may follow
};

/// The record_batch whose columns a batch type delivers to the consumer: the
/// pipeline allocates those columns, all along the chain, from the sink's pool
/// (with_pool(...); a source or stage asks with ctx.pool_for), so a sink that
/// hands them on (a tensor over the buffer, a copy from pinned memory) needs
/// no copy of its own. A record_batch delivers itself. Any other batch type
/// (a sink's) delivers what its member `using delivered_batch = ...;` names,
/// or, for a type you do not own, what a specialization of this template says
/// (`using type = ...;`); a type that says neither delivers no columns (they
/// come from the pipeline's pageable pool). See docs/extending.md, "A sink".
template <class Batch>
struct delivered_batch {};
/// A record_batch delivers its own columns.
template <class... Columns>
struct delivered_batch<record_batch<Columns...>> {
  using type = record_batch<Columns...>;
};

/// Does Batch deliver a record_batch's columns (see delivered_batch)?
template <class Batch>
concept delivers_columns = requires { typename delivered_batch<Batch>::type; };

/// A batch type with a member `delivered_batch` delivers what that names (or
/// what the type it names delivers, for a wrapper of a wrapper). A member
/// naming something else is an error the pipeline reports.
template <class Batch>
  requires requires { typename Batch::delivered_batch; }
struct delivered_batch<Batch> {
  using type =
      typename std::conditional_t<delivers_columns<typename Batch::delivered_batch>,
                                  delivered_batch<typename Batch::delivered_batch>,
                                  std::type_identity<typename Batch::delivered_batch>>::type;
};

/// The record_batch a batch type delivers (see delivered_batch).
template <class Batch>
using delivered_batch_t = typename delivered_batch<Batch>::type;

/// What a stage learns once per epoch, when the chain is built, before the
/// first batch: the schemas of upstream text columns (so decoders bind field
/// names once) and the fingerprints a cache keys its entries by.
struct build_info {
  /// The text columns the source produces, by column name.
  std::vector<std::pair<std::string, std::shared_ptr<const text_schema>>> text_schemas;
  /// The source's identity and content (fingerprinted_source), else its name.
  std::uint64_t dataset_fingerprint = 0;
  /// Every stage attached so far and its parameters.
  std::uint64_t chain_fingerprint = 0;
  /// The epoch being built, and the batch it starts at (0, or a resume point).
  batch_info start;

  /// The schema of text column `column`, or null when upstream did not publish one.
  [[nodiscard]] const text_schema* schema_of(std::string_view column) const noexcept {
    for (const auto& [name, schema] : text_schemas)
      if (name == column) return schema.get();
    return nullptr;
  }
};

namespace detail {

template <class Stage>
consteval stage_placement placement_of() {
  if constexpr (requires { Stage::placement; }) {
    return Stage::placement;
  } else {
    return stage_placement{};
  }
}

// READ THIS IF YOUR COMPILE BREAKS HERE: the stage named in the instantiation
// above stands where it cannot work; the message says where it goes.
struct generic_stage_messages {
  template <bool Ok>
  struct check_batched {
    static_assert(Ok, "conveyor: this stage works on batches; add | batch(n) before it.");
  };
  template <bool Ok>
  struct check_before_streams {
    static_assert(Ok,
                  "conveyor: this stage needs the batch function that parallel(n) and prefetch(n) turn into a "
                  "stream, so it comes before them; move it before parallel(...) and prefetch(...).");
  };
  template <bool Ok, class Column>
  struct check_host_column {
    static_assert(Ok,
                  "conveyor: this stage reads columns on the host, and upstream delivers a column in device memory "
                  "(Column above); move the stage before the one that moves columns to the device.");
  };
  template <bool Ok>
  struct check_nothing_after {
    static_assert(Ok,
                  "conveyor: this stage delivers the pipeline's batches and must be the last one; move the stages "
                  "after it before it.");
  };
};

}  // namespace detail

/// Declares a stage's placement messages, naming it: put
/// `CONVEYOR_STAGE_MESSAGES("cache(...)")` in the stage's class.
#define CONVEYOR_STAGE_MESSAGES(label)                                                                         \
  template <bool Ok>                                                                                           \
  struct check_batched {                                                                                       \
    static_assert(Ok, "conveyor: " label " works on batches; add | batch(n) before it.");                       \
  };                                                                                                           \
  template <bool Ok>                                                                                           \
  struct check_before_streams {                                                                                \
    static_assert(Ok, "conveyor: " label " needs the batch function that parallel(n) and prefetch(n) turn "    \
                      "into a stream, so it comes before them; move " label " before parallel(...) and "       \
                      "prefetch(...).");                                                                       \
  };                                                                                                           \
  template <bool Ok, class Column>                                                                             \
  struct check_host_column {                                                                                   \
    static_assert(Ok, "conveyor: " label " reads columns on the host, and upstream delivers a column in "      \
                      "device memory (Column above); move " label " before the stage that moves columns to "   \
                      "the device.");                                                                          \
  };                                                                                                           \
  template <bool Ok>                                                                                           \
  struct check_nothing_after {                                                                                 \
    static_assert(Ok, "conveyor: " label " delivers the pipeline's batches and must be the last stage; move "  \
                      "the stages after it before it.");                                                       \
  };

namespace detail {

/// Does Stage have the optional epoch-end hook (see the top of this header)?
template <class Stage>
concept ends_epochs = requires(const Stage& stage, std::uint64_t epoch) { stage.end_epoch(epoch); };

template <class Stage>
concept names_its_messages = requires {
  typename Stage::template check_batched<true>;
  typename Stage::template check_before_streams<true>;
  typename Stage::template check_nothing_after<true>;
};

template <class Stage>
using stage_messages = std::conditional_t<names_its_messages<Stage>, Stage, generic_stage_messages>;

/// The first column of Batch in device memory, or void.
template <class Batch>
struct first_device_column {
  using type = void;
};
template <class First, class... Rest>
struct first_device_column<record_batch<First, Rest...>> {
  using type = std::conditional_t<!host_accessible(space_of<First>()), First,
                                  typename first_device_column<record_batch<Rest...>>::type>;
};

}  // namespace detail

}  // namespace conveyor
