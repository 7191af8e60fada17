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
    ((dense_column_spec<Columns> || bytes_column_spec<Columns>)&&...);

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
  const char size[2] = {static_cast<char>('0' + sizeof(T) % 10),
                        static_cast<char>('0' + sizeof(T) / 10 % 10)};
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

  /// The bytes of each column of row r of `batch`, and each column's extent.
  static void row_columns(const batch_type& batch, std::size_t r,
                          std::array<std::span<const std::byte>, column_count>& data,
                          std::array<std::uint64_t, column_count>& extents) noexcept {
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
    }
    (std::make_index_sequence<column_count>{});
  }

  /// The size of the value of row r of `batch`.
  static std::size_t value_bytes(const batch_type& batch, std::size_t r) noexcept {
    std::array<std::span<const std::byte>, column_count> data;
    std::array<std::uint64_t, column_count> extents{};
    row_columns(batch, r, data, extents);
    return row_value_bytes<column_count>(data);
  }

  /// Writes the value of row r of `batch` into `out` (exactly value_bytes
  /// long); with row_checksum::trust without its CRC32C (row_codec.hpp).
  static void write_value(const batch_type& batch, std::size_t r, std::span<std::byte> out,
                          row_checksum checksum = row_checksum::verify) noexcept {
    std::array<std::span<const std::byte>, column_count> data;
    std::array<std::uint64_t, column_count> extents{};
    row_columns(batch, r, data, extents);
    write_row<column_count>(out, type_tag, data, extents, checksum);
  }

  /// Checks a value read from a tier; on ok, `out` views into `value`.
  static row_check parse(std::span<const std::byte> value, fields& out,
                         row_checksum checksum = row_checksum::verify) noexcept {
    return parse_row<column_count>(value, type_tag, unit_bytes, out, checksum);
  }

  /// The width of each dense column of `batch` (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const batch_type& batch) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((widths[I] = is_dense[I] ? width_of(std::get<I>(batch.columns())) : 0), ...);
    }
    (std::make_index_sequence<column_count>{});
    return widths;
  }
  /// The dense widths a hit carries (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const fields& hit) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    for (std::size_t c = 0; c < column_count; ++c) widths[c] = is_dense[c] ? hit.extents[c] : 0;
    return widths;
  }

  /// The bytes columns' rows of the hits of one batch, gathered while the tier
  /// shows each value (it cannot be kept past that), until the columns are
  /// built: row r's bytes of column c are blob[c][offset[c][r] ..][.. length[c][r]].
  struct hit_bytes {
    std::array<std::vector<std::byte>, column_count> blob;
    std::array<std::vector<std::uint64_t>, column_count> offset;
    std::array<std::vector<std::uint64_t>, column_count> length;

    void reset(std::size_t rows) {
      for (std::size_t c = 0; c < column_count; ++c) {
        if (is_dense[c]) continue;
        blob[c].clear();
        offset[c].assign(rows, 0);
        length[c].assign(rows, 0);
      }
    }
  };

  /// Gives every dense column of `out` `rows` rows of `widths[c]` values,
  /// from ctx.pool_for(its name) (the sink's pool when delivered); contents
  /// unspecified until copied into.
  static void allocate_dense(batch_type& out, const stage_context& ctx, std::size_t rows,
                             const std::array<std::uint64_t, column_count>& widths) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (is_dense[I]) {
              using storage = std::tuple_element_t<I, std::tuple<typename Columns::storage...>>;
              std::get<I>(out.columns()) = storage(ctx.pool_for(column_name<I>()), rows, widths[I]);
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Copies a validated hit into row `row` of `out`'s dense columns (which
  /// have the hit's widths) and its bytes columns into `bytes`: the one copy
  /// of a hit's dense bytes.
  static void copy_hit(const fields& hit, batch_type& out, std::size_t row, hit_bytes& bytes) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const auto& from = hit.data[I];
            if constexpr (is_dense[I]) {
              if (!from.empty())
                std::memcpy(
                    reinterpret_cast<std::byte*>(std::get<I>(out.columns()).row(row).data()),
                    from.data(), from.size());
            } else {
              bytes.offset[I][row] = bytes.blob[I].size();
              bytes.length[I][row] = from.size();
              bytes.blob[I].insert(bytes.blob[I].end(), from.begin(), from.end());
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Copies row `from` of `fresh` into row `row` of `out`'s dense columns.
  static void copy_fresh_dense(const batch_type& fresh, std::size_t from, batch_type& out,
                               std::size_t row) noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (is_dense[I]) {
              auto source = std::as_bytes(std::get<I>(fresh.columns()).row(from));
              if (!source.empty())
                std::memcpy(
                    reinterpret_cast<std::byte*>(std::get<I>(out.columns()).row(row).data()),
                    source.data(), source.size());
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Builds `out`'s bytes columns, `rows` rows: row r from the hit bytes when
  /// from_hit[r], else row fresh_row[r] of `fresh` when fresh_row[r] is not
  /// `no_row`, else empty (a row about to be dropped).
  static constexpr std::size_t no_row = static_cast<std::size_t>(-1);
  static void build_bytes(batch_type& out, const stage_context& ctx, std::size_t rows,
                          std::span<const std::uint8_t> from_hit,
                          std::span<const std::size_t> fresh_row, const hit_bytes& bytes,
                          const batch_type* fresh) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (!is_dense[I]) {
              auto row_bytes = [&](std::size_t r) -> std::span<const std::byte> {
                if (from_hit[r])
                  return std::span<const std::byte>(bytes.blob[I])
                      .subspan(bytes.offset[I][r], bytes.length[I][r]);
                if (fresh_row[r] != no_row) return std::get<I>(fresh->columns()).row(fresh_row[r]);
                return {};
              };
              std::size_t total = 0;
              for (std::size_t r = 0; r < rows; ++r) total += row_bytes(r).size();
              bytes_column column(ctx.pool_for(column_name<I>()), rows, total);
              for (std::size_t r = 0; r < rows; ++r) column.append(row_bytes(r));
              std::get<I>(out.columns()) = std::move(column);
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

 private:
  template <std::size_t I>
  static constexpr std::string_view column_name() noexcept {
    return std::tuple_element_t<I, typename batch_type::column_types>::name.view();
  }

  template <class Storage>
  static std::uint64_t width_of(const Storage& column) noexcept {
    if constexpr (std::is_same_v<Storage, bytes_column>) {
      return 0;
    } else {
      return column.width();
    }
  }
};

}  // namespace conveyor::detail
