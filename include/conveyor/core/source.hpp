// conveyor/core/source.hpp: what a pipeline reads from.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"

namespace conveyor {

/// A random-access collection of records that reads a whole batch of record
/// indices at once into a batch allocated from ctx.pool, rows in the order
/// given. `read` is const and must be safe to call from several threads at
/// once (parallel(n) does). Bad records go through ctx.reject (dropped under
/// the skip policy); I/O failures throw io_error (retried under retry(n)).
template <class S>
concept record_source =
    requires(const S& source, std::span<const std::uint64_t> indices, const stage_context& ctx) {
      typename S::batch_type;
      requires is_batch_v<typename S::batch_type>;
      { source.size() } -> std::convertible_to<std::uint64_t>;
      { source.read(indices, ctx) } -> std::same_as<typename S::batch_type>;
      { source.name() } -> std::convertible_to<std::string_view>;
    };

/// A source that can name what it reads, so a cache never serves entries of a
/// changed file: a 64-bit fingerprint of its identity and content (for a file:
/// path, size, modification time and sampled bytes).
template <class S>
concept fingerprinted_source = record_source<S> && requires(const S& source) {
  { source.fingerprint() } -> std::convertible_to<std::uint64_t>;
};

}  // namespace conveyor
