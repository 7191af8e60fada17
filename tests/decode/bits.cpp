// Tests for conveyor/decode/bits.hpp: every dtype, both kernels on the same
// inputs, bit order, lengths around the 32-byte block size, and bad input.
#include "conveyor/decode/bits.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {

template <class T>
std::uint32_t raw(T value) {
  if constexpr (std::is_same_v<T, float>) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    return bits;
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    return value;
  } else {
    return value.bits;
  }
}

template <class T>
std::uint32_t expected_raw(char c) {
  if (c == '0') return 0;
  if constexpr (std::is_same_v<T, float>) return 0x3F80'0000u;
  else if constexpr (std::is_same_v<T, cy::float16>) return 0x3C00u;
  else if constexpr (std::is_same_v<T, cy::bfloat16>) return 0x3F80u;
  else return 1u;
}

std::string random_bits(std::mt19937& rng, std::size_t length) {
  std::string text(length, '0');
  for (auto& c : text) c = static_cast<char>('0' + (rng() & 1));
  return text;
}

constexpr cy::simd_path both_paths[] = {cy::simd_path::portable, cy::simd_path::best};

}  // namespace

TEST_CASE_TEMPLATE("bit string decodes to 0/1 in every dtype, both paths agree", T, float, cy::float16,
                   cy::bfloat16, std::uint8_t) {
  std::mt19937 rng(7);
  for (std::size_t length : {0u, 1u, 7u, 8u, 31u, 32u, 33u, 63u, 64u, 100u, 1024u, 1031u}) {
    const std::string text = random_bits(rng, length);
    std::vector<T> portable(length), best(length);
    REQUIRE(cy::try_decode_bit_string(text, std::span<T>(portable), cy::simd_path::portable).ok());
    REQUIRE(cy::try_decode_bit_string(text, std::span<T>(best), cy::simd_path::best).ok());
    for (std::size_t i = 0; i < length; ++i) {
      CHECK(raw(portable[i]) == expected_raw<T>(text[i]));
      CHECK(raw(best[i]) == raw(portable[i]));
    }
  }
}

TEST_CASE("the AVX2 path is really exercised on this machine") {
  MESSAGE("avx2_available() = " << cy::avx2_available());
  CHECK(cy::avx2_available() == static_cast<bool>(__builtin_cpu_supports("avx2")));
}

TEST_CASE_TEMPLATE("bad characters are reported at the same position by both paths", T, float, cy::float16,
                   cy::bfloat16, std::uint8_t) {
  std::mt19937 rng(11);
  const char bad_chars[] = {'2', '/', ' ', 'a', '\0', '\xb1', '\xb0', 'q'};
  for (std::size_t length : {1u, 9u, 32u, 40u, 64u, 1024u}) {
    for (std::size_t position : {std::size_t{0}, length / 2, length - 1}) {
      for (char bad : bad_chars) {
        std::string text = random_bits(rng, length);
        text[position] = bad;
        for (auto path : both_paths) {
          std::vector<T> out(length, T{});
          const cy::decode_status status = cy::try_decode_bit_string(text, std::span<T>(out), path);
          CHECK(status.code == cy::decode_errc::bad_character);
          CHECK(status.position == position);
          // out[0, position) written, the rest untouched (still zero-initialized).
          for (std::size_t i = 0; i < position; ++i) CHECK(raw(out[i]) == expected_raw<T>(text[i]));
          for (std::size_t i = position; i < length; ++i) CHECK(raw(out[i]) == 0u);
        }
      }
    }
  }
}

TEST_CASE("wrong length is reported before anything is written") {
  std::vector<float> out(16, -1.0f);
  const auto status = cy::try_decode_bit_string("0101", std::span<float>(out));
  CHECK(status.code == cy::decode_errc::wrong_length);
  CHECK(status.position == 4);
  CHECK(status.value == 16);
  for (float value : out) CHECK(value == -1.0f);
}

TEST_CASE("throwing form names file, record and the byte offset of the bad character") {
  std::vector<float> out(40);
  std::string text(40, '1');
  text[35] = 'x';
  try {
    cy::decode_bit_string(text, std::span<float>(out), cy::error_location{"train.tsv", 12, 1000});
    FAIL("no exception");
  } catch (const cy::data_error& e) {
    CHECK(e.where().file == "train.tsv");
    CHECK(e.where().record == 12);
    CHECK(e.where().offset == 1035);
    CHECK(std::string(e.what()) ==
          "train.tsv, record 12, byte offset 1035: bit string: character 'x' (0x78) at position 35 is not "
          "'0' or '1'");
  }
  CHECK_THROWS_WITH_AS(cy::decode_bit_string("01", std::span<float>(out), cy::error_location{"f", 1, 5}),
                       "f, record 1, byte offset 7: bit string: 2 characters, expected 40", cy::data_error);
  // An unknown offset stays unknown.
  try {
    cy::decode_bit_string(text, std::span<float>(out), cy::error_location{"f", 3});
    FAIL("no exception");
  } catch (const cy::data_error& e) {
    CHECK(e.where().offset == cy::unknown_position);
  }
}

