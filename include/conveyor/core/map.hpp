// conveyor/core/map.hpp: map(name, f) applies a user function to every batch.
//
// Call forms: `map(pipe, "name", f)` and `pipe | map("name", f)`. `f` takes
// the upstream batch by rvalue (and optionally the stage_context, for the
// pool and the error policy) and returns a batch, of the same type or not.
// Thread: whichever thread runs its part of the chain (a parallel worker if
// it is upstream of parallel, so f must then be safe to call concurrently).
// Errors: an exception from f reaches the consumer as a stage_error naming
// the stage. Allocates: whatever f allocates (use ctx.pool for columns).
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

namespace detail {
template <class F>
struct map_stage {
  static constexpr stage_kind kind = stage_kind::map;
  CONVEYOR_STAGE_MESSAGES("map(...)")
  std::string label;
  F function;

  [[nodiscard]] std::string_view name() const noexcept { return label; }

  template <class In>
  auto operator()(In&& in, const stage_context& ctx) const {
    if constexpr (std::invocable<const F&, In&&, const stage_context&>) {
      return function(std::forward<In>(in), ctx);
    } else {
      return function(std::forward<In>(in));
    }
  }
};
}  // namespace detail

struct map_fn {
  template <pipeline_or_source Upstream, class F>
  auto operator()(Upstream&& upstream, std::string name, F function) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    using P = decltype(p);
    if constexpr (P::batched) {
      using In = typename P::batch_type;
      static_assert(std::invocable<const F&, In&&> || std::invocable<const F&, In&&, const stage_context&>,
                    "conveyor: the function given to map cannot take the upstream batch; it must accept "
                    "record_batch<...>&& (and optionally const stage_context&), as printed in the error above.");
    }
    return append_stage(std::move(p), detail::map_stage<F>{std::move(name), std::move(function)});
  }
  template <class F>
  auto operator()(std::string name, F function) const {
    return bound_closure<map_fn, std::string, F>(std::move(name), std::move(function));
  }
};
/// map(name, f): see the top of this header.
inline constexpr map_fn map{};

}  // namespace conveyor
