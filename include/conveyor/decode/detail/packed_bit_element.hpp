// conveyor/decode/detail/packed_bit_element.hpp: the per-value step of
// unpacking packed bits, written once for host and device.
//
// Everything here is CONVEYOR_HOST_DEVICE (or a constexpr scalar a device
// function may read) and needs neither the AVX2 kernels nor exceptions, so a
// .cu file can include this header alone and call unpack_bit with one thread
// per value; packed_bits_kernels.hpp builds the host row kernels on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "conveyor/core/host_device.hpp"
#include "conveyor/decode/bit_order.hpp"
#include "conveyor/decode/detail/bit_values.hpp"

namespace conveyor {
namespace detail {

// The encoding of 1 in a 16-bit element type, as a constant a device function
// may read (a namespace-scope constexpr scalar, unlike a call to bit_one).
template <bit_element T>
inline constexpr std::uint16_t half_one_bits = bit_one<T>().bits;

/// Value `index` of the packed row starting at `row`: 0 or 1.
CONVEYOR_HOST_DEVICE constexpr unsigned packed_bit(const std::uint8_t* row, std::size_t index,
                                                   bit_order order) noexcept {
  const auto position = static_cast<unsigned>(index & 7u);
  const unsigned shift = order == bit_order::big ? 7u - position : position;
  return (static_cast<unsigned>(row[index >> 3]) >> shift) & 1u;
}

/// Writes `bit` (0 or 1) into *out as T's 0 or 1 (the values of bit_zero /
/// bit_one; 0 is all-zero bits in every T).
template <bit_element T>
CONVEYOR_HOST_DEVICE constexpr void store_bit(T* out, unsigned bit) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    *out = static_cast<float>(bit);  // exact: 0.0f or 1.0f
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    *out = static_cast<std::uint8_t>(bit);
  } else {
    out->bits = static_cast<std::uint16_t>(bit * half_one_bits<T>);
  }
}

/// Expands value `index` of the packed row `row` into out[index]: the whole
/// per-element step, one thread's work in a device kernel.
template <bit_element T>
CONVEYOR_HOST_DEVICE constexpr void unpack_bit(const std::uint8_t* row, T* out, std::size_t index,
                                               bit_order order) noexcept {
  store_bit(out + index, packed_bit(row, index, order));
}

/// The bits of the last byte of a `count`-value row that hold no value (the
/// padding np.packbits sets to zero); 0 when count is a multiple of 8.
CONVEYOR_HOST_DEVICE constexpr std::uint8_t padding_mask(std::size_t count,
                                                         bit_order order) noexcept {
  const auto used = static_cast<unsigned>(count & 7u);
  if (used == 0) return 0;
  return static_cast<std::uint8_t>(order == bit_order::big ? 0xFFu >> used : 0xFFu << used);
}

}  // namespace detail
}  // namespace conveyor
