// conveyor/source/hdf5_source.hpp: numeric HDF5 datasets as a pipeline source,
// one dataset per dense column. Opt-in: link `conveyor::hdf5`.
//
// What: record i of the source is row i (dimension 0) of every dataset, so
// "/train/x" (N, 1024) and "/train/y" (N,) of one file read as the aligned
// columns of one record. Call forms:
//   hdf5_source<dense<"x", float>>("train.h5", "/train/x")            one column
//   hdf5_source<dense<"x", float>>("train.h5", "/train/x", 1024)      ... width checked
//   hdf5_source<dense<"x", float>, dense<"y", std::int64_t>>(
//       "train.h5", {"/train/x", "/train/y"}, {1024, 1}, options)     aligned columns
// and the class itself, hdf5_column_source<Columns...>(file, datasets, widths,
// options).
// Columns out: each `dense<"name", T>`, rows x width where width is the
// product of the dataset's dimensions after the first. T must be the dataset's
// native element type exactly (see hdf5.hpp: HDF5 converts byte order, an enum
// reads as its integer type, a half-float dataset as float32); strings and
// compound datasets cannot be dense columns.
// Allocates: per batch, the index column and one dense column per dataset
// from the pool the pipeline gives it (the sink's when it delivers the
// column), plus what hdf5_dataset::read allocates (the batch's order; on the
// H5Dread path a selection plan and, for unsorted batches, a staging buffer).
// On the direct path rows go from the file's memory map straight into the column.
// Thread: read() is const and runs on whichever thread reads the batch
// (parallel(n) workers included); copies of the source share the open
// datasets. See hdf5.hpp for how HDF5 calls are serialized.
// Errors, at open: io_error for a missing file; data_error naming the file
// (and in the message the dataset) for a file that is not HDF5, a missing or
// scalar dataset, a dtype or width that is not the column's (message: column,
// dataset, expected dtype and width, found dtype, record shape and dataset
// shape), and datasets with different record counts (message: both columns,
// datasets and counts). On read: io_error naming the file and first record of
// the batch when HDF5 fails (retried under retry(n)); an index past the end is
// std::out_of_range (a bug upstream, never skipped).
// Cost: per dataset one sort of the batch's indices, then on the direct path
// one memcpy per run of consecutive records, else one H5Dread per batch (per
// block beyond max_selection_blocks); see docs/source-binary.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/binary_column.hpp"
#include "conveyor/source/hdf5.hpp"

namespace conveyor {

/// Datasets of one HDF5 file as a record_source: see the top of this header.
template <class... Columns>
class hdf5_column_source {
  static_assert(sizeof...(Columns) >= 1,
                "conveyor: hdf5_source needs a column, e.g. "
                "hdf5_source<dense<\"x\", float>>(\"train.h5\", \"/x\")");
  static_assert((detail::numeric_dense_spec<Columns> && ...),
                "conveyor: hdf5_source fills dense<\"name\", T> columns with T one of bool, "
                "int8_t ... uint64_t, float, double: the dataset's element type");
  static_assert(
      (host_accessible(space_of<Columns>()) && ...),
      "conveyor: hdf5_source copies rows with the CPU, so its columns live in host memory "
      "(dense<\"x\", T> or dense<\"x\", T, memory_space::pinned>); copy them to the "
      "device in a later stage");

 public:
  using batch_type = record_batch<Columns...>;
  static constexpr std::size_t column_count = sizeof...(Columns);
  /// Per column, the path of its dataset in the file (e.g. "/train/x").
  using datasets_type = std::array<std::string, column_count>;
  /// Per column, the values per record the pipeline expects; nullopt: any.
  using widths_type = std::array<std::optional<std::uint64_t>, column_count>;

  /// Opens and checks every dataset (see the errors at the top of this
  /// header). Allocates the datasets' handles and metadata and the name;
  /// computes the fingerprint (which maps the file once to sample it).
  hdf5_column_source(const std::filesystem::path& file, const datasets_type& datasets,
                     const widths_type& widths = {}, hdf5_options options = {}) {
    static constexpr std::array<std::string_view, column_count> names{Columns::name.view()...};
    static constexpr std::array<element_type, column_count> dtypes{
        element_type_of<typename Columns::value_type>...};
    auto opened = std::make_shared<std::vector<hdf5_dataset>>();
    opened->reserve(column_count);
    std::uint64_t h = detail::combine(detail::salt::source, detail::file_fingerprint(file));
    name_ = file.filename().string() + ":";
    for (std::size_t c = 0; c < column_count; ++c) {
      const auto& dataset = opened->emplace_back(
          detail::open_column(names[c], [&] { return hdf5_dataset(file, datasets[c], options); }));
      check_layout(dataset, names[c], dtypes[c], widths[c]);
      const auto& first = opened->front();
      if (dataset.size() != first.size())
        throw data_error(detail::count_mismatch(names[0], describe(first), first.size(), names[c],
                                                describe(dataset), dataset.size()),
                         dataset.file());
      name_ += (c == 0 ? "" : ",") + datasets[c];
      h = detail::combine_column(detail::combine(h, detail::fnv1a(datasets[c])), names[c],
                                 dtypes[c], dataset.elements_per_record());
    }
    datasets_ = std::move(opened);
    fingerprint_ = h;
  }

