// conveyor/source/binary_records_source.hpp: a file of fixed-width binary
// records as a pipeline source with one dense column.
//
// What: `header_bytes`, then records of `layout.bytes()` bytes each
// (binary_records.hpp); record i is the i-th. Call forms:
//   binary_records_source<dense<"x", float>>("x.bin", {.header_bytes = 16,
//       .layout = {element_type::float32, {1024}}})
// and the class itself, binary_records_column_source<Column>(path, options).
// Columns out: `dense<"name", T>`, rows x layout.elements(), little-endian.
// T must be layout.dtype exactly (nothing is converted).
// Allocates: per batch, the index column and one dense column from the pool
// the pipeline gives it (the sink's when the pipeline delivers the column):
// rows are copied from the mapping straight into it. Plus one vector of `rows`
// (index, position) pairs to order the batch; nothing per record.
// Thread: read() is const and runs on whichever thread reads the batch
// (parallel(n) workers included); copies of the source share the open file.
// Errors, at open: io_error for a missing file; data_error naming the file,
// record and byte offset when the file is not header + whole records;
// std::invalid_argument naming the file, the column's dtype and the layout's
// when they differ (both are the caller's declarations, not the file's
// content). Reads do not fail once open; an index past the end is
// std::out_of_range (a bug upstream, never skipped).
// Cost: one sort of the batch's indices (skipped when already ascending), then
// one memcpy per run of consecutive records; the page cache does the I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/source/binary_records.hpp"
#include "conveyor/source/detail/binary_column.hpp"
#include "conveyor/source/detail/row_gather.hpp"

namespace conveyor {

/// A fixed-width records file as a record_source: see the top of this header.
template <class Column>
class binary_records_column_source {
  static_assert(detail::numeric_dense_spec<Column>,
                "conveyor: binary_records_source fills a dense<\"name\", T> column with T one of "
                "bool, int8_t ... uint64_t, conveyor::float16, float, double: the layout's dtype");
  static_assert(host_accessible(space_of<Column>()),
                "conveyor: binary_records_source copies rows with the CPU, so its columns live in "
                "host memory "
                "(dense<\"x\", T> or dense<\"x\", T, memory_space::pinned>); copy them to the "
                "device in a later stage");

 public:
  using value_type = typename Column::value_type;
  using batch_type = record_batch<Column>;

  /// Maps and checks `path` (see the errors at the top of this header).
  /// Allocates the path and the name; computes the fingerprint.
  binary_records_column_source(const std::filesystem::path& path, binary_records_options options) {
    constexpr auto column = Column::name.view();
    constexpr auto dtype = element_type_of<value_type>;
    if (options.layout.dtype != dtype)
      throw std::invalid_argument(
          path.string() + ": column '" + std::string(column) + "' holds " +
          std::string(element_type_name(dtype)) + ", the record layout says " +
          std::string(element_type_name(options.layout.dtype)) + " records of shape " +
          detail::shape_text(options.layout.shape) + "; state the column's dtype in the layout");
    file_ = std::make_shared<const binary_records_file>(
        detail::open_column(column, [&] { return binary_records_file(path, std::move(options)); }));
    name_ = path.filename().string();
    fingerprint_ = detail::combine_column(
        detail::combine(detail::combine(detail::salt::source, detail::file_fingerprint(path)),
                        file_->header_bytes()),
        column, dtype, file_->layout().elements());
  }

  /// Records in the file.
  [[nodiscard]] std::uint64_t size() const noexcept { return file_->size(); }
  /// The file's name (without directories): the stage's label in stats.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// Path, size, modification time and sampled bytes of the file, the header
  /// size and the column's name, dtype and width.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return fingerprint_; }
  [[nodiscard]] const binary_records_file& file() const noexcept { return *file_; }

  /// Reads records `indices` (any order, repeats allowed) into a batch from
  /// ctx.pool, rows in the order given.
  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    detail::check_indices(indices, size(), file_->path());
    batch_type out(ctx.pool, ctx.info, indices);
    out.template get<Column::name>() =
        detail::gather_column<Column>(ctx, detail::storage_order(indices), file_->data().data(),
                                      file_->layout().elements(), false);
    return out;
  }

 private:
  std::shared_ptr<const binary_records_file> file_;
  std::string name_;
  std::uint64_t fingerprint_ = 0;
};

/// binary_records_source<Column>(path, options): see the top of this header.
template <class Column>
binary_records_column_source<Column> binary_records_source(const std::filesystem::path& path,
                                                           binary_records_options options) {
  return binary_records_column_source<Column>(path, std::move(options));
}

}  // namespace conveyor
