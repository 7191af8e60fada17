// conveyor/source/npy_source.hpp: .npy files as a pipeline source, one file per
// dense column.
//
// What: record i of the source is row i (the first dimension) of every file,
// so features.npy (N, 32, 32) and labels.npy (N,) read as the aligned columns
// of one record. Call forms:
//   npy_source<dense<"x", float>>("x.npy")                  one file, one column
//   npy_source<dense<"x", float>>("x.npy", 1024)            ... width checked
//   npy_source<dense<"bits", std::uint8_t>, dense<"y", float>>(
//       {"features.npy", "labels.npy"}, {1024, std::nullopt})  aligned columns
// and the class itself, npy_column_source<Columns...>(paths, widths).
// Columns out: each `dense<"name", T>`, rows x width where width is the
// product of the file's dimensions after the first. T must be the file's dtype
// exactly (bool, int8_t ... uint64_t, conveyor::float16, float, double):
// nothing is converted, so a float64 file is not silently narrowed to float32.
// Big-endian files are swapped on read.
// Allocates: per batch, the index column and one dense column per file from
// the pool the pipeline gives it (the sink's, pinned say, when the pipeline
// delivers that column): rows are copied from the mapping straight into it.
// Plus one vector of `rows` (index, position) pairs to order the batch;
// nothing per record.
// Thread: read() is const and runs on whichever thread reads the batch
// (parallel(n) workers included); copies of the source share the open files.
// Errors, at open: io_error for a missing file; data_error naming the file and
// byte offset for a malformed or truncated file (npy.hpp), for a dtype or
// width that is not the column's (message: the column, expected dtype and
// width, found dtype, record shape and array shape), and for files that hold
// different record counts (message: both columns, files and counts). Reads do
// not fail once open: the mapping was checked; an index past the end is
// std::out_of_range (a bug upstream, never skipped).
// Cost: one sort of the batch's indices (skipped when already ascending), then
// per column one memcpy per run of consecutive records; the page cache does
// the I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/binary_column.hpp"
#include "conveyor/source/detail/row_gather.hpp"
#include "conveyor/source/npy.hpp"

namespace conveyor {

/// One or more .npy files as a record_source: see the top of this header.
template <class... Columns>
class npy_column_source {
  static_assert(
      sizeof...(Columns) >= 1,
      "conveyor: npy_source needs a column, e.g. npy_source<dense<\"x\", float>>(\"x.npy\")");
  static_assert((detail::numeric_dense_spec<Columns> && ...),
                "conveyor: npy_source fills dense<\"name\", T> columns with T one of bool, "
                "int8_t ... uint64_t, conveyor::float16, float, double: the file's dtype");
  static_assert((host_accessible(space_of<Columns>()) && ...),
                "conveyor: npy_source copies rows with the CPU, so its columns live in host memory "
                "(dense<\"x\", T> or dense<\"x\", T, memory_space::pinned>); copy them to the "
                "device in a later stage");

 public:
  using batch_type = record_batch<Columns...>;
  static constexpr std::size_t column_count = sizeof...(Columns);
  using paths_type = std::array<std::filesystem::path, column_count>;
  /// Per column, the values per record the pipeline expects; nullopt: any.
  using widths_type = std::array<std::optional<std::uint64_t>, column_count>;

  /// Maps and checks every file (see the errors at the top of this header).
  /// Allocates the files' metadata and the name; computes the fingerprint.
  explicit npy_column_source(const paths_type& paths, const widths_type& widths = {}) {
    static constexpr std::array<std::string_view, column_count> names{Columns::name.view()...};
    static constexpr std::array<element_type, column_count> dtypes{
        element_type_of<typename Columns::value_type>...};
    auto files = std::make_shared<std::vector<npy_file>>();
    files->reserve(column_count);
    std::uint64_t h = detail::salt::source;
    for (std::size_t c = 0; c < column_count; ++c) {
      if (paths[c].empty())
        throw std::invalid_argument("npy_source: column '" + std::string(names[c]) +
                                    "' has no file (" + std::to_string(column_count) +
                                    " columns need " + std::to_string(column_count) + " paths)");
      const auto& file =
          files->emplace_back(detail::open_column(names[c], [&] { return npy_file(paths[c]); }));
      const auto problem =
          detail::layout_mismatch(names[c], dtypes[c], widths[c], file.layout(), file.shape());
      if (!problem.empty())
        throw data_error(problem, file.path(), unknown_position, file.header_offset());
      const auto& first = files->front();
      if (file.size() != first.size())
        throw data_error(detail::count_mismatch(names[0], first.path(), first.size(), names[c],
                                                file.path(), file.size()),
                         file.path(), unknown_position, file.header_offset());
      name_ += (c == 0 ? "" : "+") + paths[c].filename().string();
      h = detail::combine_column(detail::combine(h, detail::file_fingerprint(paths[c])), names[c],
                                 dtypes[c], file.layout().elements());
    }
    files_ = std::move(files);
    fingerprint_ = h;
  }

  /// Records: the first dimension, the same in every file.
  [[nodiscard]] std::uint64_t size() const noexcept { return files_->front().size(); }
  /// The files' names joined with '+': the stage's label in stats.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// Paths, sizes, modification times and sampled bytes of the files, and the
  /// columns' names, dtypes and widths: a changed file gets a new fingerprint.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return fingerprint_; }
  /// The file behind column `c` (in the order of Columns).
  [[nodiscard]] const npy_file& file(std::size_t c) const { return files_->at(c); }

  /// Reads records `indices` (any order, repeats allowed) into a batch from
  /// ctx.pool, rows in the order given.
  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    detail::check_indices(indices, size(), name_);
    const auto requests = detail::storage_order(indices);
    batch_type out(ctx.pool, ctx.info, indices);
    [&]<std::size_t... C>(std::index_sequence<C...>) {
      ((out.template get<Columns::name>() = detail::gather_column<Columns>(
            ctx, requests, (*files_)[C].data().data(), (*files_)[C].layout().elements(),
            (*files_)[C].big_endian())),
       ...);
    }
    (std::index_sequence_for<Columns...>{});
    return out;
  }

 private:
  std::shared_ptr<const std::vector<npy_file>> files_;
  std::string name_;
  std::uint64_t fingerprint_ = 0;
};

/// npy_source<Column>(path, width): one .npy file as one dense column.
template <class Column>
npy_column_source<Column> npy_source(const std::filesystem::path& path,
                                     std::optional<std::uint64_t> width = std::nullopt) {
  return npy_column_source<Column>({path}, {width});
}

/// npy_source<Columns...>({paths...}, {widths...}): aligned .npy files, one per
/// column, in the order of Columns.
template <class... Columns>
requires(sizeof...(Columns) >= 2) npy_column_source<Columns...> npy_source(
    const typename npy_column_source<Columns...>::paths_type& paths,
    const typename npy_column_source<Columns...>::widths_type& widths = {}) {
  return npy_column_source<Columns...>(paths, widths);
}

}  // namespace conveyor
