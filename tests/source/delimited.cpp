// Tests for conveyor/source/delimited.hpp. Expected rows were produced by
// Python 3.11's csv.reader(f, delimiter=...) on the same bytes (see
// docs/source-delimited.md); Python is not needed to run these tests.
#include "conveyor/source/delimited.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;
using conveyor::data_error;
using conveyor::delimited_file;
using conveyor::delimited_options;
using conveyor::field_table;
using conveyor::index_origin;
using conveyor::record_buffer;
using rows_t = std::vector<std::vector<std::string>>;

namespace {

// A fresh directory per test case, removed afterwards.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("conveyor-delimited-test-" + std::to_string(::getpid()) +
                                        "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path write(const std::string& name, std::string_view bytes) const {
    const auto file = path / name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return file;
  }
};

delimited_options in_memory(char delimiter) {
  delimited_options options;
  options.delimiter = delimiter;
  options.persist_index = false;
  return options;
}

rows_t all_records(const delimited_file& file) {
  rows_t rows;
  record_buffer buffer;
  for (std::uint64_t i = 0; i < file.size(); ++i) {
    auto record = file.record(i, buffer);
    std::vector<std::string> fields;
    for (std::size_t j = 0; j < record.field_count(); ++j) fields.emplace_back(record.field(j));
    rows.push_back(std::move(fields));
  }
  return rows;
}

std::vector<std::string> header_of(const delimited_file& file) {
  return {file.header().begin(), file.header().end()};
}

// Parses `bytes` and checks header and records against what Python gives.
void check_parse(char delimiter, std::string_view bytes, const std::vector<std::string>& header,
                 const rows_t& expected) {
  scratch_dir dir;
  delimited_file file(dir.write("case.txt", bytes), in_memory(delimiter));
  CHECK(header_of(file) == header);
  REQUIRE(file.size() == expected.size());
  CHECK(all_records(file) == expected);
  // The batched path agrees with the single-record path.
  std::vector<std::uint64_t> indices(expected.size());
  std::iota(indices.begin(), indices.end(), 0);
  field_table table;
  REQUIRE(file.read(indices, table) == expected.size());
  for (std::size_t row = 0; row < expected.size(); ++row)
    for (std::size_t column = 0; column < header.size(); ++column)
      CHECK(table.field(row, column) == expected[row][column]);
}

std::uint64_t fnv1a(std::uint64_t hash, std::string_view bytes) {
  for (const unsigned char byte : bytes) hash = (hash ^ byte) * 0x100000001b3ULL;
  return hash;
}

}  // namespace

TEST_CASE("delimited: quoting follows Python's csv.reader") {
  check_parse(',', "h1,h2\n\"x,y\",\"he said \"\"hi\"\"\"\n\"multi\nline\",plain\n", {"h1", "h2"},
              {{"x,y", "he said \"hi\""}, {"multi\nline", "plain"}});
  check_parse(',', "h1,h2\nab\"cd,e\n", {"h1", "h2"}, {{"ab\"cd", "e"}});
  check_parse(',', "h1,h2\n\"ab\"cd,\"x\"y\"z\"\n", {"h1", "h2"}, {{"abcd", "xy\"z\""}});
  check_parse('\t', "a\tb\n\"q\t1\"\t\"\"\"\"\n", {"a", "b"}, {{"q\t1", "\""}});
  check_parse(',', "\"na\"\"me\",b\n1,2\n", {"na\"me", "b"}, {{"1", "2"}});
}

TEST_CASE("delimited: line endings, final newline, spaces, empty fields") {
  check_parse(',', "a,b\r\n1,2\r\n3,4\r\n", {"a", "b"}, {{"1", "2"}, {"3", "4"}});
  check_parse(',', "a,b\r1,2\r3,4", {"a", "b"}, {{"1", "2"}, {"3", "4"}});
  check_parse(',', "a,b\n1,2", {"a", "b"}, {{"1", "2"}});
  check_parse(',', "a,b\n\"l1\r\nl2\",z\r\n", {"a", "b"}, {{"l1\r\nl2", "z"}});
  check_parse(',', "a,b\n  x , y \n", {"a", "b"}, {{"  x ", " y "}});
  check_parse(',', "a,b,c\n,,\n\"\",x,\n", {"a", "b", "c"}, {{"", "", ""}, {"", "x", ""}});
  check_parse(',', "a,b\n1,", {"a", "b"}, {{"1", ""}});
}

