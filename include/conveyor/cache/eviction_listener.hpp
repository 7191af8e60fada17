// conveyor/cache/eviction_listener.hpp: how a tier reports what it evicts,
// and how it takes a conditional put: the two hooks `tiered<...>` uses.
//
// `tiered<...>` in write-back mode hands each value its upper tier evicts to
// the tier below; tiers that can report evictions satisfy
// `eviction_reporting_tier` (`memory_tier`; the shm, disk and Redis tiers do
// not report, so a write-back stack writes through past them). `tiered`
// promotes a value into an upper tier with a conditional put where the tier
// has one (`conditional_put_tier`), so that a promotion never lands after a
// newer put or an erase of the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "conveyor/cache/tier.hpp"

namespace conveyor {

/// Called with each entry a tier evicts to make room (not for `erase`, not for
/// a value replaced by a newer `put` of the same key), on the thread whose
/// `put` caused the eviction, **before** the tier releases the lock that
/// guards the victim's key (`memory_tier`: the shard's lock). So the hand-over
/// is atomic with the eviction: no other thread sees the tier without the
/// entry before the listener has it, and a later put or erase of the key in
/// this tier is ordered after the listener returned. `tiered`'s write-back
/// relies on this: a lookup that misses the upper tier finds the value below,
/// and an older value handed down never lands after a newer put or an erase.
///
/// Hence the rules: the listener must not throw and must not call into the
/// tier that reports to it (its lock is held: deadlock), nor into the batch
/// calls of another `memory_tier` (`get_many`, `visit_many`, `put_many`,
/// `put_many_with`: the evicting batch call is in the middle of its
/// per-thread buffers). Single calls into other tiers are fine, and that is
/// all `tiered` does (`put`, and `erase` when the tier below refuses). Keep it
/// short: readers of the shard wait for it (a write-behind `disk_tier`'s put
/// copies the value into its queue, and waits only when the queue is full).
using eviction_listener = std::function<void(const cache_key&, std::span<const std::byte>)>;

/// A cache tier that can report its evictions. `set_eviction_listener` replaces
/// the listener (an empty function removes it); it need not be thread-safe.
template <class T>
concept eviction_reporting_tier = cache_tier<T> && requires(T& tier, eviction_listener listener) {
  tier.set_eviction_listener(std::move(listener));
};

/// A tier with a put evaluated under its own lock: `put_if(key, value, keep)`
/// stores `value` only if keep() returns true, keep() being called under the
/// lock that every put, erase and eviction of `key` in this tier holds, so no
/// such call lands between keep() and the store. When keep() is false or the
/// value does not fit, the tier is left as it was (an older value is not
/// erased) and it returns false. `tiered` promotes with it: keep() checks that
/// no write of the key began since the lookup (tiered.hpp). `memory_tier` has it.
template <class T>
concept conditional_put_tier = cache_tier<T> &&
    requires(T& tier, const cache_key& key, std::span<const std::byte> value, bool (&keep)()) {
  { tier.put_if(key, value, keep) } -> std::same_as<bool>;
};

/// The condition that keeps every value: `put_many_if(keys, values,
/// keep_every_value{}, stored)` is a `put_many` that leaves the older value
/// of each key it refuses in place (what `tiered`'s write-back passes).
struct keep_every_value {
  constexpr bool operator()(std::size_t) const noexcept { return true; }
};

/// A `conditional_put_tier` with a batched conditional put:
/// `put_many_if(keys, values, keep, stored)` stores values[i] only if keep(i)
/// (i the value's position in the batch) returns true, keep(i) being called under the lock that
/// orders the puts, erases and evictions of keys[i] in this tier; stored[i] says which were stored,
/// and it returns how many. A value not kept, or refused (too large, no room), leaves its key as it
/// was: an older value is not erased. `tiered` puts a write-back batch into such a tier with it, so
/// that a refused value leaves the older one in place until the new one is below (tiered.hpp).
/// `memory_tier` has it.
template <class T>
concept conditional_put_many_tier = conditional_put_tier<T> &&
    requires(T& tier, std::span<const cache_key> keys,
             std::span<const std::span<const std::byte>> values, keep_every_value& keep,
             std::span<std::uint8_t> stored) {
  { tier.put_many_if(keys, values, keep, stored) } -> std::same_as<std::size_t>;
};

}  // namespace conveyor
