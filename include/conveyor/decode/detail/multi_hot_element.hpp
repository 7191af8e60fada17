// conveyor/decode/detail/multi_hot_element.hpp: the per-value step of
// expanding an index list (the grams present in a record) into a multi-hot
// row, written once for host and device.
//
// A record's labels travel as a fixed-width row of int32 indices padded with
// no_index (-1): about 17 indices (68 bytes) for a DEA record instead of 1036
// floats (4144 bytes). One device thread per output value calls
// expand_multi_hot_element (gpu/decode_kernels.cuh); the CPU test calls the
// same function and compares with two_grams().
#pragma once

#include <cstddef>
#include <cstdint>

#include "conveyor/core/host_device.hpp"
#include "conveyor/decode/detail/packed_bit_element.hpp"
#include "conveyor/decode/index_rows.hpp"

namespace conveyor {
namespace detail {

/// Writes out_row[column] as T's 1 when `column` is among the `count`
/// indices of the row, else T's 0 (padding never matches: it is negative).
template <bit_element T>
CONVEYOR_HOST_DEVICE constexpr void expand_multi_hot_element(const std::int32_t* indices,
                                                             std::size_t count, T* out_row,
                                                             std::size_t column) noexcept {
  unsigned present = 0;
  for (std::size_t k = 0; k < count; ++k)
    present |= indices[k] == static_cast<std::int32_t>(column) ? 1u : 0u;
  store_bit(out_row + column, present);
}

}  // namespace detail
}  // namespace conveyor
