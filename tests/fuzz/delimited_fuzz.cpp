// Fuzz target for conveyor/source/delimited.hpp.
//
// Input: byte 0 picks the options (delimiter, blank-line handling, index
// persistence), the rest is the file. With persistence the file is opened
// twice (the second time from the index sidecar the first wrote). Every record, single and batched,
// is compared with a straightforward reference parser: a character-at-a-time transcription of
// Python's csv.reader state machine over lines, written independently of the
// library's field-at-a-time scanner.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/source/delimited.hpp"
#include "support/temp_dir.hpp"

namespace {

struct reference_row {
  std::vector<std::string> fields;
  bool unterminated = false;  // Python (strict=False) yields it; conveyor reports it
};

// Python's _csv.c reader states, default dialect.
enum class state {
  start_record,
  start_field,
  in_field,
  in_quoted_field,
  quote_in_quoted_field,
  eat_crnl
};

std::vector<reference_row> reference_parse(std::string_view text, char delimiter) {
  // Split into lines the way a file opened with newline='' does: each line
  // keeps its terminator, which is \n, \r\n or a lone \r.
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      lines.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  if (start < text.size()) lines.push_back(text.substr(start));

  std::vector<reference_row> rows;
  reference_row row;
  std::string field;
  state current = state::start_record;
  auto save_field = [&] {
    row.fields.push_back(field);
    field.clear();
  };
  constexpr int end_of_line = -1;
  auto process = [&](int c) {
    switch (current) {
      case state::start_record:
        if (c == end_of_line) return;  // an empty line: the row stays []
        if (c == '\n' || c == '\r') {
          current = state::eat_crnl;
          return;
        }
        current = state::start_field;
        [[fallthrough]];
      case state::start_field:
        if (c == '\n' || c == '\r' || c == end_of_line) {
          save_field();
          current = c == end_of_line ? state::start_record : state::eat_crnl;
        } else if (c == '"') {
          current = state::in_quoted_field;
        } else if (c == delimiter) {
          save_field();
        } else {
          field += static_cast<char>(c);
          current = state::in_field;
        }
        return;
      case state::in_field:
        if (c == '\n' || c == '\r' || c == end_of_line) {
          save_field();
          current = c == end_of_line ? state::start_record : state::eat_crnl;
        } else if (c == delimiter) {
          save_field();
          current = state::start_field;
        } else {
          field += static_cast<char>(c);
        }
        return;
      case state::in_quoted_field:
        if (c == end_of_line) return;
        if (c == '"')
          current = state::quote_in_quoted_field;
        else
          field += static_cast<char>(c);
        return;
      case state::quote_in_quoted_field:
        if (c == '"') {
          field += '"';
          current = state::in_quoted_field;
        } else if (c == delimiter) {
          save_field();
          current = state::start_field;
        } else if (c == '\n' || c == '\r' || c == end_of_line) {
          save_field();
          current = c == end_of_line ? state::start_record : state::eat_crnl;
        } else {
          field += static_cast<char>(c);
          current = state::in_field;
        }
        return;
      case state::eat_crnl:
        if (c == end_of_line) current = state::start_record;
        return;  // only the rest of the line terminator can get here
    }
  };
  for (const auto line : lines) {
    for (const char c : line) process(static_cast<unsigned char>(c));
    process(end_of_line);
    if (current == state::start_record) {
      rows.push_back(std::move(row));
      row = {};
    }
  }
  if (current == state::in_quoted_field || !field.empty()) {
    save_field();
    row.unterminated = current == state::in_quoted_field;
    rows.push_back(std::move(row));
  }
  return rows;
}

// One directory for the whole run, removed at exit (libFuzzer ends with exit()).
const std::filesystem::path& scratch() {
  static const conveyor::test::temp_dir dir("delimited-fuzz");
  return dir.path();
}

void require(bool condition) {
  if (!condition) std::abort();
}

void check_against_reference(const conveyor::delimited_file& file,
                             const std::vector<reference_row>& expected_rows,
                             const std::vector<std::string>& header) {
  require(file.size() == expected_rows.size());
  require(std::vector<std::string>(file.header().begin(), file.header().end()) == header);
  conveyor::record_buffer buffer;
  std::vector<std::uint64_t> good;
  for (std::uint64_t i = 0; i < file.size(); ++i) {
    const auto& expected = expected_rows[i];
    const bool bad = expected.unterminated || expected.fields.size() != header.size();
    try {
      const auto record = file.record(i, buffer);
      require(!bad);
      require(record.field_count() == expected.fields.size());
      for (std::size_t j = 0; j < record.field_count(); ++j)
        require(record.field(j) == expected.fields[j]);
    } catch (const conveyor::data_error& error) {
      require(bad);
      require(error.where().record == i);
      require(error.where().offset < file.file_size());
      continue;
    }
    good.push_back(i);
  }
  // Batched, in reverse order, skipping bad rows.
  std::vector<std::uint64_t> reversed;
  for (std::uint64_t i = file.size(); i-- > 0;) reversed.push_back(i);
  conveyor::field_table table;
  const std::size_t rows = file.read(reversed, table, conveyor::on_error::skip);
  require(rows == good.size());
  require(table.skipped().size() == file.size() - good.size());
  for (std::size_t row = 0; row < rows; ++row) {
    const auto record = good[good.size() - 1 - row];
    require(table.record_index(row) == record);
    for (std::size_t j = 0; j < header.size(); ++j)
      require(table.field(row, j) == expected_rows[record].fields[j]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr char delimiters[] = {'\t', ',', ';', ' ', 'a', '\0', '\'', '\\'};
  conveyor::delimited_options options;
  options.delimiter = delimiters[data[0] & 7];
  options.skip_blank_lines = (data[0] & 8) == 0;
  // Sidecar I/O is slow next to parsing; exercise it on half of the inputs.
  options.persist_index = (data[0] & 16) != 0;
  options.index_directory = scratch();
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto path = scratch() / "input.txt";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }

  const bool has_bom = text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF";
  auto rows = reference_parse(has_bom ? text.substr(3) : text, options.delimiter);
  std::size_t first = 0;
  while (first < rows.size() && rows[first].fields.empty()) ++first;  // leading blank lines
  std::vector<std::string> header;
  bool header_unterminated = false;
  const bool has_header_line = first < rows.size();  // opening refuses a file without one
  if (has_header_line) {
    header = rows[first].fields;
    header_unterminated = rows[first].unterminated;
    ++first;
  }
  std::vector<reference_row> records;
  for (std::size_t i = first; i < rows.size(); ++i)
    if (!(options.skip_blank_lines && rows[i].fields.empty() && !rows[i].unterminated))
      records.push_back(rows[i]);

  for (int pass = 0; pass < (options.persist_index ? 2 : 1); ++pass) {
    try {
      conveyor::delimited_file file(path, options);
      require(has_header_line && !header_unterminated);
      // The first pass may load a sidecar left by an identical earlier input.
      require(pass == 0 || file.index_info().origin == conveyor::index_origin::loaded);
      check_against_reference(file, records, header);
    } catch (const conveyor::data_error&) {
      require(header_unterminated || !has_header_line);
    }
  }
  return 0;
}
