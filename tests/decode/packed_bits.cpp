// Tests for conveyor/decode/packed_bits.hpp: every dtype and both bit orders,
// the AVX2 and portable kernels byte-identical on random rows, widths that are
// not multiples of 8 or 32, padding, sizes, and the batch form.
#include "conveyor/decode/packed_bits.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {

constexpr cy::bit_order both_orders[] = {cy::bit_order::big, cy::bit_order::little};
constexpr std::size_t widths[] = {0,  1,  7,   8,   9,   15,  16,   31,   32,   33,  63,
                                  64, 65, 100, 127, 128, 255, 1000, 1020, 1024, 1031};

// The encoding of 0/1 in T, written out here rather than taken from the library.
template <class T>
std::uint32_t encoding(unsigned bit) {
  if (bit == 0) return 0;
  if constexpr (std::is_same_v<T, float>)
    return 0x3F80'0000u;
  else if constexpr (std::is_same_v<T, cy::float16>)
    return 0x3C00u;
  else if constexpr (std::is_same_v<T, cy::bfloat16>)
    return 0x3F80u;
  else
    return 1u;
}

template <class T>
std::uint32_t raw(const T& value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));  // little-endian: the low bytes
  return bits;
}

// numpy.packbits of `values` (0/1) with the given bitorder: zero padding.
std::vector<std::uint8_t> packbits(const std::vector<unsigned>& values, cy::bit_order order) {
  std::vector<std::uint8_t> packed((values.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const unsigned shift = order == cy::bit_order::big ? 7 - i % 8 : i % 8;
    packed[i / 8] = static_cast<std::uint8_t>(packed[i / 8] | values[i] << shift);
  }
  return packed;
}

std::vector<unsigned> random_values(std::mt19937& rng, std::size_t count) {
  std::vector<unsigned> values(count);
  for (auto& value : values) value = rng() & 1u;
  return values;
}

template <class T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
std::vector<T> filled(std::size_t count) {
  std::vector<T> out(count);
  if (!out.empty()) std::memset(out.data(), 0xA5, count * sizeof(T));  // never a decoded value
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("packed rows expand to 0/1 in every dtype; AVX2 and portable agree", T, float,
                   cy::float16, cy::bfloat16, std::uint8_t) {
  std::mt19937 rng(3);
  for (const auto order : both_orders) {
    for (const std::size_t width : widths) {
      for (int repeat = 0; repeat < 4; ++repeat) {
        const auto values = random_values(rng, width);
        const auto packed = packbits(values, order);
        auto portable = filled<T>(width), best = filled<T>(width);
        cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<T>(portable), order,
                        cy::simd_path::portable);
        cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<T>(best), order,
                        cy::simd_path::best);
        INFO("width " << width << ", order " << static_cast<int>(order));
        REQUIRE(same_bytes(portable, best));
        for (std::size_t i = 0; i < width; ++i) REQUIRE(raw(portable[i]) == encoding<T>(values[i]));
      }
    }
  }
}

TEST_CASE("bit order: numpy.packbits' examples") {
  // np.packbits([1,0,1,1,0,0,0,0, 1,1]) == [0xB0, 0xC0];
  // np.packbits([1,0,1,1,0,0,0,0, 1,1], bitorder='little') == [0x0D, 0x03].
  const std::vector<float> expected{1, 0, 1, 1, 0, 0, 0, 0, 1, 1};
  const std::uint8_t big[] = {0xB0, 0xC0}, little[] = {0x0D, 0x03};
  std::vector<float> out(10);
  cy::unpack_bits(std::span<const std::uint8_t>(big), std::span<float>(out));  // big by default
  CHECK(out == expected);
  cy::unpack_bits(std::span<const std::uint8_t>(little), std::span<float>(out),
                  cy::bit_order::little);
  CHECK(out == expected);
}

TEST_CASE("the big-order result is what bits.hpp gives for the same bits") {
  std::mt19937 rng(5);
  std::string text(1024, '0');
  for (auto& c : text) c = static_cast<char>('0' + (rng() & 1));
  std::vector<std::uint8_t> packed(128);
  REQUIRE(cy::try_pack_bit_string(text, packed).ok());
  std::vector<float> from_text(1024), from_old_unpack(1024), from_packed(1024);
  REQUIRE(cy::try_decode_bit_string(text, std::span<float>(from_text)).ok());
  REQUIRE(
      cy::try_unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(from_old_unpack))
          .ok());
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(from_packed));
  CHECK(from_packed == from_text);
  CHECK(from_old_unpack == from_text);
}

TEST_CASE("a wrong byte count throws invalid_argument naming both sizes; nothing is written") {
  const std::vector<std::uint8_t> packed(128, 0xFF);
  auto out = filled<float>(1000);  // needs 125 bytes
  CHECK_THROWS_WITH_AS(
      cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(out)),
      "unpack_bits: 128 packed bytes, expected 125 for 1000 bits (out.size())",
      std::invalid_argument);
  CHECK(same_bytes(out, filled<float>(1000)));
  std::vector<float> none;
  CHECK_THROWS_AS(
      cy::unpack_bits(std::span<const std::uint8_t>(packed).first(1), std::span<float>(none)),
      std::invalid_argument);
  cy::unpack_bits(std::span<const std::uint8_t>(), std::span<float>(none));  // 0 bits, 0 bytes
}

