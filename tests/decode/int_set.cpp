// Tests for conveyor/decode/int_set.hpp: Python's set syntax, every output form,
// bad inputs with their byte positions, and the DEA twostephash column.
#include "conveyor/decode/int_set.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {
std::vector<std::int64_t> parse_ok(std::string_view text) {
  std::vector<std::int64_t> values{99};
  const auto status = cy::try_parse_int_set(text, values);
  REQUIRE(status.ok());
  return values;
}

cy::decode_status parse_bad(std::string_view text) {
  std::vector<std::int64_t> values;
  return cy::try_parse_int_set(text, values);
}
}  // namespace

TEST_CASE("Python set syntax") {
  CHECK(parse_ok("{628739, 459782, 229895}") == std::vector<std::int64_t>{628739, 459782, 229895});
  CHECK(parse_ok("{}").empty());
  CHECK(parse_ok("set()").empty());
  CHECK(parse_ok("  set()  ").empty());
  CHECK(parse_ok("{ }").empty());
  CHECK(parse_ok("{0}") == std::vector<std::int64_t>{0});
  CHECK(parse_ok(" {1,2 ,  3 }\r") == std::vector<std::int64_t>{1, 2, 3});
  CHECK(parse_ok("{4294967296, -9223372036854775807}") ==
        std::vector<std::int64_t>{4294967296, -9223372036854775807});
  CHECK(parse_ok("{-1430, 5}") == std::vector<std::int64_t>{-1430, 5});  // as in the DEA twostephash file
  CHECK(parse_ok("{007, 7}") == std::vector<std::int64_t>{7, 7});
}

