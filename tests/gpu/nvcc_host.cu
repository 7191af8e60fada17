// The library's host code compiled by nvcc and run on the CPU (no GPU needed):
// the spellings that take a column name by value, `decoder >> column<"x">`,
// packed_bits(column<...>, n), multi_hot(column<...>, n) and
// batch[column<"x">], deduce nothing nvcc 13.0 cannot (see column_name_type
// in core/fixed_string.hpp), so a .cu file can write a decode stage. Before,
// each was "no operator >> matches these operands" under nvcc.
#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/decode/multi_hot.hpp>
#include <conveyor/decode/packed_bits.hpp>
#include <cstdint>
#include <span>
#include <vector>

namespace cy = conveyor;

// What the functions taking a column name accept, as nvcc evaluates it.
static_assert(cy::column_name_type<decltype(cy::column<"x">)>);
static_assert(cy::column_name_type<cy::column_name<"features">>);
static_assert(!cy::column_name_type<int>);
static_assert(!cy::column_name_type<cy::fixed_string<2>>);

TEST_CASE("nvcc: decode(packed_bits(column<...>, n) >> column<\"x\">) decodes every row") {
  // Record i: 16 packed bits, the first byte i (numpy's big bit order), the second 0.
  auto source = cy::generate<cy::dense<"bits", std::uint8_t>>(
      40, 2, [](std::uint64_t i, std::span<std::uint8_t> row) {
        row[0] = static_cast<std::uint8_t>(i);
        row[1] = 0;
      });
  auto pipe = source | cy::batch(8) |
              cy::decode(cy::packed_bits<float>(cy::column<"bits">, 16) >> cy::column<"x">);
  std::size_t rows = 0, wrong = 0;
  for (auto& batch : pipe.epoch(0)) {
    auto& x = batch[cy::column<"x">];
    REQUIRE(x.width() == 16);
    for (std::size_t r = 0; r < x.rows(); ++r) {
      const auto record = batch.indices()[r];
      for (std::size_t j = 0; j < 16; ++j) {
        const float expected = j < 8 ? static_cast<float>((record >> (7 - j)) & 1u) : 0.0f;
        wrong += x.row(r)[j] != expected ? 1 : 0;
      }
      ++rows;
    }
  }
  CHECK(rows == 40);
  CHECK(wrong == 0);
}

TEST_CASE("nvcc: decode(multi_hot(column<...>, n) >> column<\"y\">) sets the listed columns") {
  // Record i lists column i % 8, then padding.
  auto source = cy::generate<cy::dense<"idx", std::int32_t>>(
      20, 2, [](std::uint64_t i, std::span<std::int32_t> row) {
        row[0] = static_cast<std::int32_t>(i % 8);
        row[1] = cy::no_index;
      });
  auto pipe = source | cy::batch(5) |
              cy::decode(cy::multi_hot<float>(cy::column<"idx">, 8) >> cy::column<"y">);
  std::size_t rows = 0, wrong = 0;
  for (auto& batch : pipe.epoch(0)) {
    const auto& y = batch.get<"y">();
    for (std::size_t r = 0; r < y.rows(); ++r) {
      for (std::size_t c = 0; c < 8; ++c)
        wrong += y.row(r)[c] != (c == batch.indices()[r] % 8 ? 1.0f : 0.0f) ? 1 : 0;
      ++rows;
    }
  }
  CHECK(rows == 20);
  CHECK(wrong == 0);
}
