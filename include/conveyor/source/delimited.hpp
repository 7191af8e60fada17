// conveyor/source/delimited.hpp: TSV/CSV files, memory-mapped, with random
// access to records through a persisted record-offset index.
//
//   conveyor::delimited_file file("train.tsv");              // or (path, delimited_options::csv())
//   auto uid = file.column_index("uid");
//   conveyor::field_table table;
//   std::vector<std::uint64_t> rows{7, 3, 42};
//   file.read(rows, table);                                  // rows 7, 3, 42 in that order
//   std::string_view value = table.field(0, uid);
//
// Parsing is Python's csv.reader with the default dialect; see
// docs/source-delimited.md for the exact rules and the decisions made where
// Python and this library differ (blank lines, an unterminated quote).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/delimited_index.hpp"
#include "conveyor/source/detail/delimited_mapping.hpp"
#include "conveyor/source/detail/delimited_scan.hpp"
#include "conveyor/source/field_table.hpp"

namespace conveyor {

/// How to read a delimited file. Defaults read a TSV.
struct delimited_options {
  /// Field separator; any byte except a double quote, `\r` and `\n`.
  char delimiter = '\t';
  /// Blank lines (Python's csv.reader yields [] for them) are not records when
  /// true, as in csv.DictReader and pandas. When false each blank line after the
  /// header is a zero-field record, which fails the field-count check.
  bool skip_blank_lines = true;
  /// Persist the record index to a sidecar and reuse it when it is valid.
  bool persist_index = true;
  /// Where the sidecar goes: empty means "<file>.cyidx" beside the file,
  /// otherwise "<index_directory>/<file name>.<path hash>.cyidx".
  std::filesystem::path index_directory{};
  /// madvise(WILLNEED) the byte ranges a batch will touch before parsing it.
  /// Off by default: on the reference machine it made shuffled batches of
  /// 1 KiB records slower both with a warm and a cold page cache (one syscall
  /// per record; the kernel's own fault read-around already fetches ahead).
  /// It may pay on storage with high latency and little read-ahead.
  bool advise_willneed = false;

  /// Tab-separated values.
  static delimited_options tsv() { return {}; }
  /// Comma-separated values.
  static delimited_options csv() {
    delimited_options options;
    options.delimiter = ',';
    return options;
  }
};

/// Where the record index of an open file came from.
enum class index_origin : std::uint8_t {
  loaded,           ///< a valid sidecar was read; the file was not scanned
  built_and_saved,  ///< the file was scanned and the sidecar (re)written
  built_in_memory,  ///< the file was scanned; the sidecar was off or could not be written
};

/// What happened to the index when the file was opened.
struct index_status {
  index_origin origin = index_origin::built_in_memory;
  std::filesystem::path sidecar;  ///< the sidecar path considered (empty if persistence is off)
  std::string note;               ///< why a sidecar was rejected or not written; empty if none
};

/// A delimited text file (TSV, CSV) mapped read-only, with its header row and
/// an index of record offsets for random and batched access.
///
/// Opening maps the file (never reads it whole), loads or builds the index
/// (8 bytes per record, held in memory) and parses the header.
/// Thread-safety: after construction every member function is const and may
/// be called from many threads at once, each with its own output object.
/// Errors: io_error if the file cannot be opened or mapped; data_error with
/// file, record and byte offset for malformed records (when they are read), and
/// when opening for a file with no header line (empty, or only blank lines)
/// and for an unterminated quote in the header. The file must not be
/// truncated or rewritten in place while open (the mapping would see it).
class delimited_file {
 public:
  /// Opens `path`. Throws io_error (cannot open/map), data_error (no header
  /// line: "<path>: has no header line (...)"; a bad header),
  /// std::invalid_argument (a delimiter that is a double quote, `\r` or `\n`).
  explicit delimited_file(const std::filesystem::path& path, delimited_options options = {})
      : options_(std::move(options)), file_(check_options(path, options_)) {
    const auto identity = detail::delimited::identify(file_.data(), file_.size(), file_.mtime_ns());
    const auto syntax =
        detail::delimited::syntax_code(options_.delimiter, options_.skip_blank_lines);
    bool loaded = false;
    if (options_.persist_index) {
      status_.sidecar =
          options_.index_directory.empty()
              ? std::filesystem::path(path.string() + ".cyidx")
              : detail::delimited::sidecar_in_directory(path, options_.index_directory);
      loaded =
          detail::delimited::load_sidecar(status_.sidecar, identity, syntax, index_, status_.note);
    }
    if (loaded) {
      require_header_line();
      status_.origin = index_origin::loaded;
    } else {
      file_.advise_sequential();
      index_ = detail::delimited::build_record_index(file_.data(), file_.size(), options_.delimiter,
                                                     options_.skip_blank_lines);
      file_.advise_normal();
      require_header_line();  // before a sidecar is written for a file that is refused
      status_.origin = index_origin::built_in_memory;
      std::string save_failure;
      if (options_.persist_index) {
        if (detail::delimited::save_sidecar(status_.sidecar, identity, syntax, index_,
                                            save_failure))
          status_.origin = index_origin::built_and_saved;
        status_.note += (status_.note.empty() || save_failure.empty() ? "" : "; ") + save_failure;
      }
    }
    read_header();
  }

