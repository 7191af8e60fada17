// conveyor/decode/detail/bit_values.hpp: the encodings of 0 and 1 in each
// element type a bit decoder writes (bit_element, decode/bit_element.hpp),
// and the portable (scalar) kernels.
//
// The portable kernels are the reference: the AVX2 kernels hand their last,
// partial block and any block that holds a bad character to them, so both paths
// write the same values and stop at the same position by construction.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "conveyor/core/half.hpp"
#include "conveyor/decode/bit_element.hpp"

namespace conveyor {
namespace detail {

/// The value a set bit decodes to in T.
template <bit_element T>
constexpr T bit_one() noexcept {
  if constexpr (std::same_as<T, float>) return 1.0f;
  else if constexpr (std::same_as<T, float16>) return float16::from_bits(0x3C00);
  else if constexpr (std::same_as<T, bfloat16>) return bfloat16::from_bits(0x3F80);
  else return std::uint8_t{1};
}

/// The value a clear bit decodes to in T (+0.0 or 0).
template <bit_element T>
constexpr T bit_zero() noexcept {
  if constexpr (std::same_as<T, float>) return 0.0f;
  else if constexpr (std::same_as<T, float16>) return float16::from_bits(0);
  else if constexpr (std::same_as<T, bfloat16>) return bfloat16::from_bits(0);
  else return std::uint8_t{0};
}

/// True when all 8 bytes of the word are '0' (0x30) or '1' (0x31).
constexpr bool all_bit_chars(std::uint64_t word) noexcept {
  return (word & 0xFEFE'FEFE'FEFE'FEFEull) == 0x3030'3030'3030'3030ull;
}

/// Writes text[i] as 0/1 into out[i] for i < count. Returns count, or the index
/// of the first byte that is not '0'/'1'; out[0, that index) is written then and
/// the rest left untouched.
template <bit_element T>
std::size_t bit_chars_to_values_portable(const char* text, std::size_t count, T* out) noexcept {
  const T values[2] = {bit_zero<T>(), bit_one<T>()};  // a load, not a branch, per character
  std::size_t index = 0;
  for (; index + 8 <= count; index += 8) {
    std::uint64_t word;
    std::memcpy(&word, text + index, 8);
    if (!all_bit_chars(word)) break;  // the byte loop below finds the exact position
    for (std::size_t k = 0; k < 8; ++k) out[index + k] = values[text[index + k] & 1];
  }
  for (; index < count; ++index) {
    const unsigned digit = static_cast<unsigned char>(text[index]) - unsigned{'0'};
    if (digit > 1) return index;
    out[index] = digit ? bit_one<T>() : bit_zero<T>();
  }
  return count;
}

/// Packs '0'/'1' characters MSB-first into bytes; the unused low bits of a last,
/// partial byte are zero (numpy.packbits). Returns count, or the index of the
/// first bad character; the bytes before the one holding it are written then.
inline std::size_t bit_chars_to_packed_portable(const char* text, std::size_t count,
                                                std::uint8_t* packed) noexcept {
  for (std::size_t byte_start = 0; byte_start < count; byte_start += 8) {
    unsigned accumulated = 0;
    const std::size_t byte_end = count - byte_start < 8 ? count : byte_start + 8;
    for (std::size_t index = byte_start; index < byte_end; ++index) {
      const unsigned digit = static_cast<unsigned char>(text[index]) - unsigned{'0'};
      if (digit > 1) return index;
      accumulated |= digit << (7 - (index - byte_start));
    }
    packed[byte_start >> 3] = static_cast<std::uint8_t>(accumulated);
  }
  return count;
}

}  // namespace detail
}  // namespace conveyor
