// Tests for the fixed-width record and .npy readers and their pipeline sources:
// real files in a temporary directory and .npy fixtures written by numpy 2.4
// (tests/source/data/).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <conveyor/conveyor.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "conveyor/source/binary_records.hpp"
#include "conveyor/source/binary_records_source.hpp"
#include "conveyor/source/npy.hpp"
#include "conveyor/source/npy_source.hpp"
#include "support/error_text.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using conveyor::element_type;
using conveyor::test::temp_dir;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path fixture(const std::string& name) {
  return fs::path(CONVEYOR_SOURCE_DIR) / "tests" / "source" / "data" / name;
}

// Runs `action`, which must throw a data_error; returns it for inspection.
template <class Action>
conveyor::data_error expect_data_error(Action&& action) {
  try {
    action();
  } catch (const conveyor::data_error& error) {
    return error;
  }
  FAIL("expected a data_error");
  return conveyor::data_error("unreachable", "");
}

// A little-endian uint32 records file: `header` bytes of 0xAB, then `records`
// rows of 3 values, row r holding 3r, 3r+1, 3r+2.
std::string make_records(std::size_t header, std::size_t records) {
  std::string bytes(header, '\xAB');
  for (std::uint32_t value = 0; value < records * 3; ++value)
    bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
  return bytes;
}

}  // namespace

TEST_CASE("binary_records_file reads batches in the order given") {
  temp_dir dir;
  dir.file("rows.bin", make_records(16, 100));
  conveyor::binary_records_file file(dir.file("rows.bin"), {16, {element_type::uint32, {3}}});
  CHECK(file.size() == 100);
  CHECK(file.record_bytes() == 12);

  const std::vector<std::uint64_t> indices{5, 0, 99, 5, 6, 7, 8, 42};
  std::vector<std::uint32_t> rows(indices.size() * 3);
  file.read(indices, std::span<std::uint32_t>(rows));
  for (std::size_t i = 0; i < indices.size(); ++i)
    for (std::uint32_t k = 0; k < 3; ++k) CHECK(rows[i * 3 + k] == indices[i] * 3 + k);

  std::uint32_t first[3];
  std::memcpy(first, file.record(33).data(), sizeof first);
  CHECK(first[0] == 99);
  CHECK(first[2] == 101);
}

TEST_CASE("binary_records_file rejects caller mistakes") {
  temp_dir dir;
  dir.file("rows.bin", make_records(0, 10));
  conveyor::binary_records_file file(dir.file("rows.bin"), {0, {element_type::uint32, {3}}});
  std::vector<std::uint32_t> rows(3);
  const std::vector<std::uint64_t> past_end{10};
  CHECK_THROWS_AS(file.read(past_end, std::span<std::uint32_t>(rows)), std::out_of_range);
  const std::vector<std::uint64_t> two{1, 2};
  CHECK_THROWS_AS(file.read(two, std::span<std::uint32_t>(rows)), std::invalid_argument);
  std::vector<float> floats(3);
  const std::vector<std::uint64_t> one{1};
  CHECK_THROWS_AS(file.read(one, std::span<float>(floats)), std::invalid_argument);
}

TEST_CASE("binary_records_file names the offset of a partial record") {
  temp_dir dir;
  dir.file("partial.bin", make_records(16, 10) + "12345");
  const auto error = expect_data_error([&] {
    conveyor::binary_records_file(dir.file("partial.bin"), {16, {element_type::uint32, {3}}});
  });
  CHECK(error.where().offset == 16 + 10 * 12);
  CHECK(error.where().record == 10);
  CHECK(std::string(error.what()).find("partial.bin") != std::string::npos);
  CHECK(std::string(error.what()).find("byte offset 136") != std::string::npos);

  dir.file("short.bin", "abc");
  const auto short_header = expect_data_error([&] {
    conveyor::binary_records_file(dir.file("short.bin"), {16, {element_type::uint8, {4}}});
  });
  CHECK(short_header.where().offset == 3);
}

