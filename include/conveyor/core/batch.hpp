// conveyor/core/batch.hpp: the unit that flows after batch(n).
//
// A batch is a set of named, typed columns (see column.hpp) plus the record
// indices it holds and where it sits in the epoch. Its column set is part of
// its type: `record_batch<dense<"x", float>, dense<"y", float>>`. Asking for a column
// the batch lacks is a compile error that names the column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "conveyor/core/column.hpp"
#include "conveyor/core/fixed_string.hpp"
#include "conveyor/core/text.hpp"

namespace conveyor {

/// Where a batch sits: its epoch and its number within the epoch (per rank).
struct batch_info {
  std::uint64_t epoch = 0;
  std::uint64_t number = 0;
};

/// A batch without its columns: where it sits and each row's record index.
/// A stage that makes a new batch type moves these from its input
/// (`record_batch<Out...>(std::move(in).take_rows())`) instead of copying.
struct batch_rows {
  batch_info info;
  dense_column<std::uint64_t> indices;
};

template <class... Columns>
class record_batch;

namespace detail {

inline constexpr std::size_t no_column = static_cast<std::size_t>(-1);

template <fixed_string Name, class... Columns>
consteval std::size_t column_index() {
  std::size_t index = no_column;
  std::size_t i = 0;
  ((Columns::name == Name && index == no_column ? (index = i, ++i) : ++i), ...);
  return index;
}

template <class... Columns>
consteval bool names_are_unique() {
  constexpr std::string_view names[] = {std::string_view(Columns::name.view())..., ""};
  for (std::size_t i = 0; i < sizeof...(Columns); ++i)
    for (std::size_t j = i + 1; j < sizeof...(Columns); ++j)
      if (names[i] == names[j]) return false;
  return true;
}

template <class T>
inline constexpr bool dependent_false = false;

/// How compile errors show a batch type: as it is under g++; under clang as
/// its columns' names spelled out (see readable_name) and storage types.
template <class Name, class Storage>
struct column_spelled {};
template <class... Columns>
struct batch_columns {};
template <class Batch>
struct readable_batch_of {
  using type = Batch;
};
#if defined(__clang__)
template <class... Columns>
struct readable_batch_of<record_batch<Columns...>> {
  using type =
      batch_columns<column_spelled<readable_name<Columns::name>, typename Columns::storage>...>;
};
#endif
template <class Batch>
using readable_batch = typename readable_batch_of<Batch>::type;

// READ THIS IF YOUR COMPILE BREAKS HERE: the template argument `Name` below is
// the column you asked for; `Batch` lists the columns upstream produces.
template <class Name, class Batch>
struct column_is_missing {
  static_assert(dependent_false<Batch>,
                "conveyor: the batch has no column with this name (see Name in the instantiation "
                "above). Produce it upstream, e.g. decode(... >> column<\"name\">), or fix the name.");
};

}  // namespace detail

/// A batch of rows with the given columns. Move-only (columns own pooled
/// memory). Thread-compatible: one thread at a time.
template <class... Columns>
class record_batch {
  static_assert(detail::names_are_unique<Columns...>(),
                "conveyor: two columns of a batch share a name; give each decoder output its own name.");

 public:
  using column_types = std::tuple<Columns...>;
  static constexpr std::size_t column_count = sizeof...(Columns);

  record_batch() = default;
  /// Allocates the index column for `rows` rows; columns are left empty for
  /// the producing stage to fill.
  record_batch(std::shared_ptr<buffer_pool> pool, batch_info info, std::span<const std::uint64_t> indices)
      : info_(info), indices_(std::move(pool), indices.size(), 1) {
    std::copy(indices.begin(), indices.end(), indices_.data());
  }
  /// Takes the rows (info and index column) of another batch; columns empty.
  explicit record_batch(batch_rows rows) noexcept : info_(rows.info), indices_(std::move(rows.indices)) {}

  /// Gives up this batch's rows (for the next stage's batch); columns are dropped.
  [[nodiscard]] batch_rows take_rows() && noexcept { return {info_, std::move(indices_)}; }

  [[nodiscard]] std::size_t rows() const noexcept { return indices_.rows(); }
  [[nodiscard]] const batch_info& info() const noexcept { return info_; }
  [[nodiscard]] std::uint64_t epoch() const noexcept { return info_.epoch; }
  [[nodiscard]] std::uint64_t number() const noexcept { return info_.number; }
  /// The source record index of each row.
  [[nodiscard]] std::span<const std::uint64_t> indices() const noexcept { return indices_.values(); }

  template <fixed_string Name>
  static constexpr bool has_column = detail::column_index<Name, Columns...>() != detail::no_column;
  /// The spec of column `Name` (dense<...>, bytes<...>, text<...>); it must exist.
  template <fixed_string Name>
  using column_spec = std::tuple_element_t<detail::column_index<Name, Columns...>(), column_types>;

  /// The storage of column `Name`: dense_column<T, Space>, bytes_column or text_column.
  template <fixed_string Name>
  [[nodiscard]] auto& get() noexcept {
    constexpr auto index = detail::column_index<Name, Columns...>();
    if constexpr (index == detail::no_column) {
      static_assert(sizeof(detail::column_is_missing<detail::readable_name<Name>,
                                                     detail::readable_batch<record_batch>>) > 0);
      return indices_;  // never reached: the assertion above stops the build
    } else {
      return std::get<index>(columns_);
    }
  }
  template <fixed_string Name>
  [[nodiscard]] const auto& get() const noexcept {
    return const_cast<record_batch*>(this)->template get<Name>();
  }
  template <column_name_type Column>  // not column_name<Name>: see column_name_type
  [[nodiscard]] auto& operator[](Column) noexcept {
    return get<Column::name>();
  }

  /// All columns, in declaration order (for structured bindings and generic code).
  [[nodiscard]] auto& columns() noexcept { return columns_; }
  [[nodiscard]] const auto& columns() const noexcept { return columns_; }

  /// Bytes held by the columns (not counting pool slack).
  [[nodiscard]] std::size_t size_bytes() const noexcept {
    return indices_.size_bytes() + std::apply([](const auto&... c) { return (std::size_t{0} + ... + c.size_bytes()); }, columns_);
  }

  /// Keeps the rows whose keep[r] is nonzero, in order, in the index column
  /// and every column (how a stage drops records under the skip policy).
  void keep_rows(std::span<const std::uint8_t> keep) noexcept {
    indices_.keep_rows(keep);
    std::apply([&](auto&... c) { (c.keep_rows(keep), ...); }, columns_);
  }

 private:
  batch_info info_;
  dense_column<std::uint64_t> indices_;
  std::tuple<typename Columns::storage...> columns_;
};

/// Is B a record_batch<...>?
template <class B>
inline constexpr bool is_batch_v = false;
template <class... C>
inline constexpr bool is_batch_v<record_batch<C...>> = true;

/// A batch type that has a column `Name`.
template <class B, fixed_string Name>
concept batch_with_column = is_batch_v<std::remove_cvref_t<B>> && std::remove_cvref_t<B>::template has_column<Name>;

}  // namespace conveyor
