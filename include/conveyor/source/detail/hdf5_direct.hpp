// conveyor/source/detail/hdf5_direct.hpp: reading rows of an HDF5 dataset
// straight from a memory map of the file, bypassing HDF5's selection machinery.
//
// Why: for a random batch over a chunked dataset, HDF5 1.10 maps an irregular
// (OR-ed) hyperslab onto chunks element by element, which measured slower than
// one H5Dread per row (bench/source/hdf5.cpp). When the bytes on disk are the
// bytes wanted in memory (no filters, file type == native type) and each chunk
// holds whole rows, a row is simply `chunk address + row-in-chunk * row bytes`,
// so a batch is a sorted series of memcpys from the page cache. Chunk addresses
// come from H5Dget_chunk_info_by_coord (HDF5 >= 1.10.5), looked up once per
// chunk and cached. Anything else (filters, conversions, partial-width chunks,
// unallocated chunks) goes through H5Dread.
#pragma once

#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/hdf5_handle.hpp"
#include "conveyor/source/detail/mapped_file.hpp"

namespace conveyor::detail {

class hdf5_direct_rows {
 public:
  // Returns a reader when `dataset` qualifies, nullopt otherwise. Call inside an
  // hdf5_session. `row_bytes` is the bytes of one record in memory.
  static std::unique_ptr<hdf5_direct_rows> open(hid_t dataset, hid_t memory_type,
                                                const std::string& file_name,
                                                const std::vector<hsize_t>& dims,
                                                std::uint64_t row_bytes) {
#if H5_VERSION_GE(1, 10, 5)
    if (row_bytes == 0) return nullptr;
    hdf5_id file_type(H5Dget_type(dataset), H5Tclose);
    if (H5Tequal(file_type.get(), memory_type) <= 0) return nullptr;
    hdf5_id create(H5Dget_create_plist(dataset), H5Pclose);
    if (H5Pget_nfilters(create.get()) != 0 || H5Pget_external_count(create.get()) > 0) return nullptr;
    std::unique_ptr<hdf5_direct_rows> direct(new hdf5_direct_rows(file_name, row_bytes));
    const auto layout = H5Pget_layout(create.get());
    if (layout == H5D_CONTIGUOUS) {
      const haddr_t offset = H5Dget_offset(dataset);
      if (offset == HADDR_UNDEF) return nullptr;  // never written: HDF5 supplies fill values
      if (!direct->fits(offset, dims[0] * row_bytes)) return nullptr;
      direct->contiguous_offset_ = offset;
      return direct;
    }
    if (layout != H5D_CHUNKED) return nullptr;
    std::vector<hsize_t> chunk(dims.size());
    H5Pget_chunk(create.get(), static_cast<int>(chunk.size()), chunk.data());
    for (std::size_t d = 1; d < dims.size(); ++d)
      if (chunk[d] != dims[d]) return nullptr;  // a chunk holds slices of rows
    direct->dataset_ = dataset;
    direct->rank_ = dims.size();
    direct->chunk_rows_ = chunk[0];
    const auto chunks = (dims[0] + chunk[0] - 1) / chunk[0];
    direct->chunk_offsets_ = std::make_unique<std::atomic<std::uint64_t>[]>(chunks);
    for (std::uint64_t c = 0; c < chunks; ++c) direct->chunk_offsets_[c].store(not_looked_up);
    return direct;
#else
    (void)dataset, (void)memory_type, (void)file_name, (void)dims, (void)row_bytes;
    return nullptr;
#endif
  }

  // Copies rows [first, first + count) to `out`; false if some chunk is not
  // allocated (the caller falls back to H5Dread). Thread-safe.
  bool copy_rows(std::uint64_t first, std::uint64_t count, std::byte* out) const {
    const auto* base = file_.bytes().data();
    if (contiguous_offset_) {
      std::memcpy(out, base + *contiguous_offset_ + first * row_bytes_, count * row_bytes_);
      return true;
    }
    while (count > 0) {
      const auto chunk = first / chunk_rows_;
      const auto within = first % chunk_rows_;
      const auto take = std::min(count, chunk_rows_ - within);
      const auto offset = chunk_offset(chunk);
      if (offset == unallocated) return false;
      std::memcpy(out, base + offset + within * row_bytes_, take * row_bytes_);
      out += take * row_bytes_;
      first += take;
      count -= take;
    }
    return true;
  }

 private:
  static constexpr std::uint64_t not_looked_up = 0;  // address 0 is the superblock
  static constexpr std::uint64_t unallocated = ~std::uint64_t{0};

  hdf5_direct_rows(const std::string& file_name, std::uint64_t row_bytes)
      : file_(file_name), row_bytes_(row_bytes) {}

  bool fits(std::uint64_t offset, std::uint64_t bytes) const {
    const auto size = static_cast<std::uint64_t>(file_.bytes().size());
    return offset <= size && bytes <= size - offset;
  }

  std::uint64_t chunk_offset(std::uint64_t chunk) const {
    auto known = chunk_offsets_[chunk].load(std::memory_order_acquire);
    if (known != not_looked_up) return known;
    std::uint64_t found = unallocated;
#if H5_VERSION_GE(1, 10, 5)
    hdf5_session session;
    std::vector<hsize_t> coordinates(rank_, 0);
    coordinates[0] = chunk * chunk_rows_;
    unsigned filter_mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t stored_bytes = 0;
    if (H5Dget_chunk_info_by_coord(dataset_, coordinates.data(), &filter_mask, &address,
                                   &stored_bytes) < 0)
      throw io_error("cannot locate chunk " + std::to_string(chunk) + ": " +
                         session.error_stack_text(),
                     file_.name(), chunk * chunk_rows_);
    if (address != HADDR_UNDEF) {
      if (stored_bytes < chunk_rows_ * row_bytes_ || !fits(address, chunk_rows_ * row_bytes_))
        throw data_error("chunk " + std::to_string(chunk) + " lies outside the file or is short",
                         file_.name(), chunk * chunk_rows_, address);
      found = address;
    }
#endif
    chunk_offsets_[chunk].store(found, std::memory_order_release);
    return found;
  }

  mapped_file file_;
  std::uint64_t row_bytes_;
  std::optional<std::uint64_t> contiguous_offset_;
  hid_t dataset_ = H5I_INVALID_HID;  // owned by hdf5_dataset, which owns *this
  std::size_t rank_ = 0;
  std::uint64_t chunk_rows_ = 0;
  std::unique_ptr<std::atomic<std::uint64_t>[]> chunk_offsets_;
};

}  // namespace conveyor::detail
