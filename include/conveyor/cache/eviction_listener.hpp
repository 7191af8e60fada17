// conveyor/cache/eviction_listener.hpp: how a tier reports what it evicts.
//
// `tiered<...>` in write-back mode hands each value its upper tier evicts to
// the tier below; tiers that can report evictions satisfy
// `eviction_reporting_tier`.
#pragma once

#include <cstddef>
#include <functional>
#include <span>

#include "conveyor/cache/tier.hpp"

namespace conveyor {

/// Called with each entry a tier evicts to make room (not for `erase`, not for
/// a value replaced by a newer `put` of the same key). Tiers call it on the
/// thread whose `put` caused the eviction and without holding their own locks,
/// so it may call into other tiers. It must not throw.
using eviction_listener = std::function<void(const cache_key&, std::span<const std::byte>)>;

/// A cache tier that can report its evictions. `set_eviction_listener` replaces
/// the listener (an empty function removes it); it need not be thread-safe.
template <class T>
concept eviction_reporting_tier = cache_tier<T> && requires(T& tier, eviction_listener listener) {
  tier.set_eviction_listener(std::move(listener));
};

}  // namespace conveyor