TEST_CASE("binary_records_file: empty and missing files") {
  temp_dir dir;
  dir.file("empty.bin", "");
  conveyor::binary_records_file empty(dir.file("empty.bin"), {0, {element_type::float32, {4}}});
  CHECK(empty.size() == 0);
  empty.read({}, std::span<std::byte>{});
  CHECK_THROWS_AS(
      conveyor::binary_records_file(dir.file("absent.bin"), {0, {element_type::uint8, {1}}}),
      conveyor::io_error);
}

TEST_CASE("npy_file reads every dtype numpy wrote") {
  const auto probe = fixture("npy_f4.npy");
  if (!fs::exists(probe)) {
    MESSAGE("fixtures missing, skipped");
    return;
  }
  const std::vector<std::uint64_t> all{1, 0};  // reversed on purpose

  auto check = [&]<class T>(const std::string& name, std::array<T, 6> expected) {
    CAPTURE(name);
    conveyor::npy_file file(fixture(name));
    REQUIRE(file.size() == 2);
    REQUIRE(file.layout().shape == std::vector<std::uint64_t>{3});
    std::array<T, 6> rows{};  // not std::vector: vector<bool> has no span
    file.read(all, std::span<T>(rows));
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(rows[k] == expected[3 + k]);
      CHECK(rows[3 + k] == expected[k]);
    }
  };
  check.operator()<bool>("npy_b1.npy", {false, true, false, true, false, true});
  check.operator()<std::int8_t>("npy_i1.npy", {0, -7, -14, -21, -28, -35});
  check.operator()<std::uint8_t>("npy_u1.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<std::int16_t>("npy_i2.npy", {0, -7, -14, -21, -28, -35});
  check.operator()<std::uint16_t>("npy_u2.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<std::int32_t>("npy_i4.npy", {0, -7, -14, -21, -28, -35});
  check.operator()<std::uint32_t>("npy_u4.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<std::int64_t>("npy_i8.npy", {0, -7, -14, -21, -28, -35});
  check.operator()<std::uint64_t>("npy_u8.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<float>("npy_f4.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<double>("npy_f8.npy", {0, 7, 14, 21, 28, 35});
  // Big-endian files are byte-swapped on read.
  check.operator()<std::int16_t>("npy_be_i2.npy", {0, -7, -14, -21, -28, -35});
  check.operator()<std::uint32_t>("npy_be_u4.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<float>("npy_be_f4.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<double>("npy_be_f8.npy", {0, 7, 14, 21, 28, 35});
  check.operator()<std::int64_t>("npy_be_i8.npy", {0, -7, -14, -21, -28, -35});

  // float16 has no C++ type: read bytes. 7.0 in IEEE half is 0x4700.
  conveyor::npy_file half(fixture("npy_f2.npy"));
  CHECK(half.layout().dtype == element_type::float16);
  std::array<std::uint16_t, 3> bits{};
  const std::vector<std::uint64_t> first{0};
  half.read(first, std::as_writable_bytes(std::span(bits)));
  CHECK(bits[0] == 0x0000);
  CHECK(bits[1] == 0x4700);
}

TEST_CASE("npy_file reads format versions 2.0 and 3.0 and any rank") {
  if (!fs::exists(fixture("npy_v2_f4_3d.npy"))) {
    MESSAGE("fixtures missing, skipped");
    return;
  }
  conveyor::npy_file cube(fixture("npy_v2_f4_3d.npy"));
  CHECK(cube.format_version() == 2);
  CHECK(cube.size() == 2);
  CHECK(cube.layout().shape == std::vector<std::uint64_t>{3, 4});
  std::vector<float> row(12);
  const std::vector<std::uint64_t> second{1};
  cube.read(second, std::span<float>(row));
  for (std::size_t k = 0; k < 12; ++k) CHECK(row[k] == static_cast<float>(12 + k) / 4);

  conveyor::npy_file vector(fixture("npy_v3_u2.npy"));
  CHECK(vector.format_version() == 3);
  CHECK(vector.size() == 5);
  CHECK(vector.layout().shape.empty());
  std::vector<std::uint16_t> values(3);
  const std::vector<std::uint64_t> picks{4, 2, 4};
  vector.read(picks, std::span<std::uint16_t>(values));
  CHECK(values == std::vector<std::uint16_t>{4000, 2000, 4000});

  CHECK(conveyor::npy_file(fixture("npy_empty.npy")).size() == 0);
}

TEST_CASE("npy_file rejects fortran order with the header offset") {
  if (!fs::exists(fixture("npy_fortran.npy"))) {
    MESSAGE("fixtures missing, skipped");
    return;
  }
  const auto error = expect_data_error([] { conveyor::npy_file(fixture("npy_fortran.npy")); });
  CHECK(std::string(error.what()).find("fortran_order") != std::string::npos);
  CHECK(error.where().offset > 10);
  CHECK(error.where().offset < 128);
}

TEST_CASE("npy_file: malformed headers name the byte offset") {
  temp_dir dir;
  const std::string good_dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }\n";
  auto v1 = [](const std::string& dict) {
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += static_cast<char>(dict.size() & 0xff);
    bytes += static_cast<char>(dict.size() >> 8);
    return bytes + dict;
  };
  auto offset_of = [&](const std::string& bytes) {
    dir.file("bad.npy", bytes);
    const auto error = expect_data_error([&] { conveyor::npy_file(dir.file("bad.npy")); });
    CHECK(std::string(error.what()).find("bad.npy") != std::string::npos);
    return error.where().offset;
  };

  // The good file parses, so each case below fails for its own reason only.
  dir.file("good.npy", v1(good_dict) + std::string(6, '\x01'));
  CHECK(conveyor::npy_file(dir.file("good.npy")).size() == 3);

  CHECK(offset_of("PK\x03\x04 not numpy at all") == 0);
  auto bad_version = v1(good_dict) + std::string(6, '\0');
  bad_version[6] = '\x04';
  CHECK(offset_of(bad_version) == 6);
  CHECK(offset_of(v1(good_dict).substr(0, 40)) == 8);                   // length past EOF
  CHECK(offset_of(v1("{'descr': '<u2', 'fortran_order': False, 'shape': [3], }") +
                  std::string(6, '\0')) == 10 + 50);                      // list, not tuple
  CHECK(offset_of(v1("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }") +
                  std::string(24, '\0')) == 10 + 10);                     // complex
  CHECK(offset_of(v1("{'descr': '<u2', 'shape': (3,), }") + std::string(6, '\0')) == 10);
  CHECK(offset_of(v1("{'descr': '<u2', 'fortran_order': False, 'shape': (3,), 'x': 1}") +
                  std::string(6, '\0')) == 10 + 56);                      // unknown key
  CHECK(offset_of(v1("garbage")) == 10);
  CHECK(offset_of(v1("{'descr': '<u2', 'fortran_order': False, 'shape': (3), }") +
                  std::string(6, '\0')) == 10 + 52);                      // (3) is an int
  CHECK(offset_of(v1("{'descr': '<u2', 'fortran_order': False, 'shape': (), }")) == 10);

  // Truncated data: the error names the first incomplete record.
  dir.file("bad.npy", v1(good_dict) + std::string(3, '\0'));
  const auto truncated = expect_data_error([&] { conveyor::npy_file(dir.file("bad.npy")); });
  CHECK(truncated.where().record == 1);
  CHECK(truncated.where().offset == 10 + good_dict.size() + 2);
  CHECK(offset_of(v1(good_dict) + std::string(8, '\0')) == 10 + good_dict.size() + 6);
}

TEST_CASE("npy_writer streams rows that npy_file reads back") {
  temp_dir dir;
  const auto path = dir.file("stream.npy");
  {
    conveyor::npy_writer writer(path, {element_type::float32, {2, 2}});
    std::vector<float> chunk;
    for (int row = 0; row < 1000;) {
      chunk.clear();
      for (int k = 0; k < 7 && row < 1000; ++k, ++row)
        for (int e = 0; e < 4; ++e) chunk.push_back(static_cast<float>(row * 4 + e));
      writer.write(std::span<const float>(chunk));
    }
    CHECK(writer.rows_written() == 1000);
    writer.close();
  }
  conveyor::npy_file file(path);
  CHECK(file.size() == 1000);
  CHECK(file.layout().shape == std::vector<std::uint64_t>{2, 2});
  std::vector<float> rows(8);
  const std::vector<std::uint64_t> picks{999, 3};
  file.read(picks, std::span<float>(rows));
  CHECK(rows[0] == 3996.0f);
  CHECK(rows[7] == 15.0f);

  conveyor::npy_writer typed(dir.file("typed.npy"), {element_type::int16, {}});
  const std::vector<float> wrong{1.0f};
  CHECK_THROWS_AS(typed.write(std::span<const float>(wrong)), std::invalid_argument);
}

TEST_CASE("write_npy writes the bytes numpy writes") {
  if (!fs::exists(fixture("npy_f4.npy"))) {
    MESSAGE("fixtures missing, skipped");
    return;
  }
  temp_dir dir;
  const std::vector<float> values{0, 7, 14, 21, 28, 35};
  const std::vector<std::uint64_t> shape{2, 3};
  conveyor::write_npy(dir.file("ours.npy"), element_type::float32, shape,
                      std::as_bytes(std::span(values)));
  CHECK(read_file(dir.file("ours.npy")) == read_file(fixture("npy_f4.npy")));

  const std::vector<std::uint64_t> wrong_shape{3, 3};
  CHECK_THROWS_AS(conveyor::write_npy(dir.file("x.npy"), element_type::float32, wrong_shape,
                                      std::as_bytes(std::span(values))),
                  std::invalid_argument);
}

// --- the pipeline sources ----------------------------------------------------

namespace cy = conveyor;

namespace {

constexpr std::uint64_t source_records = 1000;

// features.npy: uint8 (1000, 4, 8), element k of record i is (7i + k) mod 256.
// labels.npy: float32 (1000,), record i is i / 4.
std::uint8_t feature_at(std::uint64_t record, std::size_t k) {
  return static_cast<std::uint8_t>((record * 7 + k) & 0xff);
}
float label_at(std::uint64_t record) {
  return static_cast<float>(record) * 0.25f;
}

void write_features(const fs::path& path, std::uint64_t records = source_records) {
  std::vector<std::uint8_t> values(records * 32);
  for (std::uint64_t i = 0; i < records; ++i)
    for (std::size_t k = 0; k < 32; ++k) values[i * 32 + k] = feature_at(i, k);
  const std::vector<std::uint64_t> shape{records, 4, 8};
  cy::write_npy(path, element_type::uint8, shape, std::as_bytes(std::span(values)));
}

void write_labels(const fs::path& path, std::uint64_t records = source_records) {
  std::vector<float> values(records);
  for (std::uint64_t i = 0; i < records; ++i) values[i] = label_at(i);
  const std::vector<std::uint64_t> shape{records};
  cy::write_npy(path, element_type::float32, shape, std::as_bytes(std::span(values)));
}

cy::stage_context test_context() {
  cy::stage_context ctx;
  ctx.pool = std::make_shared<cy::pageable_pool>();
  return ctx;
}

// Runs one epoch; `check_row(batch, r)` checks row r against the record it
// claims to be. Returns the record indices in delivery order.
template <class Pipe, class CheckRow>
std::vector<std::uint64_t> delivered(Pipe& pipe, CheckRow check_row) {
  std::vector<std::uint64_t> order;
  for (auto& batch : pipe.epoch(0))
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      check_row(batch, r);
      order.push_back(batch.indices()[r]);
    }
  return order;
}

// Every record exactly once.
bool is_permutation_of_all(std::vector<std::uint64_t> order, std::uint64_t records) {
  std::sort(order.begin(), order.end());
  for (std::uint64_t i = 0; i < records; ++i)
    if (i >= order.size() || order[i] != i) return false;
  return order.size() == records;
}

using conveyor::test::contains;
using conveyor::test::error_text;

}  // namespace

TEST_CASE("npy_source: aligned .npy columns through shuffle, batch and parallel(2)") {
  temp_dir dir;
  write_features(dir.file("features.npy"));
  write_labels(dir.file("labels.npy"));
  auto make = [&] {
    return cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"y", float>>(
        {dir.file("features.npy"), dir.file("labels.npy")}, {32, std::nullopt});
  };
  static_assert(cy::fingerprinted_source<decltype(make())>);
  auto check_row = [](auto& batch, std::size_t r) {
    const auto record = batch.indices()[r];
    const auto& bits = batch.template get<"bits">();
    REQUIRE(bits.width() == 32);
    for (std::size_t k = 0; k < 32; ++k) REQUIRE(bits(r, k) == feature_at(record, k));
    REQUIRE(batch.template get<"y">()(r, 0) == label_at(record));
  };
  auto serial = make() | cy::shuffle(42) | cy::batch(64) | cy::parallel(1);
  auto threaded = make() | cy::shuffle(42) | cy::batch(64) | cy::parallel(2);
  const auto expected = delivered(serial, check_row);
  CHECK(is_permutation_of_all(expected, source_records));
  CHECK(delivered(threaded, check_row) == expected);
  CHECK_FALSE(std::is_sorted(expected.begin(), expected.end()));

  // Buffers flow backwards: the delivered columns come from the sink's pool.
  const auto sink = std::make_shared<cy::pageable_pool>();
  auto pooled = make() | cy::batch(100) | cy::with_pool(sink) | cy::parallel(2);
  for (auto& batch : pooled.epoch(0)) {
    CHECK(batch.get<"bits">().buffer().pool() == sink);
    CHECK(batch.get<"y">().buffer().pool() == sink);
  }

  const auto source = make();
  CHECK(source.size() == source_records);
  CHECK(source.name() == "features.npy+labels.npy");
  CHECK(source.file(0).layout().shape == std::vector<std::uint64_t>{4, 8});
}

TEST_CASE("npy_source: rows in the order given, repeats, empty batches, dtypes") {
  temp_dir dir;
  write_labels(dir.file("labels.npy"));
  const auto source = cy::npy_source<cy::dense<"y", float>>(dir.file("labels.npy"), 1);
  const auto ctx = test_context();
  const std::vector<std::uint64_t> indices{999, 3, 3, 4, 5, 0, 998};
  auto batch = source.read(indices, ctx);
  REQUIRE(batch.rows() == indices.size());
  for (std::size_t r = 0; r < indices.size(); ++r) {
    CHECK(batch.indices()[r] == indices[r]);
    CHECK(batch.get<"y">()(r, 0) == label_at(indices[r]));
  }
  CHECK(source.read({}, ctx).rows() == 0);
  const std::vector<std::uint64_t> past_end{1000};
  CHECK_THROWS_AS(source.read(past_end, ctx), std::out_of_range);

  if (!fs::exists(fixture("npy_be_f4.npy"))) return;
  // Big-endian files are swapped; float16 reads as conveyor::float16; bools are 0/1.
  const std::vector<std::uint64_t> both{1, 0};
  auto swapped = cy::npy_source<cy::dense<"x", float>>(fixture("npy_be_f4.npy")).read(both, ctx);
  CHECK(swapped.get<"x">()(0, 0) == 21.0f);
  CHECK(swapped.get<"x">()(1, 2) == 14.0f);
  auto half = cy::npy_source<cy::dense<"h", cy::float16>>(fixture("npy_f2.npy")).read(both, ctx);
  CHECK(static_cast<float>(half.get<"h">()(1, 1)) == 7.0f);
  auto flags = cy::npy_source<cy::dense<"b", bool>>(fixture("npy_b1.npy")).read(both, ctx);
  CHECK(flags.get<"b">()(0, 0) == true);
  CHECK(flags.get<"b">()(1, 0) == false);
}

TEST_CASE("npy_source: a dtype or width the file does not hold is an error at open") {
  temp_dir dir;
  write_features(dir.file("features.npy"));
  write_labels(dir.file("labels.npy"));

  const auto dtype =
      error_text([&] { (void)cy::npy_source<cy::dense<"y", double>>(dir.file("labels.npy")); });
  CHECK(contains(dtype, (dir.file("labels.npy")).string()));
  CHECK(contains(dtype, "column 'y' expects float64"));
  CHECK(contains(dtype, "holds float32 records of shape ()"));
  CHECK(contains(dtype, "array shape (1000,)"));
  CHECK(contains(dtype, "byte offset 10"));

  const auto width = error_text([&] {
    (void)cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"y", float>>(
        {dir.file("features.npy"), dir.file("labels.npy")}, {1024, std::nullopt});
  });
  CHECK(contains(width, "features.npy"));
  CHECK(contains(width, "expects uint8 records of 1024 values"));
  CHECK(contains(width, "holds uint8 records of shape (4, 8) = 32 values"));
  CHECK(contains(width, "array shape (1000, 4, 8)"));

  // Both problems at once name both sides too.
  const auto both = error_text(
      [&] { (void)cy::npy_source<cy::dense<"bits", std::int8_t>>(dir.file("features.npy"), 8); });
  CHECK(contains(both, "expects int8 records of 8 values"));
  CHECK(contains(both, "holds uint8 records of shape (4, 8) = 32 values"));

  auto open_as_double = [&] {
    (void)cy::npy_source<cy::dense<"y", double>>(dir.file("labels.npy"));
  };
  CHECK_THROWS_AS(open_as_double(), cy::data_error);
}

TEST_CASE("npy_source: files with different record counts are an error at open") {
  temp_dir dir;
  write_features(dir.file("features.npy"));
  write_labels(dir.file("short_labels.npy"), 999);
  const auto message = error_text([&] {
    (void)cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"y", float>>(
        {dir.file("features.npy"), dir.file("short_labels.npy")});
  });
  CHECK(contains(message, "same number of records"));
  CHECK(
      contains(message, "column 'bits' (" + (dir.file("features.npy")).string() + ") holds 1000"));
  CHECK(
      contains(message, "column 'y' (" + (dir.file("short_labels.npy")).string() + ") holds 999"));
}

TEST_CASE("npy_source: truncated and missing files name the file, record and offset") {
  temp_dir dir;
  write_labels(dir.file("labels.npy"));
  auto bytes = read_file(dir.file("labels.npy"));
  const auto header = bytes.size() - source_records * 4;
  dir.file("cut.npy", bytes.substr(0, header + 10 * 4 + 2));  // 10 records and a half
  try {
    (void)cy::npy_source<cy::dense<"y", float>>(dir.file("cut.npy"));
    FAIL("no error");
  } catch (const cy::data_error& error) {
    const std::string message = error.what();
    CHECK(contains(message, (dir.file("cut.npy")).string()));
    CHECK(contains(message, "column 'y'"));
    CHECK(contains(message, "truncated data: the shape needs 4000 bytes, the file holds 42"));
    CHECK(error.where().record == 10);
    CHECK(error.where().offset == header + 40);
    CHECK(contains(message, "record 10, byte offset " + std::to_string(header + 40)));
  }
  const auto missing =
      error_text([&] { (void)cy::npy_source<cy::dense<"y", float>>(dir.file("absent.npy")); });
  CHECK(contains(missing, "absent.npy"));
  CHECK(contains(missing, "column 'y': cannot open"));
  auto open_missing = [&] { (void)cy::npy_source<cy::dense<"y", float>>(dir.file("absent.npy")); };
  CHECK_THROWS_AS(open_missing(), cy::io_error);
}

TEST_CASE("npy_source: the fingerprint follows the files' content and the columns") {
  temp_dir dir;
  write_labels(dir.file("labels.npy"));
  const auto before = cy::npy_source<cy::dense<"y", float>>(dir.file("labels.npy")).fingerprint();
  CHECK(cy::npy_source<cy::dense<"y", float>>(dir.file("labels.npy")).fingerprint() == before);
  CHECK(cy::npy_source<cy::dense<"z", float>>(dir.file("labels.npy")).fingerprint() != before);
  // Same size, one value changed in place.
  auto bytes = read_file(dir.file("labels.npy"));
  bytes[bytes.size() - 1] ^= 0x40;
  dir.file("labels.npy", bytes);
  CHECK(cy::npy_source<cy::dense<"y", float>>(dir.file("labels.npy")).fingerprint() != before);
}

TEST_CASE("binary_records_source through shuffle, batch and parallel(2)") {
  temp_dir dir;
  dir.file("rows.bin", make_records(16, 500));
  auto make = [&] {
    return cy::binary_records_source<cy::dense<"x", std::uint32_t>>(
        dir.file("rows.bin"), {.header_bytes = 16, .layout = {element_type::uint32, {3}}});
  };
  static_assert(cy::fingerprinted_source<decltype(make())>);
  auto check_row = [](auto& batch, std::size_t r) {
    const auto record = batch.indices()[r];
    for (std::size_t k = 0; k < 3; ++k) REQUIRE(batch.template get<"x">()(r, k) == record * 3 + k);
  };
  auto serial = make() | cy::shuffle(7) | cy::batch(32) | cy::parallel(1);
  auto threaded = make() | cy::shuffle(7) | cy::batch(32) | cy::parallel(2);
  const auto expected = delivered(serial, check_row);
  CHECK(is_permutation_of_all(expected, 500));
  CHECK(delivered(threaded, check_row) == expected);

  const auto source = make();
  CHECK(source.size() == 500);
  CHECK(source.name() == "rows.bin");
  const auto ctx = test_context();
  const std::vector<std::uint64_t> indices{499, 2, 2, 0};
  auto batch = source.read(indices, ctx);
  CHECK(batch.get<"x">()(0, 2) == 499 * 3 + 2);
  CHECK(batch.get<"x">()(2, 0) == 6);
  CHECK(batch.get<"x">()(3, 1) == 1);
}

TEST_CASE("binary_records_source: layout and file problems name the file and both sides") {
  temp_dir dir;
  dir.file("rows.bin", make_records(16, 10));
  const auto dtype = error_text([&] {
    (void)cy::binary_records_source<cy::dense<"x", float>>(
        dir.file("rows.bin"), {.header_bytes = 16, .layout = {element_type::uint32, {3}}});
  });
  CHECK(contains(dtype, (dir.file("rows.bin")).string()));
  CHECK(contains(dtype,
                 "column 'x' holds float32, the record layout says uint32 records of shape (3,)"));
  auto open_as_float = [&] {
    (void)cy::binary_records_source<cy::dense<"x", float>>(
        dir.file("rows.bin"), {.header_bytes = 16, .layout = {element_type::uint32, {3}}});
  };
  CHECK_THROWS_AS(open_as_float(), std::invalid_argument);

  // 10 records of 12 bytes after 16 header bytes do not divide into 28-byte records.
  try {
    (void)cy::binary_records_source<cy::dense<"x", std::uint32_t>>(
        dir.file("rows.bin"), {.header_bytes = 16, .layout = {element_type::uint32, {7}}});
    FAIL("no error");
  } catch (const cy::data_error& error) {
    const std::string message = error.what();
    CHECK(contains(message, (dir.file("rows.bin")).string()));
    CHECK(contains(message, "record 4, byte offset 128"));
    CHECK(contains(message, "column 'x': partial record: 8 of 28 bytes"));
  }
}
