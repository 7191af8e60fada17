// conveyor/source/hdf5.hpp: one HDF5 dataset read a batch of records at a time
// (records along dimension 0). Opt-in: link `conveyor::hdf5`.
#pragma once

#include <hdf5.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/hdf5_direct.hpp"
#include "conveyor/source/detail/hdf5_handle.hpp"
#include "conveyor/source/detail/hdf5_types.hpp"
#include "conveyor/source/detail/row_gather.hpp"
#include "conveyor/source/element_type.hpp"
#include "conveyor/source/hdf5_types.hpp"

namespace conveyor {

/// Tuning of an `hdf5_dataset`.
struct hdf5_options {
  /// Bytes of HDF5's chunk cache for this dataset (HDF5's default is 1 MiB,
  /// which a random batch over large chunks thrashes).
  std::size_t chunk_cache_bytes = std::size_t{64} << 20;
  /// Two requested rows in the same chunk with at most this many bytes of rows
  /// between them are read as one block (the chunk is fetched whole anyway).
  std::size_t max_gap_bytes = std::size_t{256} << 10;
  /// A batch whose rows form more blocks than this is read with one H5Dread per
  /// block instead of one OR-ed selection (HDF5 1.10 maps large irregular
  /// selections onto chunks element by element; see docs/source-binary.md).
  std::size_t max_selection_blocks = 16;
  /// Read unfiltered datasets whose file type is the native type straight from a
  /// memory map of the file (see detail/hdf5_direct.hpp); false: always H5Dread.
  bool direct_reads = true;
};

/// True when the HDF5 library in this process was built thread-safe. When it is
/// not, conveyor serializes every HDF5 call it makes through one process-wide
/// mutex; code outside conveyor that calls HDF5 concurrently must hold
/// `hdf5_call_guard` too.
inline bool hdf5_is_threadsafe() { return detail::hdf5_library_is_threadsafe(); }

/// Holds conveyor's process-wide HDF5 mutex (when HDF5 is not thread-safe, or
/// serialization is forced) for the guard's lifetime. Recursive.
using hdf5_call_guard = detail::hdf5_lock;

/// Makes conveyor serialize its HDF5 calls even on a thread-safe library (for
/// tests, or to keep HDF5's own lock from contending). Thread-safe.
inline void hdf5_serialize_always(bool always) {
  detail::hdf5_force_serialization().store(always, std::memory_order_relaxed);
}

/// One dataset of an HDF5 file, open for batched record reads.
///
/// A dataset of shape `[n, d1, ...]` is `n` records. Numeric datasets (integer,
/// float, enum; any rank) read as native little-endian elements; fixed-length
/// string datasets read as `record_bytes()` raw bytes or through `read_strings`;
/// variable-length strings only through `read_strings`; compound datasets read
/// whole records as bytes laid out as `fields()` says (the C struct layout).
///
/// A batch read sorts the indices. On the direct path (reads_directly()) rows
/// are copied from a memory map of the file straight to their places, a run of
/// consecutive rows at once. Otherwise it coalesces consecutive rows (and rows
/// in the same chunk with a small gap) into hyperslab blocks OR-ed into one
/// selection (a point selection for scattered rows of a 1-D dataset), issues
/// one H5Dread, and places the rows in the order asked.
///
/// Thread-safety: all const members may be called from many threads; see
/// `hdf5_is_threadsafe`. Errors: `io_error` when the file is missing or HDF5
/// fails to read; `data_error` naming the file and dataset when the file is not
/// HDF5, the dataset is missing, scalar or of an unsupported type, or a read asks
/// for a type or layout the dataset does not hold. Index and buffer-size mistakes
/// throw std::out_of_range / std::invalid_argument.
class hdf5_dataset {
 public:
  /// Opens `dataset_path` (e.g. "/train/x") in `file` read-only. Allocates the
  /// names, the layout and the field table.
  hdf5_dataset(const std::filesystem::path& file, std::string dataset_path, hdf5_options options = {})
      : file_name_(file.string()), dataset_path_(std::move(dataset_path)), options_(options) {
    std::error_code code;
    if (!std::filesystem::is_regular_file(file, code))
      throw io_error("cannot open: no such file", file_name_);
    detail::hdf5_session session;
    if (H5Fis_hdf5(file_name_.c_str()) <= 0) throw data_error("not an HDF5 file", file_name_, unknown_position, 0);
    file_ = detail::hdf5_id(H5Fopen(file_name_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_.valid()) throw io_error("cannot open: " + session.error_stack_text(), file_name_);
    detail::hdf5_id access(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
    dataset_ = detail::hdf5_id(H5Dopen2(file_.get(), dataset_path_.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dataset_.valid())
      throw data_error("no dataset '" + dataset_path_ + "': " + session.error_stack_text(), file_name_);
    read_shape_and_chunks();
    if (chunk_bytes_ > 0) {
      // Reopen with a chunk cache sized for this dataset; slots: a prime well
      // above the number of chunks the cache can hold, as HDF5 advises.
      const auto chunks = std::max<std::size_t>(1, options_.chunk_cache_bytes / chunk_bytes_);
      H5Pset_chunk_cache(access.get(), next_prime(chunks * 10), options_.chunk_cache_bytes, 1.0);
      dataset_ = detail::hdf5_id(H5Dopen2(file_.get(), dataset_path_.c_str(), access.get()), H5Dclose);
      if (!dataset_.valid()) throw io_error(where("cannot reopen: " + session.error_stack_text()), file_name_);
    }
    detail::hdf5_id file_type(H5Dget_type(dataset_.get()), H5Tclose);
    std::string problem;
    auto info = detail::describe_type(file_type.get(), problem);
    if (!info) throw data_error(where(problem), file_name_);
    type_ = std::move(*info);
    layout_.dtype = type_.content == hdf5_content::numeric ? type_.dtype : element_type::uint8;
    if (type_.content != hdf5_content::numeric) layout_.shape.push_back(type_.element_bytes);
    if (options_.direct_reads && type_.content != hdf5_content::variable_string)
      direct_ = detail::hdf5_direct_rows::open(dataset_.get(), type_.memory_type.get(), file_name_,
                                               dims_, record_bytes());
  }

  /// Number of records (dimension 0).
  [[nodiscard]] std::uint64_t size() const noexcept { return dims_[0]; }
  /// Per-record layout. Numeric: the dtype and dimensions after the first.
  /// Strings and compounds: uint8 with the element size appended as the last
  /// dimension (bytes per string or per compound record).
  [[nodiscard]] const record_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] std::uint64_t record_bytes() const noexcept { return layout_.bytes(); }
  /// Elements (numbers, strings or compound records) per record.
  [[nodiscard]] std::uint64_t elements_per_record() const noexcept { return row_elements_; }
  [[nodiscard]] hdf5_content content() const noexcept { return type_.content; }
  /// Compound datasets: the fields in memory order; empty otherwise.
  [[nodiscard]] const std::vector<hdf5_field>& fields() const noexcept { return type_.fields; }
  /// Rows per chunk along dimension 0, or 0 when the dataset is not chunked.
  [[nodiscard]] std::uint64_t chunk_rows() const noexcept { return chunk_rows_; }
  /// True when reads copy rows from a memory map instead of calling H5Dread.
  [[nodiscard]] bool reads_directly() const noexcept { return direct_ != nullptr; }
  [[nodiscard]] const std::string& file() const noexcept { return file_name_; }
  [[nodiscard]] const std::string& dataset_path() const noexcept { return dataset_path_; }

  /// Reads records `indices` (any order, duplicates allowed) into `out`, row i at
  /// `out[i * record_bytes()]`: copied from the memory map straight into `out`
  /// (reads_directly()), else with one H5Dread. Allocates the batch's order
  /// and, on the H5Dread path, the selection plan and, unless the batch is
  /// sorted, unique and gap-free, a staging buffer.
  void read(std::span<const std::uint64_t> indices, std::span<std::byte> out) const {
    if (type_.content == hdf5_content::variable_string)
      throw data_error(where("holds variable-length strings: use read_strings"), file_name_);
    detail::check_batch(indices, out.size(), record_bytes(), size(), batch_name());
    read_rows(indices, out.data(), record_bytes());
  }

  /// Typed read of a numeric dataset: `T` must be its element type (data_error
  /// naming file and dataset otherwise, e.g. floats from a string dataset).
  template <numeric_element T>
  void read(std::span<const std::uint64_t> indices, std::span<T> out) const {
    if (type_.content != hdf5_content::numeric || element_type_of<T> != type_.dtype)
      throw data_error(where(std::string("holds ") + describe() + ", not " +
                             std::string(element_type_name(element_type_of<T>))),
                       file_name_);
    read(indices, std::as_writable_bytes(out));
    if constexpr (std::is_same_v<std::remove_cv_t<T>, bool>)
      detail::normalize_bools(std::as_writable_bytes(out));
  }

  /// Reads the strings of records `indices`: `elements_per_record()` strings per
  /// record, in order. Fixed-length strings lose their padding (NULs, or spaces
  /// for space-padded types). data_error for a non-string dataset.
  [[nodiscard]] std::vector<std::string> read_strings(std::span<const std::uint64_t> indices) const {
    std::vector<std::string> strings;
    strings.reserve(indices.size() * row_elements_);
    if (type_.content == hdf5_content::fixed_string) {
      std::vector<std::byte> bytes(indices.size() * record_bytes());
      read(indices, bytes);
      const auto padding = H5Tget_strpad(type_.memory_type.get());
      for (std::size_t at = 0; at < bytes.size(); at += type_.element_bytes) {
        std::string_view text(reinterpret_cast<const char*>(bytes.data() + at), type_.element_bytes);
        text = text.substr(0, text.find('\0'));
        if (padding == H5T_STR_SPACEPAD) text = text.substr(0, text.find_last_not_of(' ') + 1);
        strings.emplace_back(text);
      }
      return strings;
    }
    if (type_.content != hdf5_content::variable_string)
      throw data_error(where(std::string("holds ") + describe() + ", not strings"), file_name_);
    detail::check_batch(indices, indices.size() * record_bytes(), record_bytes(), size(), batch_name());
    std::vector<char*> pointers(indices.size() * row_elements_, nullptr);
    read_rows(indices, reinterpret_cast<std::byte*>(pointers.data()), row_elements_ * sizeof(char*),
              &strings);
    return strings;
  }

 private:
  std::string where(const std::string& message) const {
    return "dataset '" + dataset_path_ + "'" + (message.empty() ? "" : ": " + message);
  }
  std::string batch_name() const { return file_name_ + ", " + where(""); }
  std::string describe() const {
    switch (type_.content) {
      case hdf5_content::numeric: return std::string(element_type_name(type_.dtype));
      case hdf5_content::fixed_string: return "fixed-length strings";
      case hdf5_content::variable_string: return "variable-length strings";
      case hdf5_content::compound: return "compound records";
    }
    return "unknown";
  }
  static std::size_t next_prime(std::size_t value) {
    auto is_prime = [](std::size_t n) {
      if (n < 2) return false;
      for (std::size_t d = 2; d * d <= n; ++d)
        if (n % d == 0) return false;
      return true;
    };
    while (!is_prime(value)) ++value;
    return value;
  }

  void read_shape_and_chunks() {
    detail::hdf5_id space(H5Dget_space(dataset_.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) throw data_error(where("has no simple dataspace"), file_name_);
    if (rank == 0) throw data_error(where("is a scalar: it has no record dimension"), file_name_);
    dims_.resize(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims_.data(), nullptr);
    layout_.shape.assign(dims_.begin() + 1, dims_.end());
    row_elements_ = 1;
    for (std::size_t d = 1; d < dims_.size(); ++d) row_elements_ *= dims_[d];
    detail::hdf5_id create(H5Dget_create_plist(dataset_.get()), H5Pclose);
    if (H5Pget_layout(create.get()) == H5D_CHUNKED) {
      std::vector<hsize_t> chunk(dims_.size());
      H5Pget_chunk(create.get(), rank, chunk.data());
      chunk_rows_ = chunk[0];
      detail::hdf5_id type(H5Dget_type(dataset_.get()), H5Tclose);
      chunk_bytes_ = H5Tget_size(type.get());
      for (auto dim : chunk) chunk_bytes_ *= dim;
    }
  }

  // Reads the rows of `indices`: from the memory map straight into their places
  // in `out` when the dataset allows it, else the unique sorted rows with
  // H5Dread, placed in the order asked. `row_bytes` is per record in memory;
  // for variable-length strings `strings` receives copies and HDF5's memory is
  // reclaimed.
  void read_rows(std::span<const std::uint64_t> indices, std::byte* out, std::size_t row_bytes,
                 std::vector<std::string>* strings = nullptr) const {
    if (indices.empty() || row_bytes == 0) return;
    const auto requests = detail::storage_order(indices);
    if (direct_ != nullptr && strings == nullptr && copy_direct(requests, out, row_bytes)) return;
    std::vector<std::uint64_t> rows;
    rows.reserve(requests.size());
    for (const auto& request : requests)
      if (rows.empty() || rows.back() != request.index) rows.push_back(request.index);
    const auto max_gap_rows = options_.max_gap_bytes / std::max<std::size_t>(1, record_bytes());
    const auto spans = detail::coalesce_rows(rows, chunk_rows_, max_gap_rows);
    std::uint64_t staged_rows = 0;
    for (const auto& span : spans) staged_rows += span.count;
    bool in_order = rows.size() == requests.size() && staged_rows == rows.size();
    for (std::size_t i = 0; in_order && i < requests.size(); ++i) in_order = requests[i].position == i;

    std::vector<std::byte> staging(in_order ? 0 : staged_rows * row_bytes);
    std::byte* target = in_order ? out : staging.data();
    read_with_hdf5(spans, staged_rows, target, requests.front().index, strings, requests);
    if (in_order || strings != nullptr) return;
    std::size_t span = 0;
    std::uint64_t span_base = 0;  // staged row where spans[span] starts
    for (const auto& request : requests) {
      while (request.index >= spans[span].first + spans[span].count) span_base += spans[span++].count;
      std::memcpy(out + request.position * row_bytes,
                  target + (span_base + request.index - spans[span].first) * row_bytes, row_bytes);
    }
  }

  // Copies the rows of `requests` (storage order) from the memory map to their
  // places in `out`, one copy per run consecutive both in the file and in
  // `out`, so no staging buffer is needed; false when a chunk is unallocated
  // (the caller then reads the batch with H5Dread, which supplies fill values).
  bool copy_direct(const std::vector<detail::row_request>& requests, std::byte* out,
                   std::size_t row_bytes) const {
    std::size_t begin = 0;
    while (begin < requests.size()) {
      std::size_t end = begin + 1;
      while (end < requests.size() && requests[end].index == requests[end - 1].index + 1 &&
             requests[end].position == requests[end - 1].position + 1)
        ++end;
      if (!direct_->copy_rows(requests[begin].index, end - begin,
                              out + requests[begin].position * row_bytes))
        return false;
      begin = end;
    }
    return true;
  }

  // H5Dread of `spans` into `target` (staged_rows rows, in span order): a point
  // selection for scattered rows of a 1-D dataset, one OR-ed hyperslab for up to
  // max_selection_blocks blocks, else one H5Dread per block.
  void read_with_hdf5(const std::vector<detail::row_span>& spans, std::uint64_t staged_rows,
                      std::byte* target, std::uint64_t first_record, std::vector<std::string>* strings,
                      const std::vector<detail::row_request>& requests) const {
    detail::hdf5_session session;
    auto fail = [&](const char* what) {
      throw io_error(where(what + session.error_stack_text()), file_name_, first_record);
    };
    std::vector<hsize_t> start(dims_.size(), 0), count(dims_);
    const auto row_bytes = static_cast<std::size_t>(H5Tget_size(type_.memory_type.get()) * row_elements_);
    auto read_blocks = [&](std::size_t begin, std::size_t end, std::uint64_t rows, std::byte* into) {
      detail::hdf5_id file_space(H5Dget_space(dataset_.get()), H5Sclose);
      herr_t status = 0;
      if (dims_.size() == 1 && end - begin > 1 && rows == end - begin) {
        std::vector<hsize_t> coordinates;
        for (auto s = begin; s < end; ++s) coordinates.push_back(spans[s].first);
        status = H5Sselect_elements(file_space.get(), H5S_SELECT_SET, coordinates.size(),
                                    coordinates.data());
      } else {
        for (auto s = begin; s < end && status >= 0; ++s) {
          start[0] = spans[s].first;
          count[0] = spans[s].count;
          status = H5Sselect_hyperslab(file_space.get(), s == begin ? H5S_SELECT_SET : H5S_SELECT_OR,
                                       start.data(), nullptr, count.data(), nullptr);
        }
      }
      count[0] = rows;
      detail::hdf5_id memory_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                                   H5Sclose);
      if (status < 0 || !memory_space.valid()) fail("cannot select rows: ");
      if (H5Dread(dataset_.get(), type_.memory_type.get(), memory_space.get(), file_space.get(),
                  H5P_DEFAULT, into) < 0)
        fail("read failed: ");
    };
    const bool scattered_points = dims_.size() == 1 && staged_rows == spans.size();
    if (spans.size() <= options_.max_selection_blocks || scattered_points) {
      read_blocks(0, spans.size(), staged_rows, target);
    } else {
      std::uint64_t at = 0;
      for (std::size_t s = 0; s < spans.size(); at += spans[s++].count)
        read_blocks(s, s + 1, spans[s].count, target + at * row_bytes);
    }
    if (strings == nullptr) return;
    count[0] = staged_rows;
    detail::hdf5_id whole(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
    try {
      collect_strings(requests, spans, target, row_bytes, *strings);
    } catch (...) {
      H5Dvlen_reclaim(type_.memory_type.get(), whole.get(), H5P_DEFAULT, target);
      throw;
    }
    H5Dvlen_reclaim(type_.memory_type.get(), whole.get(), H5P_DEFAULT, target);
  }

  void collect_strings(const std::vector<detail::row_request>& requests,
                       const std::vector<detail::row_span>& spans, const std::byte* staged,
                       std::size_t row_bytes, std::vector<std::string>& strings) const {
    strings.assign(requests.size() * row_elements_, std::string());
    std::size_t span = 0;
    std::uint64_t span_base = 0;
    for (const auto& request : requests) {
      while (request.index >= spans[span].first + spans[span].count) span_base += spans[span++].count;
      const auto* row = staged + (span_base + request.index - spans[span].first) * row_bytes;
      for (std::uint64_t e = 0; e < row_elements_; ++e) {
        char* text = nullptr;
        std::memcpy(&text, row + e * sizeof(char*), sizeof(char*));
        if (text != nullptr) strings[request.position * row_elements_ + e] = text;
      }
    }
  }

  std::string file_name_;
  std::string dataset_path_;
  hdf5_options options_;
  detail::hdf5_id file_;
  detail::hdf5_id dataset_;
  detail::hdf5_type_info type_;
  std::vector<hsize_t> dims_;
  record_layout layout_;
  std::uint64_t row_elements_ = 1;
  std::uint64_t chunk_rows_ = 0;
  std::size_t chunk_bytes_ = 0;
  std::unique_ptr<detail::hdf5_direct_rows> direct_;  // null: every read uses H5Dread
};

}  // namespace conveyor
