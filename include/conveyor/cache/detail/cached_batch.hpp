// conveyor/cache/detail/cached_batch.hpp: a record_batch's rows to and from
// the per-record values of row_codec.hpp, for the cache stage.
//
// Why the type tag hashes names, kinds and dtypes: two chains that happen to
// share a key (a renamed column, float -> double) must never read each
// other's bytes as their own; the tag turns that into a counted miss.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/row_codec.hpp"
#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"

namespace conveyor::detail {

template <class Column>
concept dense_column_spec = requires {
  typename Column::value_type;
  requires std::same_as<typename Column::storage, dense_column<typename Column::value_type>>;
};
template <class Column>
concept bytes_column_spec = std::same_as<typename Column::storage, bytes_column>;

template <class Batch>
inline constexpr bool cacheable_batch_v = false;
template <class... Columns>
inline constexpr bool cacheable_batch_v<record_batch<Columns...>> =
    ((dense_column_spec<Columns> || bytes_column_spec<Columns>) && ...);

/// The compiler's spelling of T (stable within one compiler, which is all the
/// tag needs: another compiler's values are then misses, never wrong rows).
template <class T>
consteval std::string_view spelled_type() {
  return __PRETTY_FUNCTION__;
}

template <class T>
constexpr void hash_dtype(std::uint64_t& h) {
  auto add = [&h](std::string_view text) { h = fnv1a(text, h); };
  if constexpr (std::is_same_v<T, bool>) {
    add("b");
  } else if constexpr (std::is_floating_point_v<T>) {
    add("f");
  } else if constexpr (std::is_integral_v<T>) {
    add(std::is_signed_v<T> ? "i" : "u");
  } else {
    add(spelled_type<T>());
  }
  const char size[2] = {static_cast<char>('0' + sizeof(T) % 10), static_cast<char>('0' + sizeof(T) / 10 % 10)};
  add(std::string_view(size, 2));
}

template <class... Columns>
consteval std::uint64_t batch_type_tag(std::type_identity<record_batch<Columns...>>) {
  std::uint64_t h = salt::fnv_offset;
  auto add = [&h](std::string_view text) {
    h = fnv1a(text, h);
    h = fnv1a("\xff", h);  // separator: ("ab","c") != ("a","bc")
  };
  add(std::endian::native == std::endian::little ? "le" : "be");
  (
      [&] {
        add(Columns::name.view());
        if constexpr (dense_column_spec<Columns>) {
          add("dense");
          hash_dtype<typename Columns::value_type>(h);
        } else {
          add("bytes");
        }
      }(),
      ...);
  return h;
}

/// Where row r of an assembled batch comes from: a validated cache hit or a
/// row of the batch upstream produced for the misses.
struct row_origin {
  bool from_hit = false;
  std::size_t slot = 0;  ///< index into the hits, or row of the fresh batch
};

/// Encoding, validation and assembly for one cacheable batch type.
template <class Batch>
struct cached_batch;

template <class... Columns>
struct cached_batch<record_batch<Columns...>> {
  using batch_type = record_batch<Columns...>;
  static constexpr std::size_t column_count = sizeof...(Columns);
  using fields = row_fields<column_count>;
  static constexpr std::uint64_t type_tag = batch_type_tag(std::type_identity<batch_type>{});
  static constexpr std::array<std::uint32_t, column_count> unit_bytes{[] {
    if constexpr (dense_column_spec<Columns>) {
      return static_cast<std::uint32_t>(sizeof(typename Columns::value_type));
    } else {
      return std::uint32_t{1};
    }
  }()...};
  static constexpr std::array<bool, column_count> is_dense{dense_column_spec<Columns>...};

