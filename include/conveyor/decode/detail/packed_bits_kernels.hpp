// conveyor/decode/detail/packed_bits_kernels.hpp: packed bits -> 0/1 values.
//
// The per-element logic (which bit of which byte holds value i, how 0/1 is
// written in each element type) is written once, in the CONVEYOR_HOST_DEVICE
// functions of packed_bit_element.hpp, so that a CUDA kernel can call the very
// same functions with one thread per value; the portable row kernel here is a
// loop over them. The AVX2 row kernel is a host-only speedup that hands its
// tail (fewer than 32 values) to the portable kernel, so both paths write the
// same bytes by construction; the tests and the fuzzer check that they do on
// random input.
//
// Nothing here checks sizes or padding: the public functions in bits.hpp and
// packed_bits.hpp do, once per call, before any kernel runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "conveyor/decode/detail/bit_values.hpp"
#include "conveyor/decode/detail/bits_avx2.hpp"
#include "conveyor/decode/detail/packed_bit_element.hpp"

namespace conveyor::detail {

/// Expands `count` values of the packed row into out[0, count).
template <bit_element T>
void unpack_row_portable(const std::uint8_t* row, std::size_t count, T* out,
                         bit_order order) noexcept {
  // A constant order and a fixed 8-value inner loop let the compiler keep each
  // byte in a register and unroll the shifts (about 1.5x faster at -O3 than one flat
  // loop over the values, which reloads the byte for every value).
  const auto expand = [&](auto constant_order) {
    const std::size_t whole = count & ~std::size_t{7};
    for (std::size_t byte_start = 0; byte_start < whole; byte_start += 8)
      for (std::size_t bit = 0; bit < 8; ++bit)
        unpack_bit(row, out, byte_start + bit, constant_order.value);
    for (std::size_t index = whole; index < count; ++index)
      unpack_bit(row, out, index, constant_order.value);
  };
  if (order == bit_order::big)
    expand(std::integral_constant<bit_order, bit_order::big>{});
  else
    expand(std::integral_constant<bit_order, bit_order::little>{});
}

#if CONVEYOR_DECODE_HAS_AVX2_KERNELS

/// AVX2 version of unpack_row_portable: 4 packed bytes -> 32 values per step.
///
/// For float and the 16-bit types the packed word is broadcast to every lane
/// and each lane tests its own bit of it (and, compare, and with the encoding
/// of 1): one shuffle-port instruction per 32 values, where widening 32 bytes
/// of 0/1 (store_bit_bytes_avx2) takes about nine and was the bottleneck
/// (measured in bench/decode/packed_bits_bench.cpp). uint8 needs no widening,
/// so it spreads the word's bytes over the lanes and stores them once.
template <bit_element T>
__attribute__((target("avx2"))) inline void unpack_row_avx2(const std::uint8_t* row,
                                                            std::size_t count, T* out,
                                                            bit_order order) noexcept {
  const bool big = order == bit_order::big;
  std::size_t index = 0;
  if constexpr (std::is_same_v<T, float>) {
    // Lane j of group k (values 8k + j) tests bit 8k + 7 - j (big) or 8k + j
    // (little) of the little-endian word.
    const __m256i lane_bit =
        big ? _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0) : _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i one = _mm256_set1_epi32(1);
    __m256i select[4];
    for (int group = 0; group < 4; ++group)
      select[group] =
          _mm256_sllv_epi32(one, _mm256_add_epi32(lane_bit, _mm256_set1_epi32(8 * group)));
    const __m256i one_encoding = _mm256_set1_epi32(0x3F80'0000);
    for (; index + 32 <= count; index += 32) {
      std::int32_t word;
      std::memcpy(&word, row + index / 8, 4);
      const __m256i bits = _mm256_set1_epi32(word);
      for (int group = 0; group < 4; ++group) {
        const __m256i set =
            _mm256_cmpeq_epi32(_mm256_and_si256(bits, select[group]), select[group]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + index + 8 * group),
                            _mm256_and_si256(set, one_encoding));
      }
    }
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    // Byte k of the word goes to lanes 8k..8k+7; lane j tests the bit of
    // value j % 8 within its byte.
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select =
        _mm256_set1_epi64x(big ? 0x0102'0408'1020'4080LL  // 0x80 first
                               : static_cast<long long>(0x8040'2010'0804'0201ULL));
    const __m256i low_bit = _mm256_set1_epi8(1);
    for (; index + 32 <= count; index += 32) {
      std::int32_t word;
      std::memcpy(&word, row + index / 8, 4);
      const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(word), spread);
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, select), select);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + index), _mm256_and_si256(set, low_bit));
    }
  } else {
    // 16-bit lanes: each half of the word is broadcast for its 16 values; lane
    // j tests bit 8 * (j / 8) + 7 - j % 8 (big) or bit j (little) of it.
    const __m256i select =
        big ? _mm256_setr_epi16(0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01,  //
                                static_cast<short>(0x8000), 0x4000, 0x2000, 0x1000, 0x0800, 0x0400,
                                0x0200, 0x0100)
            : _mm256_setr_epi16(0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80,  //
                                0x0100, 0x0200, 0x0400, 0x0800, 0x1000, 0x2000, 0x4000,
                                static_cast<short>(0x8000));
    const __m256i one_encoding = _mm256_set1_epi16(static_cast<short>(half_one_bits<T>));
    for (; index + 32 <= count; index += 32) {
      for (int half = 0; half < 2; ++half) {
        std::int16_t word;
        std::memcpy(&word, row + index / 8 + 2 * half, 2);
        const __m256i bits = _mm256_set1_epi16(word);
        const __m256i set = _mm256_cmpeq_epi16(_mm256_and_si256(bits, select), select);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + index + 16 * half),
                            _mm256_and_si256(set, one_encoding));
      }
    }
  }
  unpack_row_portable(row + index / 8, count - index, out + index, order);
}

#endif

/// Expands `count` values with the AVX2 kernel when `use_avx2` (the caller has
/// checked the CPU), else the portable one.
template <bit_element T>
void unpack_row(const std::uint8_t* row, std::size_t count, T* out, bit_order order,
                bool use_avx2) noexcept {
#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
  if (use_avx2) {
    unpack_row_avx2(row, count, out, order);
    return;
  }
#else
  (void)use_avx2;
#endif
  unpack_row_portable(row, count, out, order);
}

}  // namespace conveyor::detail