TEST_CASE("packed bits are MSB-first like numpy.packbits") {
  // np.packbits([1,0,1,1,0,0,0,0, 0,0,0,0,0,0,0,1, 1,1,1]) == [176, 1, 224]
  const std::string text = "1011000000000001111";
  std::vector<std::uint8_t> packed(3, 0xEE);
  for (auto path : both_paths) {
    REQUIRE(cy::try_pack_bit_string(text, packed, path).ok());
    CHECK(packed == std::vector<std::uint8_t>{176, 1, 224});
    std::vector<float> values(text.size());
    REQUIRE(cy::try_unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(values), path).ok());
    for (std::size_t i = 0; i < text.size(); ++i) CHECK(values[i] == (text[i] == '1' ? 1.0f : 0.0f));
  }
}

TEST_CASE_TEMPLATE("pack then unpack equals decode, both paths, many lengths", T, float, cy::float16,
                   cy::bfloat16, std::uint8_t) {
  std::mt19937 rng(3);
  for (std::size_t length = 0; length < 300; length += 1 + length / 8) {
    const std::string text = random_bits(rng, length);
    std::vector<std::uint8_t> packed_portable((length + 7) / 8), packed_best((length + 7) / 8);
    REQUIRE(cy::try_pack_bit_string(text, packed_portable, cy::simd_path::portable).ok());
    REQUIRE(cy::try_pack_bit_string(text, packed_best, cy::simd_path::best).ok());
    CHECK(packed_portable == packed_best);
    if (length % 8) CHECK((packed_portable.back() & ((1u << (8 - length % 8)) - 1)) == 0u);
    std::vector<T> decoded(length), unpacked_portable(length), unpacked_best(length);
    REQUIRE(cy::try_decode_bit_string(text, std::span<T>(decoded)).ok());
    const std::span<const std::uint8_t> packed(packed_best);
    REQUIRE(cy::try_unpack_bits(packed, std::span<T>(unpacked_portable), cy::simd_path::portable).ok());
    REQUIRE(cy::try_unpack_bits(packed, std::span<T>(unpacked_best), cy::simd_path::best).ok());
    for (std::size_t i = 0; i < length; ++i) {
      CHECK(raw(unpacked_portable[i]) == raw(decoded[i]));
      CHECK(raw(unpacked_best[i]) == raw(decoded[i]));
    }
  }
}

TEST_CASE("unpack ignores padding bits and checks the byte count") {
  const std::vector<std::uint8_t> packed{0xFF, 0xFF};
  std::vector<std::uint8_t> values(9);
  for (auto path : both_paths) {
    REQUIRE(cy::try_unpack_bits(std::span<const std::uint8_t>(packed), std::span<std::uint8_t>(values), path)
                .ok());
    for (auto v : values) CHECK(v == 1);
  }
  std::vector<std::uint8_t> too_many(17);
  const auto status =
      cy::try_unpack_bits(std::span<const std::uint8_t>(packed), std::span<std::uint8_t>(too_many));
  CHECK(status.code == cy::decode_errc::wrong_length);
  CHECK(status.value == 3);
  CHECK_THROWS_AS(cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<std::uint8_t>(too_many),
                                  cy::error_location{"x.bin", 0, 0}),
                  cy::data_error);
}

TEST_CASE("packing reports bad characters and wrong output sizes") {
  std::string text(70, '0');
  text[66] = '7';
  std::vector<std::uint8_t> packed(9, 0xAB);
  for (auto path : both_paths) {
    std::fill(packed.begin(), packed.end(), std::uint8_t{0xAB});
    const auto status = cy::try_pack_bit_string(text, packed, path);
    CHECK(status.code == cy::decode_errc::bad_character);
    CHECK(status.position == 66);
    for (std::size_t i = 0; i < 8; ++i) CHECK(packed[i] == 0);  // whole bytes before the bad one
    CHECK(packed[8] == 0xAB);
  }
  std::vector<std::uint8_t> small(2);
  const auto status = cy::try_pack_bit_string(text, small);
  CHECK(status.code == cy::decode_errc::wrong_length);
  CHECK(status.value == 9);
  CHECK_THROWS_WITH_AS(cy::pack_bit_string(text, small, cy::error_location{"f", 2, 10}),
                       "f, record 2, byte offset 26: bit string to pack: 70 characters need 9 bytes, the "
                       "output holds 2",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::pack_bit_string(text, packed, cy::error_location{"f", 2, 10}),
                       "f, record 2, byte offset 76: bit string to pack: character '7' (0x37) at position 66 "
                       "is not '0' or '1'",
                       cy::data_error);
}
