// conveyor/source/field_table.hpp: caller-owned outputs of text sources.
//
// A text source hands out fields as std::string_view. Most views point straight
// into the source's mapped file; a field that has to be rewritten (a quoted
// field with "" inside, for example) lives in an arena owned by the output
// object. So every view stays valid until the output object is reused or
// destroyed, or the source is destroyed, whichever comes first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/delimited_mapping.hpp"

namespace conveyor {

class delimited_file;

/// One record's fields, as returned by `delimited_file::record`.
///
/// A cheap view (a span, two integers) into a `record_buffer`; valid until that
/// buffer is used again or destroyed. Thread-safety: like a const std::span.
class record_view {
 public:
  record_view() = default;
  record_view(std::span<const std::string_view> fields, std::uint64_t record_index,
              std::uint64_t byte_offset) noexcept
      : fields_(fields), record_index_(record_index), byte_offset_(byte_offset) {}

  /// Number of fields (equal to the header's column count for a valid record).
  [[nodiscard]] std::size_t field_count() const noexcept { return fields_.size(); }
  /// Field j's value with quotes removed and "" turned into ".
  /// Throws std::out_of_range if j >= field_count().
  [[nodiscard]] std::string_view field(std::size_t j) const {
    if (j >= fields_.size())
      throw std::out_of_range("field " + std::to_string(j) + " of a record with " +
                              std::to_string(fields_.size()) + " fields");
    return fields_[j];
  }
  [[nodiscard]] std::span<const std::string_view> fields() const noexcept { return fields_; }
  /// The record's index among the data rows (the header is not counted).
  [[nodiscard]] std::uint64_t record_index() const noexcept { return record_index_; }
  /// Byte offset of the record's first byte in the file.
  [[nodiscard]] std::uint64_t byte_offset() const noexcept { return byte_offset_; }

 private:
  std::span<const std::string_view> fields_;
  std::uint64_t record_index_ = unknown_position;
  std::uint64_t byte_offset_ = unknown_position;
};

/// Caller-owned storage for one record read with `delimited_file::record`:
/// the field views and the arena for unescaped fields. Reusing one buffer for
/// record after record stops allocating once it has grown to the largest record.
/// Not thread-safe: give each thread its own.
class record_buffer {
 public:
  record_buffer() = default;
  record_buffer(const record_buffer&) = delete;  // views would point into the original
  record_buffer& operator=(const record_buffer&) = delete;
  record_buffer(record_buffer&&) noexcept = default;
  record_buffer& operator=(record_buffer&&) noexcept = default;

 private:
  friend class delimited_file;
  std::vector<std::string_view> fields_;
  detail::delimited::byte_arena arena_;
};

/// A caller-owned batch of records: rows x columns of string_view, plus each
/// row's record index and byte offset, filled by `delimited_file::read`.
///
/// Allocation: reading into a table whose capacity suffices (same or fewer rows
/// and columns than before, unescaped fields fitting the arena) allocates
/// nothing, except for the error list under the skip policy.
/// Thread-safety: none; one table per thread. Views stay valid until the next
/// `read` into this table, or its destruction, or the file's destruction.
class field_table {
 public:
  field_table() = default;
  field_table(const field_table&) = delete;  // views would point into the original's arena
  field_table& operator=(const field_table&) = delete;
  field_table(field_table&&) noexcept = default;
  field_table& operator=(field_table&&) noexcept = default;

  /// Rows held, in the order of the indices passed to `read` (less skipped ones).
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  /// Fields per row: the header's column count.
  [[nodiscard]] std::size_t columns() const noexcept { return columns_; }

  /// The value of (row, column). Throws std::out_of_range outside the table.
  [[nodiscard]] std::string_view field(std::size_t row, std::size_t column) const {
    check_row(row);
    if (column >= columns_)
      throw std::out_of_range("column " + std::to_string(column) + " of a table with " +
                              std::to_string(columns_) + " columns");
    return cells_[row * columns_ + column];
  }
  /// All fields of one row. Throws std::out_of_range if row >= rows().
  [[nodiscard]] std::span<const std::string_view> row(std::size_t row) const {
    check_row(row);
    return {cells_.data() + row * columns_, columns_};
  }
  /// Every cell, row-major (rows() * columns() views).
  [[nodiscard]] std::span<const std::string_view> cells() const noexcept {
    return {cells_.data(), rows_ * columns_};
  }
  [[nodiscard]] std::uint64_t record_index(std::size_t row) const {
    check_row(row);
    return record_indices_[row];
  }
  [[nodiscard]] std::uint64_t byte_offset(std::size_t row) const {
    check_row(row);
    return byte_offsets_[row];
  }
  /// Moves the views, record indices and byte offsets of the last `read` out
  /// to the caller's vectors, without copying: each is swapped with the
  /// caller's, whose capacity the table reuses for the next read (so a caller
  /// that hands the same vectors back every time allocates nothing). Row r's
  /// views are then cells[r * columns() .. (r + 1) * columns()) (`cells` may
  /// be longer than rows() * columns()); they stay valid while this table
  /// (its arena holds unescaped fields) and the file live, until the next
  /// `read` into this table. The table holds no rows afterwards.
  void hand_over(std::vector<std::string_view>& cells, std::vector<std::uint64_t>& record_indices,
                 std::vector<std::uint64_t>& byte_offsets) noexcept {
    cells.swap(cells_);
    record_indices.swap(record_indices_);
    byte_offsets.swap(byte_offsets_);
    rows_ = 0;
  }
  /// The records dropped by the last `read` under `on_error::skip`, each with
  /// file, record index and byte offset; empty under `on_error::fail`.
  [[nodiscard]] std::span<const data_error> skipped() const noexcept { return skipped_; }

 private:
  friend class delimited_file;

  void check_row(std::size_t row) const {
    if (row >= rows_)
      throw std::out_of_range("row " + std::to_string(row) + " of a table with " +
                              std::to_string(rows_) + " rows");
  }

  // Sizes the table for `rows` x `columns`, keeping capacity.
  void prepare(std::size_t rows, std::size_t columns) {
    rows_ = rows;
    columns_ = columns;
    cells_.resize(rows * columns);
    record_indices_.resize(rows);
    byte_offsets_.resize(rows);
    arena_.clear();
    skipped_.clear();
  }

  // Drops the rows flagged in `bad`, keeping the order of the others.
  void remove_rows(const std::vector<unsigned char>& bad) {
    std::size_t kept = 0;
    for (std::size_t row = 0; row < rows_; ++row) {
      if (bad[row]) continue;
      if (kept != row) {
        for (std::size_t column = 0; column < columns_; ++column)
          cells_[kept * columns_ + column] = cells_[row * columns_ + column];
        record_indices_[kept] = record_indices_[row];
        byte_offsets_[kept] = byte_offsets_[row];
      }
      ++kept;
    }
    rows_ = kept;
  }

  std::size_t rows_ = 0;
  std::size_t columns_ = 0;
  std::vector<std::string_view> cells_;
  std::vector<std::uint64_t> record_indices_;
  std::vector<std::uint64_t> byte_offsets_;
  detail::delimited::byte_arena arena_;
  std::vector<data_error> skipped_;
  // Scratch reused across reads: (record index, row) sorted by record index,
  // and which rows failed.
  std::vector<std::pair<std::uint64_t, std::size_t>> order_;
  std::vector<unsigned char> bad_;
};

}  // namespace conveyor
