// conveyor/source/npy.hpp: numpy .npy files, read memory-mapped a batch of
// records at a time (records are the first dimension), and written row by row.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/mapped_file.hpp"
#include "conveyor/source/detail/npy_header.hpp"
#include "conveyor/source/detail/row_gather.hpp"
#include "conveyor/source/element_type.hpp"

namespace conveyor {

/// A .npy file (format 1.0, 2.0 or 3.0) opened for batched record reads.
///
/// An array of shape `[n, d1, d2, ...]` is `n` records of layout `{dtype, [d1,
/// d2, ...]}`. Supported dtypes: `|b1 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 <f2 <f4
/// <f8` and their big-endian (`>`) variants, which `read` byte-swaps so rows
/// always come out little-endian. C order only.
///
/// The file is mapped read-only for the object's lifetime. Thread-safety: all
/// const members may run concurrently. Errors: construction throws `io_error`
/// when the file cannot be opened or mapped, and `data_error` naming the file and
/// byte offset for a bad magic string, an unsupported version, a header length
/// past the end of the file, a header dict that does not parse, an unsupported
/// dtype, `fortran_order: True`, a 0-d array, or data that is shorter (the
/// record and offset where it stops) or longer than the shape says.
class npy_file {
 public:
  /// Maps and validates `path`. Allocates the shape and the path string.
  explicit npy_file(const std::filesystem::path& path)
      : file_(path), header_(detail::parse_npy_file(file_.bytes(), file_.name())) {
    layout_.dtype = header_.dtype;
    layout_.shape.assign(header_.shape.begin() + 1, header_.shape.end());
  }

  /// Number of records (the first dimension).
  [[nodiscard]] std::uint64_t size() const noexcept { return header_.shape[0]; }
  /// Element type and per-record shape (the dimensions after the first).
  [[nodiscard]] const record_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] std::uint64_t record_bytes() const noexcept { return layout_.bytes(); }
  /// The full array shape, records first.
  [[nodiscard]] std::span<const std::uint64_t> shape() const noexcept { return header_.shape; }
  /// True when the file stores elements big-endian (reads swap them).
  [[nodiscard]] bool big_endian() const noexcept { return header_.big_endian; }
  /// Format version as written in the file (1, 2 or 3).
  [[nodiscard]] unsigned format_version() const noexcept { return header_.major_version; }
  [[nodiscard]] const std::string& path() const noexcept { return file_.name(); }
  /// Byte offset of the header dict (where dtype and shape are written).
  [[nodiscard]] std::uint64_t header_offset() const noexcept {
    return header_.major_version == 1 ? 10 : 12;
  }
  /// Byte offset of record 0.
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return header_.data_offset; }
  /// The array's bytes as stored (records first; not byte-swapped), straight
  /// from the mapping and valid while `*this` lives. No copy.
  [[nodiscard]] std::span<const std::byte> data() const noexcept {
    return file_.bytes().subspan(header_.data_offset, header_.data_bytes);
  }

  /// Copies records `indices` (any order, duplicates allowed) into `out`, row i
  /// at `out[i * record_bytes()]`, little-endian. Storage is touched in ascending
  /// order, consecutive runs copied at once. Allocates one vector of
  /// `indices.size()` entries. Throws std::out_of_range for an index past the end,
  /// std::invalid_argument when `out` is not `indices.size() * record_bytes()`.
  void read(std::span<const std::uint64_t> indices, std::span<std::byte> out) const {
    detail::check_batch(indices, out.size(), record_bytes(), size(), file_.name());
    detail::gather_rows(file_.bytes().data() + header_.data_offset, record_bytes(), indices, out);
    if (header_.big_endian) detail::byteswap_elements(out, element_size(layout_.dtype));
  }

  /// Typed read: `T` must match `layout().dtype` (std::invalid_argument naming
  /// both types otherwise); `out` holds `indices.size() * layout().elements()`.
  template <numeric_element T>
  void read(std::span<const std::uint64_t> indices, std::span<T> out) const {
    if (element_type_of<T> != layout_.dtype)
      throw std::invalid_argument(file_.name() + ": array holds " +
                                  std::string(element_type_name(layout_.dtype)) + ", not " +
                                  std::string(element_type_name(element_type_of<T>)));
    auto bytes = std::as_writable_bytes(out);
    read(indices, bytes);
    if constexpr (std::is_same_v<std::remove_cv_t<T>, bool>) detail::normalize_bools(bytes);
  }

 private:
  detail::mapped_file file_;
  detail::npy_header header_;
  record_layout layout_;
};

