// conveyor/source/tsv.hpp: delimited text files as pipeline sources.
//
// `tsv_file(path)` and `csv_file(path)` open a delimited_file (memory-mapped,
// record index built once and reused, Python csv quoting) and read whole
// batches of records into a `text_records<"record">` column: per row, the
// fields as string_views into the mapping (zero-copy), plus each row's record
// index and byte offset for error messages. Decoders (decode.hpp) turn the
// column into numeric ones.
//
// Thread: read() is const and runs on any thread (parallel workers included).
// Allocates: one field_table per batch (views and arena; no per-record
// allocation). Errors: a malformed record (field count, unterminated quote)
// is a data_error naming file, record and byte offset; under on_error::skip it
// is dropped and counted. Opening a missing file throws io_error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/source/delimited.hpp"
#include "conveyor/source/field_table.hpp"

namespace conveyor {

/// The storage of a text_records column: one batch's records of one file.
class record_column {
 public:
  record_column() = default;
  record_column(field_table table, std::shared_ptr<const delimited_file> file)
      : table_(std::move(table)), file_(std::move(file)) {}

  [[nodiscard]] std::size_t rows() const noexcept { return table_.rows(); }
  /// Bytes of field text the column refers to (not copied: the views point into the file).
  [[nodiscard]] std::size_t size_bytes() const noexcept {
    std::size_t total = 0;
    for (auto cell : table_.cells()) total += cell.size();
    return total;
  }
  [[nodiscard]] std::string_view field(std::size_t row, std::size_t column) const { return table_.field(row, column); }
  [[nodiscard]] std::span<const std::string_view> row(std::size_t r) const { return table_.row(r); }
  [[nodiscard]] std::size_t columns() const noexcept { return table_.columns(); }
  [[nodiscard]] const delimited_file& file() const noexcept { return *file_; }
  [[nodiscard]] std::uint64_t record_index(std::size_t row) const { return table_.record_index(row); }
  [[nodiscard]] std::uint64_t byte_offset(std::size_t row) const { return table_.byte_offset(row); }

  /// The byte offset in the file where `value` (a field of this column) starts:
  /// exact for zero-copy fields, the record's offset for unescaped ones.
  [[nodiscard]] std::uint64_t offset_of(std::size_t row, std::string_view value) const {
    auto whole = file_->contents();
    if (!whole.empty() && value.data() >= whole.data() && value.data() <= whole.data() + whole.size())
      return static_cast<std::uint64_t>(value.data() - whole.data());
    return table_.byte_offset(row);
  }
  /// Where a field of this column lives, for error messages.
  [[nodiscard]] error_location location(std::size_t row, std::string_view value) const {
    return {file_->path(), table_.record_index(row), offset_of(row, value)};
  }

 private:
  field_table table_;
  std::shared_ptr<const delimited_file> file_;
};

/// Column spec: text records of a delimited file, named `Name`.
template <fixed_string Name>
struct text_records {
  static constexpr auto name = Name;
  using storage = record_column;
};

/// A delimited file as a record_source. Copies share the open file.
class delimited_source {
 public:
  using batch_type = record_batch<text_records<"record">>;

  explicit delimited_source(std::shared_ptr<const delimited_file> file)
      : file_(std::move(file)), name_(std::filesystem::path(file_->path()).filename().string()) {
    fingerprint_ = compute_fingerprint();
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return file_->size(); }
  /// The file's name (without directories): the stage's label in stats.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] const delimited_file& file() const noexcept { return *file_; }
  /// Path, size, modification time and sampled content: a changed file gets a new one.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return fingerprint_; }

  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    field_table table;
    file_->read(indices, table, ctx.policy);
    for (const auto& bad : table.skipped()) ctx.reject(bad);  // counts them (the policy is skip here)
    std::vector<std::uint64_t> kept;
    std::span<const std::uint64_t> rows = indices;
    if (table.rows() != indices.size()) {
      kept.reserve(table.rows());
      for (std::size_t r = 0; r < table.rows(); ++r) kept.push_back(table.record_index(r));
      rows = kept;
    }
    batch_type out(ctx.pool, ctx.info, rows);
    out.get<"record">() = record_column(std::move(table), file_);
    return out;
  }

 private:
  [[nodiscard]] std::uint64_t compute_fingerprint() const {
    std::uint64_t h = 0xcbf29ce484222325ull;
    auto add = [&h](std::string_view bytes) {
      for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    };
    add(file_->path());
    auto whole = file_->contents();
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(file_->path(), ec);
    h = detail::mix64(h ^ whole.size() ^ (ec ? 0 : static_cast<std::uint64_t>(mtime.time_since_epoch().count())));
    constexpr std::size_t sample = 4096;
    add(whole.substr(0, sample));
    if (whole.size() > sample) add(whole.substr(whole.size() - sample));
    for (std::size_t k = 1; k < 16 && whole.size() > 2 * sample; ++k) add(whole.substr(whole.size() / 16 * k, 256));
    return detail::mix64(h);
  }

  std::shared_ptr<const delimited_file> file_;
  std::string name_;
  std::uint64_t fingerprint_ = 0;
};

/// tsv_file(path, options): a tab-separated file as a pipeline source.
inline delimited_source tsv_file(const std::filesystem::path& path, delimited_options options = delimited_options::tsv()) {
  return delimited_source(std::make_shared<const delimited_file>(path, std::move(options)));
}
/// csv_file(path, options): a comma-separated file as a pipeline source.
inline delimited_source csv_file(const std::filesystem::path& path, delimited_options options = delimited_options::csv()) {
  return delimited_source(std::make_shared<const delimited_file>(path, std::move(options)));
}

}  // namespace conveyor
