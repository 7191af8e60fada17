// conveyor/decode/detail/bits_avx2.hpp: AVX2 kernels for the bit decoders,
// compiled with __attribute__((target("avx2"))) so that including this header
// needs no -mavx2; bits.hpp calls them only after __builtin_cpu_supports("avx2").
//
// Each kernel handles whole 32-byte blocks and hands the rest (the tail, or the
// block holding a bad character) to the portable kernel, so that the output and
// the reported position are the portable path's by construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "conveyor/decode/detail/bit_values.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CONVEYOR_DECODE_HAS_AVX2_KERNELS 1
#include <immintrin.h>
#else
#define CONVEYOR_DECODE_HAS_AVX2_KERNELS 0
#endif

namespace conveyor::detail {

#if CONVEYOR_DECODE_HAS_AVX2_KERNELS

/// Whether this CPU (and OS) runs AVX2 code. Evaluated once.
inline bool cpu_supports_avx2() noexcept {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return supported;
}

/// Stores 32 bytes of 0/1 as 32 elements of T.
template <bit_element T>
__attribute__((target("avx2"))) inline void store_bit_bytes_avx2(__m256i bits01, T* out) noexcept {
  const __m128i low = _mm256_castsi256_si128(bits01);
  const __m128i high = _mm256_extracti128_si256(bits01, 1);
  if constexpr (std::same_as<T, float>) {
    // 0/1 as int32 -> float: cvtepi32_ps is exact and cheaper than a multiply.
    auto* target = reinterpret_cast<float*>(out);
    _mm256_storeu_ps(target, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(low)));
    _mm256_storeu_ps(target + 8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(low, 8))));
    _mm256_storeu_ps(target + 16, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(high)));
    _mm256_storeu_ps(target + 24, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(high, 8))));
  } else if constexpr (std::same_as<T, std::uint8_t>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), bits01);
  } else {
    // 16-bit types: 0/1 times the encoding of 1.0 is the encoding of 0.0 or 1.0.
    const __m256i one_encoding = _mm256_set1_epi16(static_cast<short>(bit_one<T>().bits));
    auto* target = reinterpret_cast<__m256i*>(out);
    _mm256_storeu_si256(target, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(low), one_encoding));
    _mm256_storeu_si256(target + 1, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(high), one_encoding));
  }
}

/// AVX2 version of bit_chars_to_values_portable; same contract.
template <bit_element T>
__attribute__((target("avx2"))) inline std::size_t bit_chars_to_values_avx2(const char* text,
                                                                             std::size_t count,
                                                                             T* out) noexcept {
  const __m256i keep_high_bits = _mm256_set1_epi8(static_cast<char>(0xFE));
  const __m256i zero_char = _mm256_set1_epi8('0');
  const __m256i low_bit = _mm256_set1_epi8(1);
  std::size_t index = 0;
  for (; index + 32 <= count; index += 32) {
    const __m256i chars = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text + index));
    const __m256i valid = _mm256_cmpeq_epi8(_mm256_and_si256(chars, keep_high_bits), zero_char);
    if (_mm256_movemask_epi8(valid) != -1) break;
    store_bit_bytes_avx2(_mm256_and_si256(chars, low_bit), out + index);
  }
  return index + bit_chars_to_values_portable(text + index, count - index, out + index);
}

/// AVX2 version of bit_chars_to_packed_portable; same contract.
__attribute__((target("avx2"))) inline std::size_t bit_chars_to_packed_avx2(const char* text,
                                                                            std::size_t count,
                                                                            std::uint8_t* packed) noexcept {
  const __m256i keep_high_bits = _mm256_set1_epi8(static_cast<char>(0xFE));
  const __m256i zero_char = _mm256_set1_epi8('0');
  // movemask puts character j of a group at bit j; MSB-first needs bit 7-j, so
  // reverse each group of 8 characters first (pshufb works within 128-bit lanes,
  // which hold whole groups).
  const __m256i reverse_groups = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,  //
                                                  7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
  std::size_t index = 0;
  for (; index + 32 <= count; index += 32) {
    const __m256i chars = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text + index));
    const __m256i valid = _mm256_cmpeq_epi8(_mm256_and_si256(chars, keep_high_bits), zero_char);
    if (_mm256_movemask_epi8(valid) != -1) break;
    // Shifting 16-bit lanes left by 7 moves each byte's bit 0 into its bit 7.
    const __m256i reversed = _mm256_shuffle_epi8(chars, reverse_groups);
    const auto mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(reversed, 7)));
    std::memcpy(packed + index / 8, &mask, 4);  // x86 is little-endian: byte 0 = bits 0..7
  }
  return index + bit_chars_to_packed_portable(text + index, count - index, packed + index / 8);
}

#else

inline bool cpu_supports_avx2() noexcept { return false; }

#endif

}  // namespace conveyor::detail