  /// Appends the value of row r of `batch` to `out`.
  static void encode_row(const batch_type& batch, std::size_t r, std::vector<std::byte>& out) {
    std::array<std::span<const std::byte>, column_count> data;
    std::array<std::uint64_t, column_count> extents{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const auto& column = std::get<I>(batch.columns());
            if constexpr (is_dense[I]) {
              data[I] = std::as_bytes(column.row(r));
              extents[I] = column.width();
            } else {
              data[I] = column.row(r);
              extents[I] = data[I].size();
            }
          }(),
          ...);
    }(std::make_index_sequence<column_count>{});
    append_row<column_count>(out, type_tag, data, extents);
  }

  /// Checks a value read from a tier; on ok, `out` views into `value`.
  static row_check parse(std::span<const std::byte> value, fields& out) noexcept {
    return parse_row<column_count>(value, type_tag, unit_bytes, out);
  }

  /// The width of each dense column of `batch` (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const batch_type& batch) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((widths[I] = is_dense[I] ? width_of(std::get<I>(batch.columns())) : 0), ...);
    }(std::make_index_sequence<column_count>{});
    return widths;
  }
  /// The dense widths a hit carries (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const fields& hit) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    for (std::size_t c = 0; c < column_count; ++c) widths[c] = is_dense[c] ? hit.extents[c] : 0;
    return widths;
  }

  /// Builds the output batch: row r is `origins[r]`, its index `indices[r]`.
  /// Dense columns get `widths`; the index column comes from ctx.pool, each
  /// column from ctx.pool_for(its name) (the sink's pool when delivered).
  static batch_type assemble(const stage_context& ctx, batch_info info, std::span<const std::uint64_t> indices,
                             std::span<const row_origin> origins, std::span<const fields> hits,
                             const batch_type* fresh, const std::array<std::uint64_t, column_count>& widths) {
    batch_type out(ctx.pool, info, indices);
    const std::size_t rows = indices.size();
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (fill_column<I>(std::get<I>(out.columns()),
                      ctx.pool_for(std::tuple_element_t<I, typename batch_type::column_types>::name.view()), rows,
                      origins, hits, fresh, widths[I]),
       ...);
    }(std::make_index_sequence<column_count>{});
    return out;
  }

 private:
  template <class Storage>
  static std::uint64_t width_of(const Storage& column) noexcept {
    if constexpr (std::is_same_v<Storage, bytes_column>) {
      return 0;
    } else {
      return column.width();
    }
  }

  template <std::size_t I, class Storage>
  static void fill_column(Storage& column, const std::shared_ptr<buffer_pool>& pool, std::size_t rows,
                          std::span<const row_origin> origins, std::span<const fields> hits,
                          const batch_type* fresh, std::uint64_t width) {
    if constexpr (is_dense[I]) {
      using value_type = typename Storage::value_type;
      column = Storage(pool, rows, width);
      const std::size_t row_bytes = width * sizeof(value_type);
      auto* target = reinterpret_cast<std::byte*>(column.data());
      for (std::size_t r = 0; r < rows; ++r) {
        const std::byte* from = origins[r].from_hit
                                    ? hits[origins[r].slot].data[I].data()
                                    : std::as_bytes(std::get<I>(fresh->columns()).row(origins[r].slot)).data();
        if (row_bytes > 0) std::memcpy(target + r * row_bytes, from, row_bytes);
      }
    } else {
      std::size_t total = 0;
      for (std::size_t r = 0; r < rows; ++r) total += row_bytes_of<I>(origins[r], hits, fresh).size();
      column = bytes_column(pool, rows, total);
      for (std::size_t r = 0; r < rows; ++r) column.append(row_bytes_of<I>(origins[r], hits, fresh));
    }
  }

  template <std::size_t I>
  static std::span<const std::byte> row_bytes_of(const row_origin& origin, std::span<const fields> hits,
                                                 const batch_type* fresh) noexcept {
    return origin.from_hit ? hits[origin.slot].data[I] : std::get<I>(fresh->columns()).row(origin.slot);
  }
};

}  // namespace conveyor::detail
