// conveyor/core/column.hpp: the column kinds a batch holds.
//
// A column spec is a type naming the column, its kind and its memory space; a
// column is its storage. `dense<"x", float>` is rows x width values of one
// dtype, stored contiguously row-major in one pooled buffer (host memory;
// `dense<"x", float, memory_space::device>` lives on a GPU). `bytes<"raw">` is
// one variable-length byte string per row, stored as rows+1 offsets plus the
// bytes. `text<"record">` (text.hpp) is the fields of text records.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/fixed_string.hpp"

namespace conveyor {

/// What can be stored in a dense column: any trivially copyable value type
/// (float, double, the integers, std::byte, conveyor::float16 and bfloat16).
template <class T>
concept column_value = std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>;

/// rows x width values of T, row-major, in one pooled buffer in memory
/// space `Space`. Element access (values, row, operator()) exists only for
/// host-accessible spaces; device columns give data() for kernels and copies.
/// Not thread-safe for concurrent writes to the same rows; move-only.
template <column_value T, memory_space Space = memory_space::host>
class dense_column {
 public:
  using value_type = T;
  static constexpr memory_space space = Space;

  dense_column() = default;
  /// Allocates rows x width values from the pool; contents are unspecified.
  dense_column(std::shared_ptr<buffer_pool> pool, std::size_t rows, std::size_t width)
      : buffer_(std::move(pool), rows * width * sizeof(T)), rows_(rows), width_(width) {}

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t width() const noexcept { return width_; }
  [[nodiscard]] std::size_t size() const noexcept { return rows_ * width_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return size() * sizeof(T); }

  [[nodiscard]] T* data() noexcept { return static_cast<T*>(buffer_.data()); }
  [[nodiscard]] const T* data() const noexcept { return static_cast<const T*>(buffer_.data()); }
  [[nodiscard]] std::span<T> values() noexcept
    requires(host_accessible(Space))
  {
    return {data(), size()};
  }
  [[nodiscard]] std::span<const T> values() const noexcept
    requires(host_accessible(Space))
  {
    return {data(), size()};
  }
  [[nodiscard]] std::span<T> row(std::size_t r) noexcept
    requires(host_accessible(Space))
  {
    return {data() + r * width_, width_};
  }
  [[nodiscard]] std::span<const T> row(std::size_t r) const noexcept
    requires(host_accessible(Space))
  {
    return {data() + r * width_, width_};
  }
  T& operator()(std::size_t r, std::size_t c) noexcept
    requires(host_accessible(Space))
  {
    return data()[r * width_ + c];
  }
  const T& operator()(std::size_t r, std::size_t c) const noexcept
    requires(host_accessible(Space))
  {
    return data()[r * width_ + c];
  }

  /// Keeps the first `rows` rows (used when the skip policy drops records).
  void truncate(std::size_t rows) noexcept {
    assert(rows <= rows_);
    rows_ = rows;
  }
  /// Moves row `from` onto row `to` (to < from); used to compact after skips.
  void move_row(std::size_t from, std::size_t to) noexcept
    requires(host_accessible(Space))
  {
    if (from != to) std::memmove(data() + to * width_, data() + from * width_, width_ * sizeof(T));
  }
  /// Keeps the rows whose keep[r] is nonzero, in order.
  void keep_rows(std::span<const std::uint8_t> keep) noexcept
    requires(host_accessible(Space))
  {
    std::size_t out = 0;
    for (std::size_t r = 0; r < rows_ && r < keep.size(); ++r)
      if (keep[r]) move_row(r, out++);
    rows_ = out;
  }
  [[nodiscard]] const pooled_buffer& buffer() const noexcept { return buffer_; }
  /// Hands the column's memory to the caller (a sink taking it into a
  /// tensor, say) and leaves the column empty: no copy. The buffer returns to
  /// its pool when the caller destroys it (or calls its detach() releaser).
  [[nodiscard]] pooled_buffer take_buffer() && noexcept {
    rows_ = 0;
    width_ = 0;
    return std::move(buffer_);
  }

