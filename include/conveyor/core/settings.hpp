// conveyor/core/settings.hpp: pipeline-wide settings that read as stages.
//
// `pipe | on_errors(on_error::skip)` picks the error policy of every stage;
// `pipe | with_pool(pool)` makes the sink's pool the one every stage
// allocates from (buffers flow backwards). Both may appear anywhere; the last
// one wins. They add no stage to the chain.
#pragma once

#include <memory>
#include <stdexcept>
#include <utility>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

struct on_errors_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, error_policy policy) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    p.shared().policy = policy;
    return p;
  }
  auto operator()(error_policy policy) const { return bound_closure<on_errors_fn, error_policy>(policy); }
};
/// on_errors(policy): on_error::fail (default), on_error::skip, on_error::retry(n).
inline constexpr on_errors_fn on_errors{};

struct with_pool_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::shared_ptr<buffer_pool> pool) const {
    if (!pool) throw std::invalid_argument("with_pool: the pool is null");
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    p.shared().pool = std::move(pool);
    return p;
  }
  auto operator()(std::shared_ptr<buffer_pool> pool) const {
    return bound_closure<with_pool_fn, std::shared_ptr<buffer_pool>>(std::move(pool));
  }
};
/// with_pool(pool): the pool every stage allocates its columns from.
inline constexpr with_pool_fn with_pool{};

}  // namespace conveyor