  /// The file's path as given.
  [[nodiscard]] const std::string& path() const noexcept { return file_.name(); }
  /// The options it was opened with.
  [[nodiscard]] const delimited_options& options() const noexcept { return options_; }
  /// Where the index came from (loaded, built and saved, built in memory).
  [[nodiscard]] const index_status& index_info() const noexcept { return status_; }
  /// Size of the file in bytes.
  [[nodiscard]] std::uint64_t file_size() const noexcept { return file_.size(); }
  /// The mapped bytes of the whole file (valid while this object lives). Lets
  /// a decoder turn a zero-copy field view into its byte offset in the file.
  [[nodiscard]] std::string_view contents() const noexcept { return {file_.data(), file_.size()}; }

  /// Number of data records (the header row is not one). 0 for a header-only
  /// file.
  [[nodiscard]] std::uint64_t size() const noexcept { return index_.offsets.size(); }

  /// The column names from the header row (unescaped); never empty.
  [[nodiscard]] std::span<const std::string> header() const noexcept { return header_; }

  /// The index of the first column called `name`, or nullopt.
  [[nodiscard]] std::optional<std::size_t> find_column(std::string_view name) const noexcept {
    for (std::size_t column = 0; column < header_.size(); ++column)
      if (header_[column] == name) return column;
    return std::nullopt;
  }

  /// The index of the first column called `name`. Throws data_error naming the
  /// file and the missing name if there is none.
  [[nodiscard]] std::size_t column_index(std::string_view name) const {
    if (auto column = find_column(name)) return *column;
    std::string columns;
    for (const auto& each : header_) columns += (columns.empty() ? "" : ", ") + each;
    throw data_error(
        "no column named '" + std::string(name) + "' in the header (columns: " + columns + ")",
        path(), unknown_position, index_.header_offset);
  }

  /// Byte offset where record i starts. Throws data_error if i >= size().
  [[nodiscard]] std::uint64_t record_offset(std::uint64_t i) const {
    check_index(i);
    return index_.offsets[i];
  }

  /// Parses record i into `buffer` and returns a view of it. Zero-copy for
  /// fields that need no unescaping; others go to the buffer's arena.
  /// Allocates only while the buffer grows. Throws data_error (file, record,
  /// byte offset) if i >= size(), the record's field count differs from the
  /// header's, or a quote never closes.
  record_view record(std::uint64_t i, record_buffer& buffer) const {
    check_index(i);
    buffer.fields_.resize(header_.size());
    buffer.arena_.clear();
    parse_failure failure;
    if (!parse_record(i, buffer.fields_.data(), buffer.arena_, failure))
      throw data_error(std::move(failure.message), path(), i, failure.offset);
    return {buffer.fields_, i, index_.offsets[i]};
  }

