// conveyor/decode/multi_hot.hpp: index rows (the positions of the ones) ->
// multi-hot rows, on the CPU, as a column decoder.
//
//   cy::decode(cy::two_gram_indices({"GivenName", "Surname", "Birthday"}) >> cy::column<"y_index">)
//     | cy::cache(tier)
//     | cy::decode(cy::multi_hot<float>(cy::column<"y_index">, 1036) >> cy::column<"y">)
//
// Why: a sparse 0/1 row is cheap to keep and to move as the list of its ones
// (a DEA label: about 17 of 1036 set, 64 int32 = 256 bytes instead of 4144
// bytes of float32), and cheap to expand where it is used. docs/cache-stage.md
// recommends caching this form and expanding after the cache;
// gpu::expand_multi_hot does the same on the device.
//
// Columns: a dense column `Input` of int32, any width (the most ones a row
// may have), each row's indices followed by no_index (-1) padding, in -> a
// dense column of T (float, float16, bfloat16, uint8), `width` values per
// row, 1 at each index and 0 elsewhere. Repeated indices set the same value;
// order does not matter. Allocates nothing beyond the output column (the
// decode stage allocates it). Errors: an index outside [0, width) other than
// no_index is a data_error naming the column, the record and the index
// (dropped under on_error::skip). Thread-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/fixed_string.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/detail/multi_hot_element.hpp"

namespace conveyor {

/// multi_hot<T>(column<"indices">, width): see the top of this header.
template <bit_element T, fixed_string Input>
struct multi_hot_decoder {
  using value_type = T;
  using input_value = std::int32_t;
  static constexpr auto input = Input;
  std::size_t row_width;

  [[nodiscard]] std::size_t width() const noexcept { return row_width; }

  void decode_rows(const dense_column<std::int32_t>& in, dense_column<T>& out,
                   std::span<const std::uint64_t> records, const stage_context& ctx) const {
    const std::size_t rows = in.rows();
    if (rows == 0) return;
    for (std::size_t r = 0; r < rows; ++r) {
      auto indices = in.row(r);
      const std::span<T> out_row = out.row(r);
      T* row = out_row.data();
      // Row by row, so that the ones land in lines the zeroing just brought
      // into the L1 (+0 in every bit_element type).
      std::memset(static_cast<void*>(row), 0, out_row.size_bytes());
      for (std::int32_t index : indices) {
        if (index == no_index) continue;
        if (index < 0 || static_cast<std::size_t>(index) >= row_width) {
          ctx.reject(data_error("column '" + std::string(Input.view()) + "': index " +
                                    std::to_string(index) + " is outside [0, " +
                                    std::to_string(row_width) + ") of multi_hot",
                                std::string(Input.view()), records[r]),
                     r);
          break;
        }
        detail::store_bit(row + index, 1u);
      }
    }
  }

  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::combine(
        detail::combine(detail::hash_name(Input.view()), row_width ^ (sizeof(T) << 40)),
        detail::hash_name("multi_hot"));
  }
};

// Input is column<"name">'s type, not column_name<Name>: see column_name_type.
template <bit_element T = float, column_name_type Input>
auto multi_hot(Input, std::size_t width) {
  return multi_hot_decoder<T, Input::name>{width};
}

}  // namespace conveyor
