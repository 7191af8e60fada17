// conveyor/source/detail/binary_column.hpp: what the binary pipeline sources
// (.npy, fixed-width records, HDF5) share: which column specs they fill, the
// checks at open that a file holds what a column declares, the messages that
// name both sides, the gather of rows into a dense column, and the file
// fingerprint.
//
// Why the checks happen at open: a dtype or width mismatch is a property of the
// whole file, so finding it in the first batch of the first epoch (on a worker
// thread, wrapped in a stage_error) only delays the same answer.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/mapped_file.hpp"
#include "conveyor/source/detail/row_gather.hpp"
#include "conveyor/source/element_type.hpp"

namespace conveyor::detail {

// A column spec a binary source can fill: dense<"name", T, Space>, T a numeric
// element; its storage must be host memory (the rows are copied by the CPU).
template <class Column>
concept numeric_dense_spec = requires {
  typename Column::value_type;
  typename Column::storage;
  Column::name;
}
&&std::same_as<typename Column::storage,
               dense_column<typename Column::value_type, space_of<Column>()>>&&
    numeric_element<typename Column::value_type>;

// "(1000, 32, 32)", "(1000,)", "()": as numpy prints a shape.
inline std::string shape_text(std::span<const std::uint64_t> shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

// "1 value", "32 values".
inline std::string values_text(std::uint64_t count) {
  return std::to_string(count) + (count == 1 ? " value" : " values");
}

// The sentence naming what a column expects and what the file holds when they
// differ (dtype, or width when one is stated); empty when they agree. Exact
// dtype match: nothing is converted, so a float64 file is not read as float32.
inline std::string layout_mismatch(std::string_view column, element_type expected,
                                   std::optional<std::uint64_t> width, const record_layout& found,
                                   std::span<const std::uint64_t> array_shape) {
  if (found.dtype == expected && (!width || *width == found.elements())) return {};
  std::string text = "column '" + std::string(column) + "' expects " +
                     std::string(element_type_name(expected)) + " records" +
                     (width ? " of " + values_text(*width) : std::string()) + ", the file holds " +
                     std::string(element_type_name(found.dtype)) + " records of shape " +
                     shape_text(found.shape) + " = " + values_text(found.elements());
  if (!array_shape.empty()) text += " (array shape " + shape_text(array_shape) + ")";
  return text;
}

// The sentence naming two columns whose files disagree on the record count.
inline std::string count_mismatch(std::string_view first_column, const std::string& first_file,
                                  std::uint64_t first_records, std::string_view column,
                                  const std::string& file, std::uint64_t records) {
  return "columns must hold the same number of records: column '" + std::string(first_column) +
         "' (" + first_file + ") holds " + std::to_string(first_records) + ", column '" +
         std::string(column) + "' (" + file + ") holds " + std::to_string(records);
}

// Runs `open` and prefixes the column's name to a conveyor error it throws, so a
// bad file among several says which column it was meant for.
template <class Open>
auto open_column(std::string_view column, Open&& open) -> decltype(open()) {
  try {
    return open();
  } catch (const data_error& bad) {
    throw data_error("column '" + std::string(column) + "': " + bad.message(), bad.where());
  } catch (const io_error& failed) {
    throw io_error("column '" + std::string(column) + "': " + failed.message(), failed.where());
  }
}

// Rows `requests` (in storage order) of a row-major store, copied straight into
// a new dense column in the caller's order, allocated from the pool the
// pipeline gives that column (the sink's when it delivers it); big-endian
// storage is swapped in place, bools made 0/1. One pool allocation, no other.
template <class Column>
typename Column::storage gather_column(const stage_context& ctx,
                                       std::span<const row_request> requests, const std::byte* rows,
                                       std::size_t width, bool big_endian) {
  using value_type = typename Column::value_type;
  typename Column::storage column(ctx.pool_for(Column::name.view()), requests.size(), width);
  const auto out = std::as_writable_bytes(column.values());
  gather_rows(rows, width * sizeof(value_type), requests, out);
  if (big_endian) byteswap_elements(out, sizeof(value_type));
  if constexpr (std::is_same_v<value_type, bool>) normalize_bools(out);
  return column;
}

// Folds a column's identity (name, dtype, width) into a fingerprint: the same
// file read as another column or type is another dataset to a cache.
inline std::uint64_t combine_column(std::uint64_t h, std::string_view column, element_type dtype,
                                    std::uint64_t width) {
  return combine(combine(combine(h, fnv1a(column)), static_cast<std::uint64_t>(dtype)), width);
}

// A file's identity and content: path, size, modification time, and sampled
// bytes (the first and last 4 KiB and 14 slices of 256 bytes between), so an
// edit in place is seen without reading the whole file. Maps the file for the
// call; io_error when it cannot.
inline std::uint64_t file_fingerprint(const std::filesystem::path& path) {
  const mapped_file file(path);
  const auto bytes = file.bytes();
  std::uint64_t h = combine(fnv1a(file.name(), salt::source), bytes.size());
  std::error_code code;
  const auto modified = std::filesystem::last_write_time(path, code);
  h = combine(h, code ? 0 : static_cast<std::uint64_t>(modified.time_since_epoch().count()));
  constexpr std::size_t edge = 4096, slice = 256, slices = 14;
  auto sample = [&](std::size_t at, std::size_t count) {
    h = combine(h, hash_bytes(bytes.data() + at, count));
  };
  sample(0, std::min(edge, bytes.size()));
  if (bytes.size() > edge) sample(bytes.size() - edge, edge);
  if (bytes.size() > 2 * edge)
    for (std::size_t k = 1; k <= slices; ++k) sample(bytes.size() / (slices + 1) * k, slice);
  return h;
}

}  // namespace conveyor::detail