  /// Reads the records `indices` (any order, repeats allowed) into `out`, row
  /// k holding indices[k]. The file is touched in ascending offset order: one
  /// byte of each page of every record (and a prefetch of the lines of records
  /// that are not adjacent) before any is parsed, with madvise(WILLNEED) on
  /// coalesced byte ranges before that if `advise_willneed`.
  ///
  /// Errors: every index is checked first; one >= size() throws data_error
  /// (under any policy, as it is a caller bug) and leaves `out` empty. A
  /// malformed record throws data_error under `on_error::fail` (and `retry`,
  /// which is for I/O) with `out` unspecified; under `on_error::skip` its row
  /// is dropped and the error is kept in `out.skipped()`.
  /// Returns the number of rows in `out`. Allocation: see field_table.
  std::size_t read(std::span<const std::uint64_t> indices, field_table& out,
                   error_policy policy = on_error::fail) const {
    out.prepare(0, header_.size());
    for (const std::uint64_t i : indices) check_index(i);
    out.prepare(indices.size(), header_.size());
    auto& order = out.order_;
    order.clear();
    for (std::size_t row = 0; row < indices.size(); ++row) order.emplace_back(indices[row], row);
    std::sort(order.begin(), order.end());
    if (options_.advise_willneed) advise_ranges(order);

    out.bad_.assign(indices.size(), 0);
    bool any_bad = false;
    parse_failure failure;
    // Records of a shuffled batch lie far apart in the file: the first touch
    // of each misses the caches and the TLB, and parsing them one after the
    // other pays those misses one at a time. Loading one byte of each page of
    // every record first (independent loads, which the CPU overlaps) halves
    // the cost of a shuffled batch (docs/performance.md).
    const std::size_t count = order.size();
    touch_records(order);
    for (std::size_t k = 0; k < count; ++k) {
      const auto [record, row] = order[k];
      out.record_indices_[row] = record;
      out.byte_offsets_[row] = index_.offsets[record];
      if (parse_record(record, out.cells_.data() + row * out.columns_, out.arena_, failure))
        continue;
      if (policy.action != error_policy::kind::skip)
        throw data_error(std::move(failure.message), path(), record, failure.offset);
      out.skipped_.emplace_back(std::move(failure.message), path(), record, failure.offset);
      out.bad_[row] = 1;
      any_bad = true;
    }
    if (any_bad) out.remove_rows(out.bad_);
    return out.rows_;
  }

 private:
  struct parse_failure {
    std::string message;
    std::uint64_t offset = unknown_position;
  };

  static const std::filesystem::path& check_options(const std::filesystem::path& path,
                                                    const delimited_options& options) {
    const char d = options.delimiter;
    if (d == detail::delimited::quote_char || d == '\r' || d == '\n')
      throw std::invalid_argument("delimited_file: the delimiter cannot be '\"', '\\r' or '\\n'");
    return path;
  }

  // touch_records touches and prefetches at most this many bytes of a record
  // (a longer record is first touched by the parser anyway).
  static constexpr std::uint64_t touch_bytes = 16 * 1024;

  [[nodiscard]] std::uint64_t record_end(std::uint64_t i) const noexcept {
    return i + 1 < index_.offsets.size() ? index_.offsets[i + 1] : file_.size();
  }

  // Loads one byte of each page that the first touch_bytes of each record lie
  // on, and prefetches the record's other cache lines when it does not follow
  // the previous record in the file (adjacent records stream in through the
  // hardware prefetcher; prefetching them too was measured slower). Real loads
  // for the pages, not prefetches: alone, software prefetches of the lines
  // (all first, or a few records ahead) gained little or lost; a load that
  // misses the TLB walks the page table, after which the prefetches work.
  void touch_records(
      const std::vector<std::pair<std::uint64_t, std::size_t>>& sorted) const noexcept {
    constexpr std::uint64_t page = detail::delimited::page_bytes;
    constexpr std::uint64_t line = detail::delimited::cache_line_bytes;
    unsigned sum = 0;
    std::uint64_t previous_end = unknown_position;
    for (const auto& entry : sorted) {
      const std::uint64_t begin = index_.offsets[entry.first];
      const std::uint64_t record_stop = record_end(entry.first);
      const std::uint64_t end = std::min(record_stop, begin + touch_bytes);
      sum += file_.byte_at(begin);
      for (std::uint64_t at = (begin | (page - 1)) + 1; at < end; at += page)
        sum += file_.byte_at(at);
      if (begin != previous_end)
        for (std::uint64_t at = (begin | (line - 1)) + 1; at < end; at += line) file_.prefetch(at);
      previous_end = record_stop;
    }
    const volatile unsigned keep = sum;  // the loads must happen
    (void)keep;
  }

  void check_index(std::uint64_t i) const {
    if (i >= index_.offsets.size())
      throw data_error("record index " + std::to_string(i) + " is out of range: the file has " +
                           std::to_string(index_.offsets.size()) + " records",
                       path(), i, file_.size());
  }