 private:
  pooled_buffer buffer_;
  std::size_t rows_ = 0;
  std::size_t width_ = 0;
};

/// One byte string per row: offsets (rows + 1) and the concatenated bytes.
/// Built with `append`; the byte buffer grows geometrically from the pool.
class bytes_column {
 public:
  bytes_column() = default;
  /// Reserves offsets for `rows` rows and `expected_bytes` bytes of data.
  bytes_column(std::shared_ptr<buffer_pool> pool, std::size_t rows, std::size_t expected_bytes = 0)
      : pool_(std::move(pool)), offsets_(pool_, (rows + 1) * sizeof(std::uint64_t)),
        bytes_(pool_, expected_bytes), max_rows_(rows) {
    offsets()[0] = 0;
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return offsets()[rows_]; }

  /// Appends one row. Throws std::length_error past the reserved row count.
  void append(std::span<const std::byte> value) {
    if (rows_ == max_rows_) throw std::length_error("bytes_column: more rows than reserved");
    std::size_t used = offsets()[rows_];
    if (used + value.size() > bytes_.capacity()) grow(used + value.size());
    if (!value.empty()) std::memcpy(static_cast<std::byte*>(bytes_.data()) + used, value.data(), value.size());
    offsets()[++rows_] = used + value.size();
  }
  void append(std::string_view text) { append(std::as_bytes(std::span(text.data(), text.size()))); }

  [[nodiscard]] std::span<const std::byte> row(std::size_t r) const noexcept {
    auto* base = static_cast<const std::byte*>(bytes_.data());
    return {base + offsets()[r], offsets()[r + 1] - offsets()[r]};
  }
  [[nodiscard]] std::string_view text(std::size_t r) const noexcept {
    auto value = row(r);
    return {reinterpret_cast<const char*>(value.data()), value.size()};
  }
  void truncate(std::size_t rows) noexcept {
    assert(rows <= rows_);
    rows_ = rows;
  }
  /// Keeps the rows whose keep[r] is nonzero, in order, moving bytes down.
  void keep_rows(std::span<const std::uint8_t> keep) noexcept {
    auto* base = static_cast<std::byte*>(bytes_.data());
    std::size_t out = 0;
    std::uint64_t write = 0;
    for (std::size_t r = 0; r < rows_ && r < keep.size(); ++r) {
      std::uint64_t begin = offsets()[r], end = offsets()[r + 1];
      if (!keep[r]) continue;
      if (write != begin) std::memmove(base + write, base + begin, end - begin);
      offsets()[out] = write;
      write += end - begin;
      ++out;
    }
    offsets()[out] = write;
    rows_ = out;
  }

 private:
  [[nodiscard]] std::uint64_t* offsets() noexcept { return static_cast<std::uint64_t*>(offsets_.data()); }
  [[nodiscard]] const std::uint64_t* offsets() const noexcept {
    return static_cast<const std::uint64_t*>(offsets_.data());
  }
  void grow(std::size_t needed) {
    std::size_t capacity = bytes_.capacity() < 256 ? 256 : bytes_.capacity();
    while (capacity < needed) capacity *= 2;
    pooled_buffer bigger(pool_, capacity);
    if (offsets()[rows_] > 0) std::memcpy(bigger.data(), bytes_.data(), offsets()[rows_]);
    bytes_ = std::move(bigger);
  }

  std::shared_ptr<buffer_pool> pool_;
  pooled_buffer offsets_;
  pooled_buffer bytes_;
  std::size_t rows_ = 0;
  std::size_t max_rows_ = 0;
};

/// Column spec: rows x width values of T named `Name`, in memory space `Space`.
template <fixed_string Name, column_value T, memory_space Space = memory_space::host>
struct dense {
  static constexpr auto name = Name;
  static constexpr memory_space space = Space;
  using value_type = T;
  using storage = dense_column<T, Space>;
};

/// Column spec: a variable-length byte string per row named `Name` (host memory).
template <fixed_string Name>
struct bytes {
  static constexpr auto name = Name;
  static constexpr memory_space space = memory_space::host;
  using storage = bytes_column;
};

/// The memory space of a column spec (host unless it says otherwise).
template <class Column>
constexpr memory_space space_of() noexcept {
  if constexpr (requires { Column::space; }) {
    return Column::space;
  } else {
    return memory_space::host;
  }
}

}  // namespace conveyor