/// Writes a .npy file (format 1.0, or 2.0 when the header needs it) one batch
/// of rows at a time, so a large array is never held whole. The row count goes
/// into the header when `close()` runs: the header is written first with room
/// for any count and rewritten in place.
///
/// Allocation: the header string only; rows go straight to stdio's buffer.
/// Thread-safety: one writer per thread (no internal locking). Errors: io_error
/// naming the file and byte offset when open, write, seek or close fails;
/// std::invalid_argument for rows that are not a whole number of records or of
/// the wrong element type. If the writer is destroyed without `close()`, it
/// closes and swallows errors; call `close()` to see them. A file left by a
/// crash before `close()` says 0 records and is rejected by readers as a data
/// size mismatch, never read as wrong data.
class npy_writer {
 public:
  /// Creates (truncates) `path` for records of `layout`.
  npy_writer(const std::filesystem::path& path, record_layout layout)
      : name_(path.string()), layout_(std::move(layout)) {
    if (layout_.bytes() == 0)
      throw std::invalid_argument(name_ + ": records of zero bytes cannot be counted");
    if (layout_.shape.size() + 1 > 64)
      throw std::invalid_argument(name_ + ": numpy supports at most 64 dimensions");
    file_ = std::fopen(name_.c_str(), "wb");
    if (file_ == nullptr) throw_io("cannot create", errno, 0);
    std::vector<std::uint64_t> widest{std::numeric_limits<std::uint64_t>::max()};
    widest.insert(widest.end(), layout_.shape.begin(), layout_.shape.end());
    header_bytes_ = detail::frame_npy_header(detail::format_npy_header(layout_.dtype, widest)).size();
    if (!write_header(file_)) {
      const int failure = errno;
      std::fclose(std::exchange(file_, nullptr));
      throw_io("cannot write the header", failure, 0);
    }
  }

  npy_writer(const npy_writer&) = delete;
  npy_writer& operator=(const npy_writer&) = delete;
  ~npy_writer() {
    if (file_ == nullptr) return;
    try {
      close();
    } catch (const std::exception&) {  // destructors must not throw; close() reports
    }
  }

  /// Appends whole rows (a multiple of `layout.bytes()` bytes, little-endian).
  void write(std::span<const std::byte> rows) {
    if (file_ == nullptr) throw std::logic_error(name_ + ": write after close");
    if (rows.size() % layout_.bytes() != 0)
      throw std::invalid_argument(name_ + ": " + std::to_string(rows.size()) +
                                  " bytes is not a whole number of " +
                                  std::to_string(layout_.bytes()) + "-byte records");
    if (!rows.empty() && std::fwrite(rows.data(), 1, rows.size(), file_) != rows.size())
      throw_io("cannot write", errno, header_bytes_ + rows_ * layout_.bytes());
    rows_ += rows.size() / layout_.bytes();
  }

  /// Typed append: `T` must match the layout's element type.
  template <numeric_element T>
  void write(std::span<const T> values) {
    if (element_type_of<T> != layout_.dtype)
      throw std::invalid_argument(name_ + ": writer holds " +
                                  std::string(element_type_name(layout_.dtype)) + ", not " +
                                  std::string(element_type_name(element_type_of<T>)));
    write(std::as_bytes(values));
  }

  /// Records written so far.
  [[nodiscard]] std::uint64_t rows_written() const noexcept { return rows_; }

  /// Writes the final header and closes the file. Idempotent.
  void close() {
    if (file_ == nullptr) return;
    auto* file = std::exchange(file_, nullptr);
    int failure = 0;
    if (std::fseek(file, 0, SEEK_SET) != 0 || !write_header(file)) failure = errno != 0 ? errno : EIO;
    if (std::fclose(file) != 0 && failure == 0) failure = errno != 0 ? errno : EIO;
    if (failure != 0) throw_io("cannot finish", failure, 0);
  }

 private:
  [[noreturn]] void throw_io(const char* what, int code, std::uint64_t offset) const {
    throw io_error(std::string(what) + ": " + std::generic_category().message(code), name_,
                   unknown_position, offset);
  }
  // Writes the header for the rows so far at the current position, then returns
  // to the end of the file; false (errno set) on failure.
  bool write_header(std::FILE* file) const {
    std::vector<std::uint64_t> shape{rows_};
    shape.insert(shape.end(), layout_.shape.begin(), layout_.shape.end());
    const auto header =
        detail::frame_npy_header(detail::format_npy_header(layout_.dtype, shape), header_bytes_);
    return std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
           std::fseek(file, 0, SEEK_END) == 0;
  }

  std::string name_;
  record_layout layout_;
  std::FILE* file_ = nullptr;
  std::size_t header_bytes_ = 0;
  std::uint64_t rows_ = 0;
};

/// Writes a whole array of `shape` (records first) and `dtype` to `path` in one
/// call. `data` must hold exactly the array's bytes (std::invalid_argument
/// otherwise). Errors as `npy_writer`.
inline void write_npy(const std::filesystem::path& path, element_type dtype,
                      std::span<const std::uint64_t> shape, std::span<const std::byte> data) {
  if (shape.empty()) throw std::invalid_argument(path.string() + ": a .npy array needs a shape");
  record_layout layout{dtype, std::vector<std::uint64_t>(shape.begin() + 1, shape.end())};
  if (data.size() != shape[0] * layout.bytes())
    throw std::invalid_argument(path.string() + ": data holds " + std::to_string(data.size()) +
                                " bytes, the shape needs " +
                                std::to_string(shape[0] * layout.bytes()));
  npy_writer writer(path, std::move(layout));
  writer.write(data);
  writer.close();
}

}  // namespace conveyor