TEST_CASE("malformed text is reported at the offending byte") {
  struct bad_case {
    std::string_view text;
    cy::decode_errc code;
    std::size_t position;
  };
  const bad_case cases[] = {
      {"", cy::decode_errc::malformed, 0},
      {"   ", cy::decode_errc::malformed, 3},
      {"[1, 2]", cy::decode_errc::malformed, 0},
      {"{1, 2", cy::decode_errc::malformed, 5},
      {"{1, 2,}", cy::decode_errc::malformed, 6},
      {"{1,, 2}", cy::decode_errc::malformed, 3},
      {"{,}", cy::decode_errc::malformed, 1},
      {"{--1}", cy::decode_errc::malformed, 2},
      {"{- 1}", cy::decode_errc::malformed, 2},
      {"{1-}", cy::decode_errc::malformed, 2},
      {"{+1}", cy::decode_errc::malformed, 1},
      {"{1 2}", cy::decode_errc::malformed, 3},
      {"{1.5}", cy::decode_errc::malformed, 2},
      {"{1} x", cy::decode_errc::malformed, 4},
      {"{1}}", cy::decode_errc::malformed, 3},
      {"set( )", cy::decode_errc::malformed, 0},
      {"set()x", cy::decode_errc::malformed, 5},
      {"{", cy::decode_errc::malformed, 1},
      {"{12, 9223372036854775808}", cy::decode_errc::value_out_of_range, 5},
      {"{-9223372036854775808}", cy::decode_errc::value_out_of_range, 1},
      {"{99999999999999999999999999}", cy::decode_errc::value_out_of_range, 1},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto status = parse_bad(c.text);
    CHECK(status.code == c.code);
    CHECK(status.position == c.position);
  }
  CHECK(parse_bad("{99999999999999999999999999}").value == std::numeric_limits<std::int64_t>::max());
  CHECK(parse_bad("{-99999999999999999999999999}").value == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("caller span form") {
  std::array<std::int64_t, 3> out{};
  std::size_t count = 99;
  CHECK(cy::try_parse_int_set("{5, 6}", out, count).ok());
  CHECK(count == 2);
  CHECK(out[0] == 5);
  CHECK(out[1] == 6);
  const auto status = cy::try_parse_int_set("{1, 2, 3, 44}", out, count);
  CHECK(status.code == cy::decode_errc::too_many_values);
  CHECK(status.position == 10);
  CHECK(count == 3);
}

TEST_CASE_TEMPLATE("multi-hot rows", T, float, std::uint8_t, cy::float16, cy::bfloat16) {
  std::vector<T> row(8, cy::detail::bit_one<T>());
  REQUIRE(cy::try_parse_int_set_multi_hot("{1, 7, 1}", std::span<T>(row)).ok());
  for (std::size_t i = 0; i < row.size(); ++i) {
    const T expected = (i == 1 || i == 7) ? cy::detail::bit_one<T>() : cy::detail::bit_zero<T>();
    CHECK(std::memcmp(&row[i], &expected, sizeof(T)) == 0);
  }
  const auto status = cy::try_parse_int_set_multi_hot("{3, 8}", std::span<T>(row));
  CHECK(status.code == cy::decode_errc::value_out_of_range);
  CHECK(status.value == 8);
  CHECK(status.position == 4);
  const auto negative = cy::try_parse_int_set_multi_hot("{-3}", std::span<T>(row));
  CHECK(negative.code == cy::decode_errc::value_out_of_range);
  CHECK(negative.value == -3);
  CHECK(negative.position == 1);
}

TEST_CASE("throwing forms name file, record, byte offset and the value") {
  std::vector<float> row(10);
  CHECK_THROWS_WITH_AS(cy::parse_int_set_multi_hot("{1, 12}", std::span<float>(row), cy::error_location{"t.tsv", 3, 200}),
                       "t.tsv, record 3, byte offset 204: integer set: value 12 is outside [0, 10), the row width "
                       "(at byte 4)",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::parse_int_set("{1, x}", cy::error_location{"t.tsv", 3, 200}),
                       "t.tsv, record 3, byte offset 204: integer set: expected a decimal digit, found 'x' (0x78) "
                       "(at byte 4)",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::parse_int_set("{1", cy::error_location{"t.tsv", 3, 200}),
                       "t.tsv, record 3, byte offset 202: integer set: expected ',' or '}' before the end, found "
                       "the end of the field (at byte 2)",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::parse_int_set_multi_hot("{-55555555555555555555}", std::span<float>(row), cy::error_location{"t", 0, 0}),
                       "t, record 0, byte offset 1: integer set: value does not fit in 64 bits: -55555555555555555555 (at "
                       "byte 1)",
                       cy::data_error);
  std::vector<std::int64_t> values;
  CHECK_NOTHROW(cy::parse_int_set("{3}", values, cy::error_location{"t"}));
  CHECK(values == std::vector<std::int64_t>{3});
}

TEST_CASE("the DEA twostephash column parses: 100-250 values per row, in [-2000, 2,100,000)") {
  const std::filesystem::path path = std::filesystem::path(CONVEYOR_SHARED_DATA_DIR) / "fakename_1k_tsh_encoded.tsv";
  if (!std::filesystem::exists(path)) {
    MESSAGE("shared data not found, skipping: " << path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::getline(in, line);
  std::vector<std::int64_t> values;
  std::vector<std::uint8_t> row(2'100'000);
  std::size_t rows = 0, total = 0, negatives = 0;
  while (std::getline(in, line)) {
    std::vector<std::string_view> fields;
    std::string_view rest = line;
    for (std::size_t tab; (tab = rest.find('\t')) != std::string_view::npos; rest.remove_prefix(tab + 1))
      fields.push_back(rest.substr(0, tab));
    fields.push_back(rest);
    REQUIRE(fields.size() == 5);
    cy::parse_int_set(fields[3], values, cy::error_location{path.string(), rows});
    REQUIRE(!values.empty());
    std::sort(values.begin(), values.end());
    CHECK(std::adjacent_find(values.begin(), values.end()) == values.end());  // a set: no repeats
    CHECK(values.front() >= -2000);
    CHECK(values.back() < 2'100'000);
    negatives += static_cast<std::size_t>(std::count_if(values.begin(), values.end(), [](auto v) { return v < 0; }));
    if (rows >= 50) {  // the 2.1M-wide multi-hot check is slow in Debug builds: 50 rows suffice
      total += values.size();
      ++rows;
      continue;
    }
    const auto status = cy::try_parse_int_set_multi_hot(fields[3], std::span<std::uint8_t>(row));
    if (values.front() < 0) {
      CHECK(status.code == cy::decode_errc::value_out_of_range);
    } else {
      REQUIRE(status.ok());
      std::size_t ones = 0;
      for (auto v : row) ones += v;
      CHECK(ones == values.size());
    }
    total += values.size();
    ++rows;
  }
  CHECK(rows == 1000);
  CHECK(negatives == 46);  // -1430, -1685, -447: real values (the original parses them with int())
  MESSAGE("mean values per row: " << static_cast<double>(total) / static_cast<double>(rows));
  CHECK(total / rows > 100);  // the data README says "about 130"; this file averages ~175
  CHECK(total / rows < 250);
}