TEST_CASE("nonzero padding is an error in either order; any byte is valid without padding") {
  std::vector<std::uint8_t> packed(128, 0);
  auto out = filled<float>(1020);
  packed[127] = 0x01;  // big order: the lowest of the 4 padding bits
  CHECK_THROWS_WITH_AS(
      cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(out)),
      "unpack_bits: nonzero padding: byte 127 is 0x01, but a row of 1020 bits uses only its 4 high "
      "bits and numpy.packbits writes the others as zero (is the width right?)",
      std::invalid_argument);
  CHECK(same_bytes(out, filled<float>(1020)));
  // The same byte is valid data in little order (bit 0 is value 1016)...
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(out),
                  cy::bit_order::little);
  CHECK(out[1016] == 1.0f);
  // ...where the high bits are the padding.
  packed[127] = 0x10;
  CHECK_THROWS_WITH_AS(cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(out),
                                       cy::bit_order::little),
                       doctest::Contains("uses only its 4 low bits"), std::invalid_argument);
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(out));  // big: data
  CHECK(out[1019] == 1.0f);
  // No padding when the width is a multiple of 8: 0xFF everywhere is data.
  std::fill(packed.begin(), packed.end(), 0xFF);
  std::vector<std::uint8_t> ones(1024);
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<std::uint8_t>(ones),
                  cy::bit_order::little);
  CHECK(std::count(ones.begin(), ones.end(), std::uint8_t{1}) == 1024);
}

TEST_CASE_TEMPLATE("the batch form equals row by row, for padded and unpadded widths", T, float,
                   cy::float16, cy::bfloat16, std::uint8_t) {
  std::mt19937 rng(9);
  for (const auto order : both_orders) {
    for (const std::size_t width : {1u, 10u, 33u, 64u, 1020u, 1024u}) {
      for (const std::size_t rows : {0u, 1u, 3u, 17u}) {
        std::vector<std::uint8_t> packed;
        std::vector<std::vector<unsigned>> row_values;
        for (std::size_t row = 0; row < rows; ++row) {
          row_values.push_back(random_values(rng, width));
          const auto bytes = packbits(row_values.back(), order);
          packed.insert(packed.end(), bytes.begin(), bytes.end());
        }
        auto portable = filled<T>(rows * width), best = filled<T>(rows * width);
        cy::unpack_bit_rows(std::span<const std::uint8_t>(packed), std::span<T>(portable), width,
                            order, cy::simd_path::portable);
        cy::unpack_bit_rows(std::span<const std::uint8_t>(packed), std::span<T>(best), width,
                            order);
        INFO("width " << width << ", rows " << rows << ", order " << static_cast<int>(order));
        REQUIRE(same_bytes(portable, best));
        for (std::size_t row = 0; row < rows; ++row)
          for (std::size_t i = 0; i < width; ++i)
            REQUIRE(raw(best[row * width + i]) == encoding<T>(row_values[row][i]));
      }
    }
  }
}

TEST_CASE("batch form: size and padding errors name the sizes and the row") {
  std::vector<std::uint8_t> packed(3 * 2, 0);  // 3 rows of 10 bits
  auto out = filled<float>(30);
  const std::span<const std::uint8_t> in(packed);
  CHECK_THROWS_WITH_AS(cy::unpack_bit_rows(in, std::span<float>(out), 0),
                       "unpack_bit_rows: bits_per_row is 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(cy::unpack_bit_rows(in, std::span<float>(out), 7),
                       "unpack_bit_rows: out holds 30 values, not a whole number of rows of 7 bits",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      cy::unpack_bit_rows(in.first(5), std::span<float>(out), 10),
      "unpack_bit_rows: 5 packed bytes, expected 6 for 3 rows of 10 bits (2 bytes each)",
      std::invalid_argument);
  packed[5] = 0x01;  // row 2, big order: bits 0x3F of the second byte are padding
  CHECK_THROWS_WITH_AS(cy::unpack_bit_rows(in, std::span<float>(out), 10),
                       doctest::Contains("unpack_bit_rows: row 2: nonzero padding: byte 5 is 0x01"),
                       std::invalid_argument);
  CHECK(same_bytes(out, filled<float>(30)));  // checked before anything is written
  cy::unpack_bit_rows(in, std::span<float>(out), 10, cy::bit_order::little);  // bit 0: value 8
  CHECK(out[28] == 1.0f);
}

TEST_CASE("the per-value step is a constexpr function (what a device kernel calls)") {
  constexpr auto unpacked = [] {
    const std::uint8_t row[2] = {0xB0, 0xC0};
    std::array<float, 10> out{};
    for (std::size_t i = 0; i < out.size(); ++i)
      cy::detail::unpack_bit(row, out.data(), i, cy::bit_order::big);
    return out;
  }();
  static_assert(unpacked == std::array<float, 10>{1, 0, 1, 1, 0, 0, 0, 0, 1, 1});
  static_assert(cy::detail::padding_mask(10, cy::bit_order::big) == 0x3F);
  static_assert(cy::detail::padding_mask(10, cy::bit_order::little) == 0xFC);
  static_assert(cy::detail::padding_mask(16, cy::bit_order::little) == 0);
  static_assert(cy::detail::half_one_bits<cy::float16> == 0x3C00 &&
                cy::detail::half_one_bits<cy::bfloat16> == 0x3F80);
}