TEST_CASE("delimited: a UTF-8 byte order mark is not part of the first column name") {
  check_parse(',', "\xEF\xBB\xBFid,name\n1,\xC3\xA9t\xC3\xA9\n", {"id", "name"},
              {{"1", "\xC3\xA9t\xC3\xA9"}});
  check_parse(',', "\xEF\xBB\xBF\"id\",x\n1,2\n", {"id", "x"}, {{"1", "2"}});
}

TEST_CASE("delimited: blank lines are skipped by default, or are zero-field records") {
  const std::string_view bytes = "\na,b\n\n1,2\n\r\n3,4\n\n";
  check_parse(',', bytes, {"a", "b"}, {{"1", "2"}, {"3", "4"}});

  scratch_dir dir;
  auto options = in_memory(',');
  options.skip_blank_lines = false;
  delimited_file file(dir.write("blank.csv", bytes), options);
  CHECK(header_of(file) == std::vector<std::string>{"a", "b"});
  REQUIRE(file.size() == 5);  // blank, 1 2, blank, 3 4, blank
  record_buffer buffer;
  CHECK(file.record(1, buffer).field(1) == "2");
  CHECK_THROWS_WITH_AS(file.record(0, buffer), doctest::Contains("(a blank line)"), data_error);
}

TEST_CASE("delimited: a file with no header line is an error naming the file") {
  scratch_dir dir;
  const auto empty = dir.write("empty.tsv", "");
  CHECK_THROWS_WITH_AS(
      delimited_file(empty, in_memory('\t')),
      (empty.string() + ": has no header line (the file is empty); a delimited file must start "
                        "with a header row naming its columns")
          .c_str(),
      data_error);
  // Blank lines (and a byte order mark) are not a header either.
  for (std::string_view bytes : {"\n", "\r\n\n", "\xEF\xBB\xBF", "\xEF\xBB\xBF\n\n"}) {
    const auto blank = dir.write("blank.tsv", bytes);
    CHECK_THROWS_WITH_AS(
        delimited_file(blank, in_memory('\t')),
        doctest::Contains((blank.string() + ": has no header line (its " +
                           std::to_string(bytes.size()) + " bytes hold only blank lines)")
                              .c_str()),
        data_error);
  }
  // With a sidecar: nothing is written for a refused file, and a stale sidecar
  // that claims no header (written before this check existed) is refused too.
  auto options = delimited_options::tsv();
  options.index_directory = dir.path / "index";
  std::filesystem::create_directories(options.index_directory);
  CHECK_THROWS_AS(delimited_file(empty, options), data_error);
  CHECK(std::filesystem::is_empty(options.index_directory));
  const auto sidecar =
      conveyor::detail::delimited::sidecar_in_directory(empty, options.index_directory);
  const conveyor::detail::delimited::mapped_text mapped(empty);
  std::string reason;
  REQUIRE(conveyor::detail::delimited::save_sidecar(
      sidecar,
      conveyor::detail::delimited::identify(mapped.data(), mapped.size(), mapped.mtime_ns()),
      conveyor::detail::delimited::syntax_code('\t', true),
      conveyor::detail::delimited::record_index{}, reason));
  CHECK_THROWS_WITH_AS(delimited_file(empty, options), doctest::Contains("has no header line"),
                       data_error);
}

TEST_CASE("delimited: header-only files have zero records") {
  scratch_dir dir;

  for (std::string_view bytes : {"a\tb\n", "a\tb", "a\tb\r\n\n\n"}) {
    delimited_file header_only(dir.write("header.tsv", bytes), in_memory('\t'));
    CHECK(header_only.size() == 0);
    CHECK(header_of(header_only) == std::vector<std::string>{"a", "b"});
    CHECK(header_only.column_index("b") == 1);
    field_table table;
    CHECK(header_only.read({}, table) == 0);
  }
}

