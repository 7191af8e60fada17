// conveyor/source/generate.hpp: a source of records computed by a function.
//
// `generate<dense<"x", float>>(count, width, fill)` has `count` records; the
// record with index i is the row `fill(i, row)` writes into a span of `width`
// values. Useful for synthetic data, tests and benchmarks. `fill` is called
// from whichever thread reads the batch, so it must be safe to call
// concurrently. A data_error thrown by fill rejects that record (dropped and
// counted under the skip policy); any other exception fails the batch.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

template <class Column, class Fill>
class generated_source {
 public:
  using value_type = typename Column::value_type;
  using batch_type = record_batch<Column>;

  generated_source(std::uint64_t count, std::size_t width, Fill fill, std::string name = "generate")
      : count_(count), width_(width), fill_(std::move(fill)), name_(std::move(name)) {}

  [[nodiscard]] std::uint64_t size() const noexcept { return count_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// Count, width and name: `fill` cannot be fingerprinted, so generated
  /// sources with different fills need different names to keep cache entries apart.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::combine(detail::combine(detail::fnv1a(name_, detail::salt::source), count_), width_);
  }

  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    auto& column = out.template get<Column::name>();
    column = typename Column::storage(ctx.pool_for(Column::name.view()), indices.size(), width_);
    for (std::size_t r = 0; r < indices.size(); ++r) {
      if (indices[r] >= count_)
        throw data_error("record index out of range (size " + std::to_string(count_) + ")", name_, indices[r]);
      try {
        fill_(indices[r], column.row(r));
      } catch (const data_error& bad) {
        ctx.reject(bad, r);  // throws unless the policy is skip; the pipeline drops row r
      }
    }
    return out;
  }

 private:
  std::uint64_t count_;
  std::size_t width_;
  Fill fill_;
  std::string name_;
};

/// generate<Column>(count, width, fill): see the top of this header.
template <class Column, class Fill>
auto generate(std::uint64_t count, std::size_t width, Fill fill, std::string name = "generate") {
  return generated_source<Column, Fill>(count, width, std::move(fill), std::move(name));
}

}  // namespace conveyor