  /// Records: dimension 0, the same in every dataset.
  [[nodiscard]] std::uint64_t size() const noexcept { return datasets_->front().size(); }
  /// "file.h5:/x,/y": the stage's label in stats.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// Path, size, modification time and sampled bytes of the file, and each
  /// column's dataset path, name, dtype and width.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return fingerprint_; }
  /// The dataset behind column `c` (in the order of Columns).
  [[nodiscard]] const hdf5_dataset& dataset(std::size_t c) const { return datasets_->at(c); }

  /// Reads records `indices` (any order, repeats allowed) into a batch from
  /// ctx.pool, rows in the order given.
  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    [&]<std::size_t... C>(std::index_sequence<C...>) {
      (read_column<Columns>((*datasets_)[C], indices, ctx, out), ...);
    }
    (std::index_sequence_for<Columns...>{});
    return out;
  }

 private:
  static std::string describe(const hdf5_dataset& dataset) {
    return dataset.file() + ", dataset '" + dataset.dataset_path() + "'";
  }

  static void check_layout(const hdf5_dataset& dataset, std::string_view column, element_type dtype,
                           std::optional<std::uint64_t> width) {
    const auto& layout = dataset.layout();
    std::vector<std::uint64_t> shape{dataset.size()};
    shape.insert(shape.end(), layout.shape.begin(), layout.shape.end());
    std::string problem;
    if (dataset.content() != hdf5_content::numeric) {
      shape.pop_back();  // the element size hdf5_dataset appends to a non-numeric layout
      const auto bytes = std::to_string(layout.shape.back()) + "-byte ";
      const auto content = dataset.content() == hdf5_content::compound ? bytes + "compound records"
                           : dataset.content() == hdf5_content::fixed_string
                               ? bytes + "fixed-length strings"
                               : std::string("variable-length strings");
      problem = "column '" + std::string(column) + "' expects " +
                std::string(element_type_name(dtype)) + " records, the dataset holds " + content +
                " (dataset shape " + detail::shape_text(shape) + ")";
    } else {
      problem = detail::layout_mismatch(column, dtype, width, layout, shape);
    }
    if (!problem.empty())
      throw data_error("dataset '" + dataset.dataset_path() + "': " + problem, dataset.file());
  }

  template <class Column>
  static void read_column(const hdf5_dataset& dataset, std::span<const std::uint64_t> indices,
                          const stage_context& ctx, batch_type& out) {
    typename Column::storage values(ctx.pool_for(Column::name.view()), indices.size(),
                                    dataset.elements_per_record());
    dataset.read(indices, values.values());
    out.template get<Column::name>() = std::move(values);
  }

  std::shared_ptr<const std::vector<hdf5_dataset>> datasets_;
  std::string name_;
  std::uint64_t fingerprint_ = 0;
};

/// hdf5_source<Column>(file, dataset, width, options): one dataset, one column.
template <class Column>
hdf5_column_source<Column> hdf5_source(const std::filesystem::path& file, std::string dataset,
                                       std::optional<std::uint64_t> width = std::nullopt,
                                       hdf5_options options = {}) {
  return hdf5_column_source<Column>(file, {std::move(dataset)}, {width}, options);
}

/// hdf5_source<Columns...>(file, {datasets...}, {widths...}, options): aligned
/// datasets of one file, one per column, in the order of Columns.
template <class... Columns>
requires(sizeof...(Columns) >= 2) hdf5_column_source<Columns...> hdf5_source(
    const std::filesystem::path& file,
    const typename hdf5_column_source<Columns...>::datasets_type& datasets,
    const typename hdf5_column_source<Columns...>::widths_type& widths = {},
    hdf5_options options = {}) {
  return hdf5_column_source<Columns...>(file, datasets, widths, options);
}

}  // namespace conveyor