TEST_CASE("delimited: errors name file, record and byte offset") {
  scratch_dir dir;
  const auto path = dir.write("bad.csv", "a,b\n1,2,3\n4\n5,6\n7,\"oops\n");
  delimited_file file(path, in_memory(','));
  REQUIRE(file.size() == 4);
  record_buffer buffer;
  try {
    (void)file.record(0, buffer);
    FAIL("expected a data_error");
  } catch (const data_error& error) {
    CHECK(error.where().file == path.string());
    CHECK(error.where().record == 0);
    CHECK(error.where().offset == 4);
    CHECK(std::string(error.what())
              .find(path.string() + ", record 0, byte offset 4: record has 3 fields") == 0);
  }
  CHECK_THROWS_WITH_AS(file.record(1, buffer),
                       doctest::Contains("record 1, byte offset 10: record has 1 fields"),
                       data_error);
  CHECK(file.record(2, buffer).field(0) == "5");
  // The unterminated quote is reported at the quote itself (byte 18).
  CHECK_THROWS_WITH_AS(file.record(3, buffer),
                       doctest::Contains("record 3, byte offset 18: unterminated"), data_error);
  CHECK_THROWS_WITH_AS(file.record(4, buffer),
                       doctest::Contains("record 4, byte offset 24: record index 4 is out"),
                       data_error);
  try {
    (void)file.column_index("missing_column");
    FAIL("expected a data_error");
  } catch (const data_error& error) {
    CHECK(error.where().file == path.string());
    CHECK(std::string(error.what()).find("missing_column") != std::string::npos);
  }

  // Batched: fail throws the first bad record in file order; skip drops rows.
  field_table table;
  const std::vector<std::uint64_t> indices{3, 2, 0, 2};
  CHECK_THROWS_WITH_AS(file.read(indices, table), doctest::Contains("record 0"), data_error);
  REQUIRE(file.read(indices, table, conveyor::on_error::skip) == 2);
  CHECK(table.record_index(0) == 2);
  CHECK(table.record_index(1) == 2);
  CHECK(table.field(1, 1) == "6");
  REQUIRE(table.skipped().size() == 2);
  CHECK(table.skipped()[0].where().record == 0);  // reported in file order
  CHECK(table.skipped()[1].where().record == 3);
  CHECK(table.skipped()[1].where().offset == 18);
  // An out-of-range index throws under any policy and leaves the table empty.
  const std::vector<std::uint64_t> out_of_range{2, 9};
  CHECK_THROWS_AS(file.read(out_of_range, table, conveyor::on_error::skip), data_error);
  CHECK(table.rows() == 0);

  CHECK_THROWS_AS(delimited_file(dir.write("badheader.csv", "a,\"b\n1,2\n"), in_memory(',')),
                  data_error);
  CHECK_THROWS_AS(delimited_file(dir.path / "absent.csv", in_memory(',')), conveyor::io_error);
  CHECK_THROWS_AS(delimited_file(path, in_memory('"')), std::invalid_argument);
}

TEST_CASE("delimited: views point into the mapping unless a field needed unescaping") {
  scratch_dir dir;
  delimited_file file(dir.write("views.csv", "a,b,c\nplain,\"quoted\",\"esc\"\"aped\"\n"),
                      in_memory(','));
  record_buffer first, second;
  const auto one = file.record(0, first);
  const auto two = file.record(0, second);
  CHECK(one.field(0).data() == two.field(0).data());  // both in the mapping
  CHECK(one.field(1).data() == two.field(1).data());
  CHECK(one.field(1) == "quoted");
  CHECK(one.field(2) == "esc\"aped");
  CHECK(one.field(2).data() != two.field(2).data());  // each buffer's own arena
  CHECK(one.byte_offset() == 6);
  CHECK_THROWS_AS((void)one.field(3), std::out_of_range);
}

TEST_CASE("delimited: read keeps the requested order and reuses the table") {
  scratch_dir dir;
  std::string bytes = "id\tvalue\n";
  for (int i = 0; i < 500; ++i)
    bytes += std::to_string(i) + "\t\"v\"\"" + std::to_string(i) + "\"\n";
  delimited_file file(dir.write("order.tsv", bytes), in_memory('\t'));
  REQUIRE(file.size() == 500);
  field_table table;
  const std::vector<std::uint64_t> indices{499, 0, 250, 250, 17};
  REQUIRE(file.read(indices, table) == indices.size());
  for (std::size_t row = 0; row < indices.size(); ++row) {
    CHECK(table.record_index(row) == indices[row]);
    CHECK(table.byte_offset(row) == file.record_offset(indices[row]));
    CHECK(table.field(row, 0) == std::to_string(indices[row]));
    CHECK(table.field(row, 1) == "v\"" + std::to_string(indices[row]));
  }
  const auto* cells_before = table.cells().data();
  const std::vector<std::uint64_t> fewer{3, 1};
  REQUIRE(file.read(fewer, table) == 2);
  CHECK(table.cells().data() == cells_before);  // capacity sufficed: no reallocation
  CHECK(table.field(0, 1) == "v\"3");
  CHECK_THROWS_AS((void)table.field(2, 0), std::out_of_range);
}

