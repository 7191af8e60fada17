// conveyor/source/binary_records.hpp: a file of fixed-size binary records,
// memory-mapped and read a batch of record indices at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/mapped_file.hpp"
#include "conveyor/source/detail/row_gather.hpp"
#include "conveyor/source/element_type.hpp"

namespace conveyor {

/// How to cut a file into records: `header_bytes` to skip, then records of
/// `layout.bytes()` bytes each, elements little-endian.
struct binary_records_options {
  std::uint64_t header_bytes = 0;
  record_layout layout;  ///< e.g. `{element_type::float32, {1024}}`
};

/// A file of fixed-size records: `header_bytes`, then `size()` records of
/// `record_bytes()` each, nothing else.
///
/// The file is mapped read-only for the object's lifetime (Boost.Interprocess);
/// reads copy out of the mapping, so the page cache does the I/O.
///
/// Thread-safety: every const member may be called from any number of threads at
/// once. Errors: construction throws `io_error` (missing or unmappable file) or
/// `data_error` when the size is not `header_bytes + n * record_bytes`, naming the
/// byte offset where the partial record (or the short header) starts. `read`
/// throws `std::out_of_range` for an index past the end and `std::invalid_argument`
/// for an output of the wrong size: those are caller bugs, not bad data.
class binary_records_file {
 public:
  /// Maps `path`. Allocates the path string only.
  binary_records_file(const std::filesystem::path& path, binary_records_options options)
      : file_(path), options_(std::move(options)) {
    const auto record_bytes = options_.layout.bytes();
    if (record_bytes == 0) throw std::invalid_argument(file_.name() + ": records of zero bytes");
    const auto file_bytes = static_cast<std::uint64_t>(file_.bytes().size());
    if (file_bytes < options_.header_bytes)
      throw data_error("file ends inside the " + std::to_string(options_.header_bytes) +
                           "-byte header",
                       file_.name(), unknown_position, file_bytes);
    const auto payload = file_bytes - options_.header_bytes;
    records_ = payload / record_bytes;
    if (payload % record_bytes != 0)
      throw data_error("partial record: " + std::to_string(payload % record_bytes) + " of " +
                           std::to_string(record_bytes) + " bytes at the end of the file",
                       file_.name(), records_, options_.header_bytes + records_ * record_bytes);
  }

  /// Number of records.
  [[nodiscard]] std::uint64_t size() const noexcept { return records_; }
  /// Element type and per-record shape.
  [[nodiscard]] const record_layout& layout() const noexcept { return options_.layout; }
  [[nodiscard]] std::uint64_t record_bytes() const noexcept { return options_.layout.bytes(); }
  [[nodiscard]] const std::string& path() const noexcept { return file_.name(); }
  [[nodiscard]] std::uint64_t header_bytes() const noexcept { return options_.header_bytes; }
  /// The records' bytes (the file after the header), straight from the mapping
  /// and valid while `*this` lives. No copy.
  [[nodiscard]] std::span<const std::byte> data() const noexcept {
    return file_.bytes().subspan(options_.header_bytes);
  }

  /// The bytes of record `index`, straight from the mapping (valid while `*this`
  /// lives). No copy, no allocation. Throws std::out_of_range past the end.
  [[nodiscard]] std::span<const std::byte> record(std::uint64_t index) const {
    const std::uint64_t one[] = {index};
    detail::check_batch(one, record_bytes(), record_bytes(), records_, file_.name());
    return file_.bytes().subspan(options_.header_bytes + index * record_bytes(), record_bytes());
  }

  /// Copies records `indices` (any order, duplicates allowed) into `out`, row i
  /// at `out[i * record_bytes()]`. Storage is touched in ascending order and
  /// runs of consecutive records are copied at once. Allocates one vector of
  /// `indices.size()` entries.
  void read(std::span<const std::uint64_t> indices, std::span<std::byte> out) const {
    detail::check_batch(indices, out.size(), record_bytes(), records_, file_.name());
    detail::gather_rows(file_.bytes().data() + options_.header_bytes, record_bytes(), indices, out);
  }

  /// Typed read: `T` must match the layout's element type (std::invalid_argument
  /// otherwise) and `out` must hold `indices.size() * layout().elements()` values.
  template <numeric_element T>
  void read(std::span<const std::uint64_t> indices, std::span<T> out) const {
    if (element_type_of<T> != options_.layout.dtype)
      throw std::invalid_argument(file_.name() + ": records hold " +
                                  std::string(element_type_name(options_.layout.dtype)) +
                                  ", not " + std::string(element_type_name(element_type_of<T>)));
    auto bytes = std::as_writable_bytes(out);
    read(indices, bytes);
    if constexpr (std::is_same_v<std::remove_cv_t<T>, bool>) detail::normalize_bools(bytes);
  }

 private:
  detail::mapped_file file_;
  binary_records_options options_;
  std::uint64_t records_ = 0;
};

}  // namespace conveyor
