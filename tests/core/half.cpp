// Tests for conveyor/core/half.hpp: exact 0/1, round-to-nearest-even, specials.
#include "conveyor/core/half.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace cy = conveyor;

TEST_CASE("float16 exact values and specials") {
  CHECK(cy::float16(0.0f).bits == 0x0000);
  CHECK(cy::float16(-0.0f).bits == 0x8000);
  CHECK(cy::float16(1.0f).bits == 0x3C00);
  CHECK(cy::float16(-2.0f).bits == 0xC000);
  CHECK(cy::float16(65504.0f).bits == 0x7BFF);
  CHECK(cy::float16(0x1p-14f).bits == 0x0400);  // smallest normal
  CHECK(cy::float16(0x1p-24f).bits == 0x0001);  // smallest subnormal
  CHECK(cy::float16(std::numeric_limits<float>::infinity()).bits == 0x7C00);
  CHECK(cy::float16(-std::numeric_limits<float>::infinity()).bits == 0xFC00);
  const cy::float16 nan(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan.bits & 0x7C00) == 0x7C00);
  CHECK((nan.bits & 0x03FF) != 0);
  CHECK(std::isnan(static_cast<float>(nan)));
  // A signalling NaN whose payload lives only in the low bits must stay NaN.
  CHECK(std::isnan(static_cast<float>(cy::float16(std::bit_cast<float>(0x7F80'0001u)))));
}

TEST_CASE("float16 rounds to nearest, ties to even") {
  // Between 1 and 1 + 2^-10: the tie 1 + 2^-11 goes to 1 (even), just above goes up.
  CHECK(cy::float16(1.0f + 0x1p-11f).bits == 0x3C00);
  CHECK(cy::float16(1.0f + 0x1p-11f + 0x1p-20f).bits == 0x3C01);
  CHECK(cy::float16(1.0f + 3 * 0x1p-11f).bits == 0x3C02);  // tie between 0x3C01 and 0x3C02 -> even
  CHECK(cy::float16(65519.0f).bits == 0x7BFF);
  CHECK(cy::float16(65520.0f).bits == 0x7C00);  // tie with 65536 -> infinity (even)
  CHECK(cy::float16(0x1p-25f).bits == 0x0000);  // tie between 0 and 2^-24 -> 0
  CHECK(cy::float16(0x1.8p-25f).bits == 0x0001);
  CHECK(cy::float16(0x1.8p-24f).bits == 0x0002);  // 1.5 * 2^-24: tie -> 2 (even)
  CHECK(cy::float16(0x1.ff8p-15f).bits == 0x03FF);  // largest subnormal, 1023 * 2^-24
  CHECK(cy::float16(0x1.ffcp-15f).bits == 0x0400);  // tie 1023.5 * 2^-24 -> even, the smallest normal
}

TEST_CASE("float16 -> float -> float16 is the identity on every non-NaN encoding") {
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto half = cy::float16::from_bits(static_cast<std::uint16_t>(bits));
    const float value = static_cast<float>(half);
    if (std::isnan(value)) continue;
    REQUIRE(cy::float16(value).bits == bits);
  }
}

TEST_CASE("bfloat16 conversions") {
  CHECK(cy::bfloat16(0.0f).bits == 0x0000);
  CHECK(cy::bfloat16(1.0f).bits == 0x3F80);
  CHECK(static_cast<float>(cy::bfloat16::from_bits(0x3F80)) == 1.0f);
  CHECK(cy::bfloat16(1.0f + 0x1p-8f).bits == 0x3F80);                // tie -> even
  CHECK(cy::bfloat16(1.0f + 0x1p-8f + 0x1p-20f).bits == 0x3F81);    // above the tie
  CHECK(cy::bfloat16(1.0f + 3 * 0x1p-8f).bits == 0x3F82);            // tie -> even
  CHECK(cy::bfloat16(std::numeric_limits<float>::max()).bits == 0x7F80);  // overflows to infinity
  CHECK(std::isnan(static_cast<float>(cy::bfloat16(std::bit_cast<float>(0x7F80'0001u)))));
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto value = static_cast<float>(cy::bfloat16::from_bits(static_cast<std::uint16_t>(bits)));
    if (std::isnan(value)) continue;
    REQUIRE(cy::bfloat16(value).bits == bits);
  }
}