TEST_CASE("delimited: shuffled batches of records longer than a page read right") {
  // read() touches each page of a batch's records before parsing them (up to
  // 16 KiB of each) and prefetches the lines of records that are not adjacent:
  // records of 1 byte to 40 KiB, the last one without a final newline, read in
  // a scattered order and with repeats, must come back exactly.
  scratch_dir dir;
  std::string bytes = "id\tpayload\tend\n";
  std::vector<std::string> payloads;
  for (int i = 0; i < 60; ++i) {
    const std::size_t length = i % 3 == 0 ? static_cast<std::size_t>(i) * 700 : 1 + i % 7;
    payloads.push_back(std::string(length, static_cast<char>('a' + i % 26)));
    bytes += std::to_string(i) + "\t" + payloads.back() + "\t" + std::to_string(i % 5);
    if (i + 1 < 60) bytes += i % 2 ? "\r\n" : "\n";
  }
  delimited_file file(dir.write("long.tsv", bytes), in_memory('\t'));
  REQUIRE(file.size() == 60);
  const std::vector<std::uint64_t> indices{59, 3, 57, 0, 30, 30, 12, 45, 1, 2, 58, 27};
  field_table table;
  REQUIRE(file.read(indices, table) == indices.size());
  for (std::size_t row = 0; row < indices.size(); ++row) {
    CAPTURE(indices[row]);
    CHECK(table.field(row, 0) == std::to_string(indices[row]));
    CHECK(table.field(row, 1) == payloads[indices[row]]);
    CHECK(table.field(row, 2) == std::to_string(indices[row] % 5));
  }
}

TEST_CASE("delimited: hand_over moves a table's rows out without copying") {
  scratch_dir dir;
  delimited_file file(dir.write("hand.tsv", "k\tv\n0\tzero\n1\t\"o\"\"ne\"\n2\ttwo\n"),
                      in_memory('\t'));
  field_table table;
  std::vector<std::string_view> cells;
  std::vector<std::uint64_t> records, offsets;
  const std::vector<std::uint64_t> first{2, 1};
  REQUIRE(file.read(first, table) == 2);
  const auto* table_cells = table.cells().data();
  table.hand_over(cells, records, offsets);
  CHECK(table.rows() == 0);
  REQUIRE(cells.size() >= 4);
  CHECK(cells.data() == table_cells);  // the same storage, not a copy
  CHECK(cells[0] == "2");
  CHECK(cells[1] == "two");
  CHECK(cells[3] == "o\"ne");  // unescaped into the table's arena, which the table keeps
  CHECK(records[0] == 2);
  CHECK(records[1] == 1);
  CHECK(offsets[0] == file.record_offset(2));
  CHECK(offsets[1] == file.record_offset(1));
  // Reading again fills the vectors the caller handed in last time, so a
  // caller that hands the same vectors back every time allocates nothing.
  const std::vector<std::uint64_t> second{0};
  REQUIRE(file.read(second, table) == 1);
  CHECK(table.field(0, 1) == "zero");
  std::vector<std::string_view> other_cells;
  std::vector<std::uint64_t> other_records, other_offsets;
  table.hand_over(other_cells, other_records, other_offsets);
  CHECK(other_cells[1] == "zero");
  CHECK(other_records[0] == 0);
  CHECK(cells[0] == "2");  // the first batch's views were not overwritten
}

