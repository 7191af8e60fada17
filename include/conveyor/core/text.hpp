// conveyor/core/text.hpp: text records as a column kind of their own.
//
// `text<"record">` holds, per row, the fields of one text record as
// string_views, plus the record's index and byte offset in its origin. The
// views point into memory the producing source keeps alive (a mapped file,
// an arena) through the column's owner, so nothing is copied. Every field can
// name where it came from (file, record, byte offset): decoders report errors
// through the column and know nothing of the file format.
//
// The column's schema (origin and field names) is known before the first
// batch, so a decoder binds field names once per epoch; see text_schema.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/fixed_string.hpp"

namespace conveyor {

/// What a text column's rows look like: where they come from and their field
/// names. Shared by every batch of one source.
struct text_schema {
  std::string origin;               ///< the file (or the source's name) in error messages
  std::vector<std::string> fields;  ///< field names, in record order
  /// The bytes the fields view into, when they are one range (a mapped file):
  /// lets a field's exact byte offset be computed. May be empty.
  std::string_view contents;

  /// The position of field `name`, if the schema has it.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (fields[i] == name) return i;
    return std::nullopt;
  }
  /// The position of field `name`; throws data_error naming the origin and
  /// the fields it has when there is none.
  [[nodiscard]] std::size_t require(std::string_view name) const {
    if (auto at = find(name)) return *at;
    std::string known;
    for (const auto& f : fields) known += (known.empty() ? "" : ", ") + f;
    throw data_error("no field named '" + std::string(name) + "' (fields: " + (known.empty() ? "none" : known) +
                         ")",
                     origin);
  }
};

/// The storage a text column's views live in. The producing source derives
/// from it and decides what recycle() does (return itself to a free list, so
/// steady state allocates nothing); the default deletes it.
struct text_storage {
  std::vector<std::string_view> cells;  ///< rows x columns, row-major
  std::vector<std::uint64_t> record_indices;
  std::vector<std::uint64_t> byte_offsets;
  std::size_t rows = 0;
  std::size_t columns = 0;

  text_storage() = default;
  text_storage(const text_storage&) = delete;
  text_storage& operator=(const text_storage&) = delete;
  virtual ~text_storage() = default;
  /// Called when the column that held this storage dies.
  virtual void recycle() noexcept { delete this; }
};

namespace detail {
struct recycle_text_storage {
  void operator()(text_storage* storage) const noexcept { storage->recycle(); }
};
}  // namespace detail

/// The storage of a text<...> column. Move-only; thread-compatible.
class text_column {
 public:
  using storage_handle = std::unique_ptr<text_storage, detail::recycle_text_storage>;

  text_column() = default;
  text_column(storage_handle storage, std::shared_ptr<const text_schema> schema)
      : storage_(std::move(storage)), schema_(std::move(schema)) {}

  [[nodiscard]] std::size_t rows() const noexcept { return storage_ ? storage_->rows : 0; }
  /// Fields per row.
  [[nodiscard]] std::size_t columns() const noexcept { return storage_ ? storage_->columns : 0; }
  [[nodiscard]] const text_schema& schema() const noexcept { return *schema_; }
  [[nodiscard]] const std::shared_ptr<const text_schema>& schema_ptr() const noexcept { return schema_; }

  /// Field `column` of row `row` (unchecked: row < rows(), column < columns()).
  [[nodiscard]] std::string_view field(std::size_t row, std::size_t column) const noexcept {
    return storage_->cells[row * storage_->columns + column];
  }
  [[nodiscard]] std::span<const std::string_view> row(std::size_t r) const noexcept {
    return {storage_->cells.data() + r * storage_->columns, storage_->columns};
  }
  /// The record's index in its origin (its data rows, a header not counted).
  [[nodiscard]] std::uint64_t record_index(std::size_t row) const noexcept { return storage_->record_indices[row]; }
  /// The record's first byte in its origin.
  [[nodiscard]] std::uint64_t byte_offset(std::size_t row) const noexcept { return storage_->byte_offsets[row]; }

  /// Where `value` (a field of row `row`) starts in the origin: exact when the
  /// field is a view into the schema's contents, else the record's offset.
  [[nodiscard]] std::uint64_t offset_of(std::size_t row, std::string_view value) const noexcept {
    auto whole = schema_->contents;
    if (!whole.empty() && value.data() >= whole.data() && value.data() <= whole.data() + whole.size())
      return static_cast<std::uint64_t>(value.data() - whole.data());
    return byte_offset(row);
  }
  /// Where a field of this column lives, for error messages.
  [[nodiscard]] error_location location(std::size_t row, std::string_view value) const {
    return {schema_->origin, record_index(row), offset_of(row, value)};
  }
  /// Where row `row` starts, for errors about the whole record.
  [[nodiscard]] error_location location(std::size_t row) const {
    return {schema_->origin, record_index(row), byte_offset(row)};
  }

  /// Bytes of field text the column refers to (views, not copies).
  [[nodiscard]] std::size_t size_bytes() const noexcept {
    std::size_t total = 0;
    if (storage_)
      for (std::size_t i = 0; i < storage_->rows * storage_->columns; ++i) total += storage_->cells[i].size();
    return total;
  }

  /// Keeps the rows whose keep[r] is nonzero, in order.
  void keep_rows(std::span<const std::uint8_t> keep) noexcept {
    if (!storage_) return;
    auto& s = *storage_;
    std::size_t out = 0;
    for (std::size_t r = 0; r < s.rows && r < keep.size(); ++r) {
      if (!keep[r]) continue;
      if (out != r) {
        for (std::size_t c = 0; c < s.columns; ++c) s.cells[out * s.columns + c] = s.cells[r * s.columns + c];
        s.record_indices[out] = s.record_indices[r];
        s.byte_offsets[out] = s.byte_offsets[r];
      }
      ++out;
    }
    s.rows = out;
  }

 private:
  storage_handle storage_;
  std::shared_ptr<const text_schema> schema_;
};

/// Column spec: text records named `Name` (fields as views, with locations).
template <fixed_string Name>
struct text {
  static constexpr auto name = Name;
  static constexpr memory_space space = memory_space::host;
  using storage = text_column;
};

/// Is the column spec a text<...> column?
template <class Column>
inline constexpr bool is_text_column_v = std::is_same_v<typename Column::storage, text_column>;

}  // namespace conveyor