  static std::string_view field_value(const detail::delimited::field_extent& field,
                                      detail::delimited::byte_arena& arena) {
    if (!field.needs_unescape)
      return {field.value_begin, static_cast<std::size_t>(field.value_end - field.value_begin)};
    char* bytes = arena.allocate(static_cast<std::size_t>(field.raw_end - field.raw_begin));
    const std::size_t length = detail::delimited::unescape_field(field, bytes);
    arena.shrink_last(bytes, length);
    return {bytes, length};
  }

  // Parses record i into cells[0 .. columns); false (with the reason) for a
  // malformed record. Cells of a malformed record are left unspecified.
  bool parse_record(std::uint64_t i, std::string_view* cells, detail::delimited::byte_arena& arena,
                    parse_failure& failure) const {
    const std::size_t columns = header_.size();
    const std::uint64_t offset = index_.offsets[i];
    const char* begin = file_.data() + offset;
    const char* end = file_.data() + file_.size();
    std::size_t field_count = 0;
    if (!detail::delimited::is_blank_line(begin, end)) {
      const auto scan = detail::delimited::scan_record(
          begin, end, options_.delimiter,
          [&](const detail::delimited::field_extent& field, std::size_t j) {
            if (j < columns) cells[j] = field_value(field, arena);
          });
      if (scan.unterminated_quote != nullptr) {
        failure.offset = static_cast<std::uint64_t>(scan.unterminated_quote - file_.data());
        failure.message = "unterminated quoted field: the quote at byte offset " +
                          std::to_string(failure.offset) +
                          " never closes before the end of the file";
        return false;
      }
      field_count = scan.field_count;
    }
    if (field_count == columns) return true;
    failure.offset = offset;
    failure.message = "record has " + std::to_string(field_count) + " fields, the header has " +
                      std::to_string(columns) + (field_count == 0 ? " (a blank line)" : "");
    return false;
  }

  void advise_ranges(const std::vector<std::pair<std::uint64_t, std::size_t>>& sorted) const {
    // Records closer than this are advised as one range: one call instead of
    // many, at the price of a little read-ahead between them.
    constexpr std::uint64_t coalesce_gap = 64 * 1024;
    std::uint64_t range_begin = 0, range_end = 0;
    bool open = false;
    for (const auto& entry : sorted) {
      const std::uint64_t record = entry.first;
      const std::uint64_t begin = index_.offsets[record];
      const std::uint64_t end =
          record + 1 < index_.offsets.size() ? index_.offsets[record + 1] : file_.size();
      if (open && begin <= range_end + coalesce_gap) {
        range_end = std::max(range_end, end);
        continue;
      }
      if (open) file_.will_need(range_begin, range_end);
      range_begin = begin;
      range_end = end;
      open = true;
    }
    if (open) file_.will_need(range_begin, range_end);
  }

  // Every delimited file starts with a header row naming its columns: a file
  // with no non-blank line is refused rather than read as zero records, which
  // would hide a truncated or wrongly named input until much later.
  void require_header_line() const {
    if (index_.header_offset != unknown_position) return;
    throw data_error("has no header line (" +
                         (file_.size() == 0 ? std::string("the file is empty")
                                            : "its " + std::to_string(file_.size()) +
                                                  " bytes hold only blank lines") +
                         "); a delimited file must start with a header row naming its columns",
                     path());
  }

  void read_header() {
    const char* begin = file_.data() + index_.header_offset;
    const char* end = file_.data() + file_.size();
    detail::delimited::byte_arena arena;
    const auto scan = detail::delimited::scan_record(
        begin, end, options_.delimiter,
        [&](const detail::delimited::field_extent& field, std::size_t) {
          header_.emplace_back(field_value(field, arena));
        });
    if (scan.unterminated_quote != nullptr) {
      const auto at = static_cast<std::uint64_t>(scan.unterminated_quote - file_.data());
      throw data_error("header row: unterminated quoted field: the quote at byte offset " +
                           std::to_string(at) + " never closes before the end of the file",
                       path(), unknown_position, at);
    }
  }

  delimited_options options_;
  detail::delimited::mapped_text file_;
  detail::delimited::record_index index_;
  index_status status_;
  std::vector<std::string> header_;
};

}  // namespace conveyor