TEST_CASE("delimited: the index sidecar is created, reused, and never trusted when wrong") {
  scratch_dir dir;
  const auto path = dir.write("data.tsv", "k\tv\n1\tone\n2\ttwo\n3\tthree\n");
  const fs::path sidecar = path.string() + ".cyidx";
  const rows_t expected{{"1", "one"}, {"2", "two"}, {"3", "three"}};
  {
    delimited_file file(path);
    CHECK(file.index_info().origin == index_origin::built_and_saved);
    CHECK(file.index_info().sidecar == sidecar);
    CHECK(fs::exists(sidecar));
    CHECK(fs::file_size(sidecar) == 64 + 3 * 8);
  }
  {
    delimited_file file(path);
    CHECK(file.index_info().origin == index_origin::loaded);
    CHECK(all_records(file) == expected);
  }
  SUBCASE("stale after the file changes") {
    dir.write("data.tsv", "k\tv\n1\tone\n2\ttwo\n3\tthree\n4\tfour\n");
    delimited_file file(path);
    CHECK(file.index_info().origin == index_origin::built_and_saved);
    CHECK(file.index_info().note.find("stale") != std::string::npos);
    CHECK(file.size() == 4);
    CHECK(delimited_file(path).index_info().origin == index_origin::loaded);
  }
  SUBCASE("stale after a same-size edit") {
    const auto before = fs::last_write_time(path);
    dir.write("data.tsv", "k\tv\n11\tone\n2\ttw\n3\tthree\n");  // record 1 moves by one byte
    fs::last_write_time(path, before);  // even with the old mtime, the content hash differs
    delimited_file file(path);
    CHECK(file.index_info().origin == index_origin::built_and_saved);
    CHECK(all_records(file) == rows_t{{"11", "one"}, {"2", "tw"}, {"3", "three"}});
    CHECK(file.record_offset(1) == 11);  // it was 10
  }
  SUBCASE("corrupt sidecar: flipped byte, truncation, garbage") {
    for (int variant = 0; variant < 3; ++variant) {
      {
        std::fstream io(sidecar, std::ios::binary | std::ios::in | std::ios::out);
        io.seekp(variant == 0 ? 64 + 8 : 0);
        io.put(variant == 0 ? '\x7f' : 'Z');
      }
      if (variant == 1) fs::resize_file(sidecar, 70);
      if (variant == 2) dir.write("data.tsv.cyidx", "not an index at all");
      delimited_file file(path);
      CHECK(file.index_info().origin == index_origin::built_and_saved);
      CHECK_FALSE(file.index_info().note.empty());
      CHECK(all_records(file) == expected);
    }
  }
  SUBCASE("a checksummed sidecar with out-of-range offsets is rejected") {
    conveyor::detail::delimited::mapped_text text(path);
    const auto identity =
        conveyor::detail::delimited::identify(text.data(), text.size(), text.mtime_ns());
    conveyor::detail::delimited::record_index forged{0, {4, 9999, 10000}};
    std::string reason;
    REQUIRE(conveyor::detail::delimited::save_sidecar(
        sidecar, identity, conveyor::detail::delimited::syntax_code('\t', true), forged, reason));
    delimited_file file(path);
    CHECK(file.index_info().origin == index_origin::built_and_saved);
    CHECK(file.index_info().note.find("out of") != std::string::npos);
    CHECK(all_records(file) == expected);
  }
  SUBCASE("other options do not reuse the sidecar") {
    delimited_file file(path, delimited_options::csv());
    CHECK(file.index_info().origin == index_origin::built_and_saved);
    CHECK(file.header().size() == 1);
  }
  SUBCASE("an unwritable location falls back to an in-memory index") {
    delimited_options options;
    options.index_directory = dir.path / "no" / "such" / "directory";
    delimited_file file(path, options);
    CHECK(file.index_info().origin == index_origin::built_in_memory);
    CHECK_FALSE(file.index_info().note.empty());
    CHECK(all_records(file) == expected);
    // A regular file where the sidecar should go: cannot be renamed over a directory either.
    fs::remove(sidecar);
    fs::create_directory(sidecar);
    delimited_file blocked(path);
    CHECK(blocked.index_info().origin == index_origin::built_in_memory);
    CHECK(all_records(blocked) == expected);
  }
  SUBCASE("a chosen index directory") {
    delimited_options options;
    options.index_directory = dir.path / "indexes";
    fs::create_directory(options.index_directory);
    CHECK(delimited_file(path, options).index_info().origin == index_origin::built_and_saved);
    delimited_file file(path, options);
    CHECK(file.index_info().origin == index_origin::loaded);
    CHECK(file.index_info().sidecar.parent_path() == options.index_directory);
    CHECK(file.index_info().sidecar.filename().string().rfind("data.tsv.", 0) == 0);
  }
}

TEST_CASE("delimited: the swar scanner agrees with the byte loop") {
  const std::string text = "0101010101\"01010101,0101010101\r01010101010101\n0101\t";
  for (std::size_t start = 0; start < text.size(); ++start) {
    const char* begin = text.data() + start;
    const char* end = text.data() + text.size();
    const char* expected = begin;
    while (expected < end && *expected != '\t' && *expected != '\r' && *expected != '\n')
      ++expected;
    CHECK(conveyor::detail::delimited::find_first_of3_swar(begin, end, '\t', '\r', '\n') ==
          expected);
    CHECK(conveyor::detail::delimited::find_first_of3(begin, end, '\t', '\r', '\n') == expected);
  }
}

