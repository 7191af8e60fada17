// conveyor/core/settings.hpp: pipeline-wide settings that read as stages.
//
// `pipe | on_errors(on_error::skip)` picks the error policy of every stage;
// `pipe | with_pool(pool)` gives the pool the delivered columns are allocated
// from, by the stage that produces each (buffers flow backwards); index
// columns, text and other intermediate buffers stay pageable. The pool must
// hand out host-accessible memory (a pageable or pinned pool; device memory
// comes only through a device stage). `pipe | memory_budget(bytes)` bounds
// the host memory of the batches the pipeline holds (parallel's reorder
// window, prefetch's queue and the batch each producer and the consumer hold,
// each at the largest batch measured where it is held, as allocated; the
// consumer's as delivered after every stage),
// the cache tiers' resident bytes and 64 KiB per pipeline thread:
// parallel(autotune) and prefetch(autotune) grow only within it, and a budget
// too small for the pipeline's minimum is a std::invalid_argument naming the
// numbers (at once if the cache tiers alone exceed it, else when the first
// batch is measured). Without parallel or prefetch it checks the consumer's
// one batch (see docs/tuning.md). All may appear anywhere; the last one wins. They add no stage to the chain and change only the pipeline they
// return (a pipeline is a value).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <stdexcept>
#include <utility>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/memory_budget.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

struct on_errors_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, error_policy policy) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    detail::pipeline_access::settings(p).policy = policy;
    return p;
  }
  auto operator()(error_policy policy) const { return bound_closure<on_errors_fn, error_policy>(policy); }
};
/// on_errors(policy): on_error::fail (default), on_error::skip, on_error::retry(n).
inline constexpr on_errors_fn on_errors{};

struct with_pool_fn {
  template <pipeline_or_source Upstream, class Pool>
  auto operator()(Upstream&& upstream, std::shared_ptr<Pool> pool) const {
    static_assert(host_pool<Pool>,
                  "conveyor: with_pool(...) takes a pool of host memory (pageable_pool, pinned_pool): the stages "
                  "that produce the delivered columns write them on the host. Device memory comes from a device "
                  "stage at the end of the pipeline instead.");
    if (!pool) throw std::invalid_argument("with_pool: the pool is null");
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    detail::pipeline_access::settings(p).output_pool = std::move(pool);
    return p;
  }
  template <class Pool>
  auto operator()(std::shared_ptr<Pool> pool) const {
    return bound_closure<with_pool_fn, std::shared_ptr<Pool>>(std::move(pool));
  }
};
/// with_pool(pool): the pool every stage allocates its columns from.
inline constexpr with_pool_fn with_pool{};

struct memory_budget_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::uint64_t bytes) const {
    if (bytes == 0) throw std::invalid_argument("memory_budget: the budget must be at least one batch, not 0 bytes");
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    if constexpr (!std::same_as<decltype(p), invalid_pipeline>) {
      // Cache stages already in the chain are charged now; later ones when an epoch starts.
      detail::memory_governor check(bytes, detail::cache_resident_bytes(p.stages()));
      detail::pipeline_access::settings(p).memory_budget = bytes;
    }
    return p;
  }
  auto operator()(std::uint64_t bytes) const { return bound_closure<memory_budget_fn, std::uint64_t>(bytes); }
};
/// memory_budget(bytes): the most memory the pipeline's queued batches and caches may take.
inline constexpr memory_budget_fn memory_budget{};

}  // namespace conveyor
