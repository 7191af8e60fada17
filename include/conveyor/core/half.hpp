// conveyor/core/half.hpp: 16-bit floating-point storage types.
//
// `float16` (IEEE 754 binary16) and `bfloat16` (the top half of a binary32) are
// storage types: they hold 16 bits and convert to and from `float`. They do no
// arithmetic of their own; convert to float, compute, convert back. Both are
// trivially copyable standard-layout structs of exactly two bytes, so a span of
// them can be handed to CUDA or LibTorch as kHalf / kBFloat16 memory.
//
// Conversions from float round to nearest, ties to even, the way CUDA's
// __float2half_rn and PyTorch's .to(torch.float16 / torch.bfloat16) do: values
// beyond the finite range become infinity, NaN stays NaN (quiet), float16
// subnormals are produced exactly. Conversions to float are exact.
// Everything here is constexpr, noexcept, allocation-free and thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace conveyor {

namespace detail {

/// binary32 -> binary16 bits, round to nearest even.
constexpr std::uint16_t float_to_float16_bits(float value) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFF'FFFFu;
  if (magnitude >= 0x7F80'0000u) {  // infinity or NaN
    if (magnitude == 0x7F80'0000u) return sign | 0x7C00u;
    // Keep the top payload bits and force the quiet bit so a NaN never turns into infinity.
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x03FFu));
  }
  // 65520 is halfway between 65504 (largest finite) and 65536; ties go to the even
  // neighbour, which is infinity.
  if (magnitude >= 0x477F'F000u) return sign | 0x7C00u;
  if (magnitude < 0x3880'0000u) {  // below 2^-14: a float16 subnormal or zero
    // 2^-25 is exactly halfway between 0 and the smallest subnormal 2^-24: ties to 0.
    if (magnitude <= 0x3300'0000u) return sign;
    const std::uint32_t exponent = magnitude >> 23;  // 102..112 here
    const std::uint32_t mantissa = (magnitude & 0x007F'FFFFu) | 0x0080'0000u;
    const std::uint32_t shift = 126u - exponent;  // 14..24
    std::uint32_t quotient = mantissa >> shift;
    const std::uint32_t remainder = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (quotient & 1u))) ++quotient;
    return static_cast<std::uint16_t>(sign | quotient);  // 0x400 is the smallest normal: right
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  std::uint32_t rounded = (magnitude - 0x3800'0000u) >> 13;
  const std::uint32_t dropped = magnitude & 0x1FFFu;
  if (dropped > 0x1000u || (dropped == 0x1000u && (rounded & 1u))) ++rounded;
  return static_cast<std::uint16_t>(sign | rounded);
}

/// binary16 bits -> binary32, exact.
constexpr float float16_bits_to_float(std::uint16_t half) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  const std::uint32_t mantissa = half & 0x03FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in binary32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 0x1Fu) return std::bit_cast<float>(sign | 0x7F80'0000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// binary32 -> bfloat16 bits, round to nearest even.
constexpr std::uint16_t float_to_bfloat16_bits(float value) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7FFF'FFFFu) > 0x7F80'0000u) {  // NaN: truncate and keep it quiet
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  }
  const std::uint32_t rounding_bias = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding_bias) >> 16);
}

constexpr float bfloat16_bits_to_float(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

}  // namespace detail

/// IEEE 754 binary16 storage. Default construction leaves the bits
/// uninitialized (like `float`); `float16{}` value-initializes to +0.0.
struct float16 {
  std::uint16_t bits;  ///< the raw binary16 encoding

  float16() = default;
  /// Rounds `value` to the nearest float16, ties to even.
  constexpr explicit float16(float value) noexcept : bits(detail::float_to_float16_bits(value)) {}
  /// Wraps a raw encoding without conversion.
  static constexpr float16 from_bits(std::uint16_t raw) noexcept {
    float16 result{};
    result.bits = raw;
    return result;
  }
  /// Exact conversion to float.
  constexpr explicit operator float() const noexcept { return detail::float16_bits_to_float(bits); }
};

/// bfloat16 storage: the upper 16 bits of a binary32. Same interface as float16.
struct bfloat16 {
  std::uint16_t bits;  ///< the raw bfloat16 encoding

  bfloat16() = default;
  /// Rounds `value` to the nearest bfloat16, ties to even.
  constexpr explicit bfloat16(float value) noexcept : bits(detail::float_to_bfloat16_bits(value)) {}
  /// Wraps a raw encoding without conversion.
  static constexpr bfloat16 from_bits(std::uint16_t raw) noexcept {
    bfloat16 result{};
    result.bits = raw;
    return result;
  }
  /// Exact conversion to float.
  constexpr explicit operator float() const noexcept { return detail::bfloat16_bits_to_float(bits); }
};

static_assert(sizeof(float16) == 2 && std::is_trivially_copyable_v<float16> &&
                  std::is_standard_layout_v<float16>,
              "float16 must be two bytes of plain storage so spans of it can be handed to devices");
static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable_v<bfloat16> &&
                  std::is_standard_layout_v<bfloat16>,
              "bfloat16 must be two bytes of plain storage so spans of it can be handed to devices");
static_assert(float16(1.0f).bits == 0x3C00 && float16(0.0f).bits == 0x0000);
static_assert(bfloat16(1.0f).bits == 0x3F80 && bfloat16(0.0f).bits == 0x0000);

}  // namespace conveyor