TEST_CASE("delimited: the scanners agree with the byte loop on long runs") {
  // find_first_of3 hands runs of 128 bytes or more to an AVX2 loop (64 bytes
  // an iteration) where the CPU has it: a match at every position of a
  // 300-byte run, from every start, at every tail length.
  std::string text(300, '0');
  for (std::size_t match = 0; match <= text.size(); match += 7) {
    std::string run = text;
    if (match < run.size()) run[match] = "\t\r\n"[match % 3];
    for (std::size_t start = 0; start < 80; start += 3) {
      const char* begin = run.data() + start;
      const char* end = run.data() + run.size();
      const char* expected = begin;
      while (expected < end && *expected != '\t' && *expected != '\r' && *expected != '\n') ++expected;
      CAPTURE(match);
      CAPTURE(start);
      CHECK(conveyor::detail::delimited::find_first_of3(begin, end, '\t', '\r', '\n') == expected);
      CHECK(conveyor::detail::delimited::find_first_of3_swar(begin, end, '\t', '\r', '\n') == expected);
#if CONVEYOR_DELIMITED_HAS_AVX2
      if (conveyor::detail::delimited::delimited_cpu_has_avx2()) {
        const char* stop = conveyor::detail::delimited::find_first_of3_avx2(begin, end, '\t', '\r', '\n');
        CHECK((stop == expected || (stop < expected && end - stop < 64)));  // the match, or the tail before it
      }
#endif
    }
  }
}

TEST_CASE("delimited: the DEA reference files") {
  const fs::path data = CONVEYOR_SHARED_DATA_DIR;
  if (!fs::exists(data / "fakename_1k_bf_encoded.tsv")) {
    MESSAGE("shared data not found at " << data << "; skipping");
    return;
  }
  scratch_dir dir;
  delimited_options options;
  options.index_directory = dir.path;  // never write into the shared data directory
  delimited_file file(data / "fakename_1k_bf_encoded.tsv", options);
  CHECK(file.size() == 1000);
  CHECK(header_of(file) ==
        std::vector<std::string>{"GivenName", "Surname", "Birthday", "bloomfilter", "uid"});
  record_buffer buffer;
  const auto first = file.record(0, buffer);
  CHECK(first.field(0) == "Maria");
  CHECK(first.field(1) == "Taylor");
  CHECK(first.field(2) == "6/16/1937");
  const auto bits = file.column_index("bloomfilter");
  std::vector<std::uint64_t> batch;
  field_table table;
  for (std::uint64_t i = 0; i < file.size(); ++i) {
    batch.push_back(i);
    if (batch.size() < 256 && i + 1 < file.size()) continue;
    REQUIRE(file.read(batch, table) == batch.size());
    for (std::size_t row = 0; row < table.rows(); ++row)
      CHECK(table.field(row, bits).size() == 1024);
    batch.clear();
  }

  // Every file, every field, against a hash of Python csv.reader's rows
  // (fields joined by 0x1f, rows ended by 0x1e, FNV-1a 64).
  const std::vector<std::tuple<const char*, std::uint64_t, std::size_t, std::uint64_t>> files{
      {"fakename_1k.tsv", 1000, 4, 0x68c88c88ca73a902ULL},
      {"fakename_2k.tsv", 2000, 4, 0x2c0405cdac6481cULL},
      {"fakename_5k.tsv", 5000, 4, 0xc98391c918e9b10dULL},
      {"fakename_10k.tsv", 10000, 4, 0x60403f78ad126d15ULL},
      {"fakename_20k.tsv", 20000, 4, 0x8d55562c26d652dcULL},
      {"fakename_50k.tsv", 50000, 4, 0x7acda5c1db06ed82ULL},
      {"fakename_1k_bf_encoded.tsv", 1000, 5, 0xb709cb24fd7123c4ULL},
      {"fakename_1k_tmh_encoded.tsv", 1000, 5, 0x2723f682f80e46e6ULL},
      {"fakename_1k_tsh_encoded.tsv", 1000, 5, 0xdcc23488f6dcdafbULL},
  };
  for (const auto& [name, records, columns, expected_hash] : files) {
    CAPTURE(name);
    delimited_file each(data / name, options);
    REQUIRE(each.size() == records);
    REQUIRE(each.header().size() == columns);
    std::vector<std::uint64_t> indices(records);
    std::iota(indices.begin(), indices.end(), 0);
    REQUIRE(each.read(indices, table) == records);
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (std::size_t row = 0; row < table.rows(); ++row) {
      for (const auto field : table.row(row)) hash = fnv1a(fnv1a(hash, field), "\x1f");
      hash = fnv1a(hash, "\x1e");
    }
    CHECK(hash == expected_hash);
  }
}
