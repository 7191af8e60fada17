// Tests of conveyor/decode/multi_hot.hpp and packed_bit_string.hpp, the
// compact forms a cache keeps: packed_bit_string then packed_bits gives
// bits<T>()'s rows, two_gram_indices then multi_hot gives two_grams()'s rows
// (every dtype), through decode(...) over a TSV; bad input is a data_error
// naming column or record, dropped under skip.
#include "conveyor/decode/multi_hot.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "conveyor/conveyor.hpp"
#include "conveyor/decode/decode.hpp"
#include "conveyor/decode/packed_bit_string.hpp"
#include "conveyor/decode/packed_bits.hpp"
#include "conveyor/decode/two_gram_indices.hpp"
#include "conveyor/source/tsv.hpp"
#include "support/temp_dir.hpp"

namespace cy = conveyor;
namespace fs = std::filesystem;

namespace {

std::string bits_text(std::uint64_t seed, std::size_t n) {
  std::string text(n, '0');
  for (std::size_t i = 0; i < n; ++i)
    if ((seed * 2654435761u + i * 40503u) % 7 < 2) text[i] = '1';
  return text;
}

fs::path write_tsv(const cy::test::temp_dir& dir, std::size_t rows, std::size_t bits) {
  std::string text = "GivenName\tSurname\tBirthday\tbloomfilter\n";
  const char* names[] = {"anna", "ben", "chloé", "dmitri", "eve", "zoë-ann"};
  for (std::size_t r = 0; r < rows; ++r)
    text += std::string(names[r % 6]) + "\t" + names[(r * 5 + 1) % 6] + "\t" +
            std::to_string(1950 + r % 60) + "-01-0" + std::to_string(1 + r % 9) + "\t" +
            bits_text(r, bits) + "\n";
  return dir.file("records.tsv", text);
}

cy::delimited_options tsv_options() {
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  return options;
}

template <class T>
void check_compact_equals_direct() {
  cy::test::temp_dir dir("multi-hot");
  auto path = write_tsv(dir, 300, 1024);
  auto direct =
      cy::tsv_file(path, tsv_options()) | cy::batch(64) |
      cy::decode(cy::bits<T>("bloomfilter", 1024) >> cy::column<"x">,
                 cy::two_grams<T>({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
  auto compact = cy::tsv_file(path, tsv_options()) | cy::batch(64) |
                 cy::decode(cy::packed_bit_string("bloomfilter", 1024) >> cy::column<"x_packed">,
                            cy::two_gram_indices({"GivenName", "Surname", "Birthday"}) >>
                                cy::column<"y_index">) |
                 cy::decode(cy::packed_bits<T>(cy::column<"x_packed">, 1024) >> cy::column<"x">,
                            cy::multi_hot<T>(cy::column<"y_index">, 1036) >> cy::column<"y">);
  std::vector<std::vector<std::uint8_t>> expected;
  for (auto& b : direct.epoch(0)) {
    auto x = std::as_bytes(b.template get<"x">().values());
    auto y = std::as_bytes(b.template get<"y">().values());
    std::vector<std::uint8_t> bytes;
    for (auto v : x) bytes.push_back(static_cast<std::uint8_t>(v));
    for (auto v : y) bytes.push_back(static_cast<std::uint8_t>(v));
    expected.push_back(std::move(bytes));
  }
  std::size_t batch = 0;
  for (auto& b : compact.epoch(0)) {
    REQUIRE(batch < expected.size());
    CHECK(b.template get<"x">().width() == 1024);
    CHECK(b.template get<"y">().width() == 1036);
    auto x = std::as_bytes(b.template get<"x">().values());
    auto y = std::as_bytes(b.template get<"y">().values());
    std::vector<std::uint8_t> bytes;
    for (auto v : x) bytes.push_back(static_cast<std::uint8_t>(v));
    for (auto v : y) bytes.push_back(static_cast<std::uint8_t>(v));
    CHECK(bytes == expected[batch]);
    ++batch;
  }
  CHECK(batch == expected.size());
  CHECK(batch == 5);
}

}  // namespace

TEST_CASE_TEMPLATE(
    "packed_bit_string | packed_bits and two_gram_indices | multi_hot equal bits and two_grams", T,
    float, cy::float16, cy::bfloat16, std::uint8_t) {
  check_compact_equals_direct<T>();
}

TEST_CASE(
    "packed_bit_string: the bytes are numpy.packbits' (most significant bit first, zero padding)") {
  cy::test::temp_dir dir("multi-hot");
  auto path = dir.file("r.tsv", "bits\n10000000011\n");
  auto pipe = cy::tsv_file(path, tsv_options()) | cy::batch(4) |
              cy::decode(cy::packed_bit_string("bits", 11) >> cy::column<"p">);
  std::size_t rows = 0;
  for (auto& b : pipe.epoch(0)) {
    const auto& p = b.get<"p">();
    REQUIRE(p.width() == 2);
    CHECK(p(0, 0) == 0x80);
    CHECK(p(0, 1) == 0x60);  // bits 9 and 10: 0b011 then 5 zero padding bits
    rows += b.rows();
  }
  CHECK(rows == 1);
}

TEST_CASE("packed_bit_string: a field of another length or a bad character names the record") {
  cy::test::temp_dir dir("multi-hot");
  auto path = dir.file("r.tsv", "bits\n10101010\n1010101\n1010x010\n11110000\n");
  auto make = [&](cy::error_policy policy) {
    return cy::tsv_file(path, tsv_options()) | cy::batch(8) |
           cy::decode(cy::packed_bit_string("bits", 8) >> cy::column<"p">) | cy::on_errors(policy);
  };
  auto failing = make(cy::on_error::fail);
  try {
    for (auto& b : failing.epoch(0)) (void)b;
    FAIL("expected a data_error");
  } catch (const cy::stage_error& error) {
    std::string what = error.what();
    CHECK(what.find("7 characters, expected 8") != std::string::npos);
    CHECK(error.where().record == 1);
  }
  auto skipping = make(cy::on_error::skip);
  std::vector<std::uint64_t> kept;
  for (auto& b : skipping.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) kept.push_back(b.indices()[r]);
  CHECK(kept == std::vector<std::uint64_t>{0, 3});
}

TEST_CASE(
    "multi_hot: padding and repeats; an index outside the row names column and record, dropped "
    "under skip") {
  auto rows = std::make_shared<std::vector<std::vector<std::int32_t>>>(
      std::vector<std::vector<std::int32_t>>{
          {0, 4, cy::no_index, cy::no_index},
          {3, 3, 1, cy::no_index},
          {2, 5, cy::no_index, cy::no_index},
          {cy::no_index, cy::no_index, cy::no_index, cy::no_index},
          {-7, 1, cy::no_index, cy::no_index}});
  auto make = [&](cy::error_policy policy) {
    return cy::generate<cy::dense<"i", std::int32_t>>(
               rows->size(), 4,
               [rows](std::uint64_t r, std::span<std::int32_t> out) {
                 std::copy((*rows)[r].begin(), (*rows)[r].end(), out.begin());
               },
               "indices") |
           cy::batch(8) | cy::decode(cy::multi_hot<float>(cy::column<"i">, 5) >> cy::column<"y">) |
           cy::on_errors(policy);
  };
  auto failing = make(cy::on_error::fail);
  try {
    for (auto& b : failing.epoch(0)) (void)b;
    FAIL("expected a data_error");
  } catch (const cy::stage_error& error) {
    std::string what = error.what();
    CHECK(what.find("column 'i': index 5 is outside [0, 5)") != std::string::npos);
    CHECK(error.where().record == 2);
  }
  auto skipping = make(cy::on_error::skip);
  std::vector<std::vector<float>> got;
  std::vector<std::uint64_t> kept;
  for (auto& b : skipping.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) {
      auto y = b.get<"y">().row(r);
      got.emplace_back(y.begin(), y.end());
      kept.push_back(b.indices()[r]);
    }
  CHECK(kept == std::vector<std::uint64_t>{0, 1, 3});
  REQUIRE(got.size() == 3);
  CHECK(got[0] == std::vector<float>{1, 0, 0, 0, 1});
  CHECK(got[1] == std::vector<float>{0, 1, 0, 1, 0});
  CHECK(got[2] == std::vector<float>{0, 0, 0, 0, 0});
}

TEST_CASE(
    "two_gram_indices: the ASCII fast path gives two_grams()'s columns for any text, and too "
    "many grams name the record") {
  // Random fields of letters (both cases), digits, punctuation, spaces and
  // Python whitespace at either end, some over 256 bytes (the fast path
  // declines them), some with a non-ASCII letter (the general path): the
  // indices must be the nonzero columns of two_grams<uint8_t>'s label.
  cy::test::temp_dir dir("two-gram-indices");
  std::uint64_t state = 99;
  auto next = [&] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return state >> 33;
  };
  const std::string alphabet_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.,'";
  std::string text = "GivenName\tSurname\tBirthday\n";
  for (int r = 0; r < 400; ++r) {
    for (int field = 0; field < 3; ++field) {
      std::string value;
      const std::size_t length = r % 37 == 0 ? 300 : next() % 24;
      if (next() % 5 == 0) value += "\x0b ";  // Python whitespace, stripped
      for (std::size_t i = 0; i < length; ++i) value += alphabet_chars[next() % alphabet_chars.size()];
      if (r % 11 == 0 && field == 1) value += "\xc3\xa9";  // é: not ASCII
      if (next() % 5 == 0) value += " \x1c";
      text += value + (field < 2 ? "\t" : "\n");
    }
  }
  auto path = dir.file("grams.tsv", text);
  auto labels = cy::tsv_file(path, tsv_options()) | cy::batch(64) |
                cy::decode(cy::two_grams<std::uint8_t>({"GivenName", "Surname", "Birthday"}) >>
                           cy::column<"y">);
  auto indices = cy::tsv_file(path, tsv_options()) | cy::batch(64) |
                 cy::decode(cy::two_gram_indices({"GivenName", "Surname", "Birthday"}, 700) >>
                            cy::column<"y_index">);
  std::vector<std::vector<std::int32_t>> expected, got;
  for (auto& b : labels.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) {
      std::vector<std::int32_t> columns;
      auto y = b.get<"y">().row(r);
      for (std::size_t c = 0; c < y.size(); ++c)
        if (y[c] != 0) columns.push_back(static_cast<std::int32_t>(c));
      expected.push_back(std::move(columns));
    }
  for (auto& b : indices.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) {
      auto row = b.get<"y_index">().row(r);
      std::vector<std::int32_t> columns;
      for (auto index : row)
        if (index != cy::no_index) columns.push_back(index);
      REQUIRE(std::all_of(row.begin() + static_cast<std::ptrdiff_t>(columns.size()), row.end(),
                          [](std::int32_t index) { return index == cy::no_index; }));
      got.push_back(std::move(columns));
    }
  REQUIRE(got.size() == 400);
  CHECK(got == expected);
  // max_grams below a record's grams: a data_error naming the record, on both paths.
  for (const char* name : {"anna maria", "zo\xc3\xab anna"}) {
    auto small = dir.file("small.tsv", std::string("GivenName\tSurname\tBirthday\nbo\tx\t1\n") +
                                           name + "\tlee\t1999-01-02\n");
    auto pipe = cy::tsv_file(small, tsv_options()) | cy::batch(8) |
                cy::decode(cy::two_gram_indices({"GivenName", "Surname", "Birthday"}, 4) >>
                           cy::column<"y_index">);
    try {
      for (auto& b : pipe.epoch(0)) (void)b;
      FAIL("expected a data_error");
    } catch (const cy::stage_error& error) {
      const std::string what = error.what();
      CAPTURE(what);
      CHECK(what.find("more than max_grams 4; raise max_grams") != std::string::npos);
      CHECK(error.where().record == 1);
    }
  }
}

TEST_CASE(
    "two_gram_index_decoder::compact: the ascending nonzero columns, as a byte-at-a-time scan "
    "finds them, for every length, density and out size") {
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return state >> 33;
  };
  for (std::size_t size : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1036}) {
    for (unsigned density : {0u, 1u, 8u, 64u, 128u}) {  // of 128: none .. all nonzero
      std::vector<std::uint8_t> multi_hot(size);
      for (auto& value : multi_hot)
        value = next() % 128 < density ? static_cast<std::uint8_t>(1 + next() % 255) : 0;
      std::vector<std::int32_t> expected;
      for (std::size_t column = 0; column < size; ++column)
        if (multi_hot[column] != 0) expected.push_back(static_cast<std::int32_t>(column));
      for (std::size_t out_size : {std::size_t{0}, std::size_t{3}, expected.size(), size + 2}) {
        std::vector<std::int32_t> out(out_size, 77);
        CAPTURE(size);
        CAPTURE(density);
        CAPTURE(out_size);
        CHECK(cy::two_gram_index_decoder::compact(multi_hot, out) == expected.size());
        for (std::size_t i = 0; i < out_size; ++i)
          CHECK(out[i] == (i < expected.size() ? expected[i] : cy::no_index));
      }
    }
  }
}
