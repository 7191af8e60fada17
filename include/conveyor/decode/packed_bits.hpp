// conveyor/decode/packed_bits.hpp: packed bits (numpy.packbits) -> 0/1 values,
// one row or a batch of rows, in either bit order.
//
//   std::vector<std::uint8_t> packed = ...;            // 128 bytes: a 1024-bit filter
//   std::vector<float> x(1024);
//   conveyor::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(x));
//
//   // rows x 128 bytes -> rows x 1024 values, e.g. a batch read from a .npy of
//   // np.packbits(bits, axis=-1):
//   conveyor::unpack_bit_rows(packed_batch, std::span<float>(x_batch), 1024);
//
// Layout (numpy.packbits with axis=-1): a row of `bits` values takes
// ceil(bits / 8) bytes; with bit_order::big (numpy's default) value i is bit
// 7 - i % 8 of byte i / 8, with bit_order::little bit i % 8. When `bits` is not
// a multiple of 8, the last byte's unused bits (the low ones for big, the high
// ones for little) are padding, and numpy always writes them as zero.
//
// Decision: nonzero padding is an error, not ignored. Data written by numpy
// never has it, so it means the declared width is wrong (e.g. 1020 declared for
// rows packed from 1024 bits: the byte counts match, only the padding tells).
// bits.hpp's older `unpack_bits(packed, out, error_location)` keeps its
// documented behaviour (big order, padding ignored).
//
// Element types: float, float16, bfloat16, std::uint8_t (bit_element), written
// as bits.hpp writes them: +0 / 1 in T.
//
// Kernels: AVX2 when the CPU has it and `path` is simd_path::best, else the
// portable loop; both write identical bytes. The per-value step is
// detail::unpack_bit (CONVEYOR_HOST_DEVICE), which a CUDA kernel calls as is.
//
// Errors: std::invalid_argument, thrown before anything is written (out is then
// untouched), when the sizes do not fit (the message names both sizes) or a
// row's padding is not zero (the message names the row, the byte and its
// value). Packed bytes are not data from a file here, so there is no file to
// name; a stage that reads them from a file wraps this in a data_error.
//
// No allocation (except the exception), no state; safe from any number of
// threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>

#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/fixed_string.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/detail/packed_bits_kernels.hpp"

namespace conveyor {

namespace detail {

// `where` is "unpack_bits" or "unpack_bit_rows: row N".
[[noreturn]] inline void throw_packed_padding_error(const std::string& where, std::size_t bits,
                                                    std::size_t byte, std::uint8_t value,
                                                    bit_order order) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(value));
  throw std::invalid_argument(where + ": nonzero padding: byte " + std::to_string(byte) + " is " +
                              hex + ", but a row of " + std::to_string(bits) +
                              " bits uses only its " + std::to_string(bits % 8) +
                              (order == bit_order::big ? " high" : " low") +
                              " bits and numpy.packbits writes the others as zero (is the "
                              "width right?)");
}

}  // namespace detail

/// Expands the packed row `packed` into out: out.size() values, each 0 or 1 in
/// T. packed.size() must be exactly ceil(out.size() / 8) and the padding bits
/// of a last partial byte must be zero; otherwise throws std::invalid_argument
/// and writes nothing.
template <bit_element T>
void unpack_bits(std::span<const std::uint8_t> packed, std::span<T> out,
                 bit_order order = bit_order::big, simd_path path = simd_path::best) {
  const std::size_t bits = out.size();
  const std::size_t expected_bytes = (bits + 7) / 8;
  if (packed.size() != expected_bytes) {
    throw std::invalid_argument("unpack_bits: " + std::to_string(packed.size()) +
                                " packed bytes, expected " + std::to_string(expected_bytes) +
                                " for " + std::to_string(bits) + " bits (out.size())");
  }
  const std::uint8_t mask = detail::padding_mask(bits, order);
  if (mask != 0 && (packed[bits / 8] & mask) != 0) {
    detail::throw_packed_padding_error("unpack_bits", bits, bits / 8, packed[bits / 8], order);
  }
  detail::unpack_row(packed.data(), bits, out.data(), order, detail::use_avx2(path));
}

/// Expands a batch: `packed` holds rows of ceil(bits_per_row / 8) bytes each
/// (every row padded to whole bytes, as np.packbits(axis=-1) writes a 2-D
/// array), out holds the same rows of bits_per_row values; rows =
/// out.size() / bits_per_row. Throws std::invalid_argument, writing nothing,
/// if bits_per_row is 0, out.size() is not a multiple of it, packed.size() is
/// not rows * ceil(bits_per_row / 8), or any row's padding is not zero.
template <bit_element T>
void unpack_bit_rows(std::span<const std::uint8_t> packed, std::span<T> out,
                     std::size_t bits_per_row, bit_order order = bit_order::big,
                     simd_path path = simd_path::best) {
  if (bits_per_row == 0) throw std::invalid_argument("unpack_bit_rows: bits_per_row is 0");
  if (out.size() % bits_per_row != 0) {
    throw std::invalid_argument("unpack_bit_rows: out holds " + std::to_string(out.size()) +
                                " values, not a whole number of rows of " +
                                std::to_string(bits_per_row) + " bits");
  }
  const std::size_t rows = out.size() / bits_per_row;
  const std::size_t bytes_per_row = (bits_per_row + 7) / 8;
  if (packed.size() != rows * bytes_per_row) {
    throw std::invalid_argument(
        "unpack_bit_rows: " + std::to_string(packed.size()) + " packed bytes, expected " +
        std::to_string(rows * bytes_per_row) + " for " + std::to_string(rows) + " rows of " +
        std::to_string(bits_per_row) + " bits (" + std::to_string(bytes_per_row) + " bytes each)");
  }
  const bool avx2 = detail::use_avx2(path);
  const std::uint8_t mask = detail::padding_mask(bits_per_row, order);
  if (mask == 0) {
    // No padding: the rows are one contiguous stream of rows * bits_per_row bits.
    detail::unpack_row(packed.data(), out.size(), out.data(), order, avx2);
    return;
  }
  const std::size_t last = bits_per_row / 8;
  for (std::size_t row = 0; row < rows; ++row) {
    const std::uint8_t value = packed[row * bytes_per_row + last];
    if ((value & mask) != 0) {
      detail::throw_packed_padding_error("unpack_bit_rows: row " + std::to_string(row),
                                         bits_per_row, row * bytes_per_row + last, value, order);
    }
  }
  for (std::size_t row = 0; row < rows; ++row) {
    detail::unpack_row(packed.data() + row * bytes_per_row, bits_per_row,
                       out.data() + row * bits_per_row, order, avx2);
  }
}

/// packed_bits<T>(column<"bits">, width, order): a decoder for decode(...):
/// reads the dense column `Input` of std::uint8_t, ceil(width / 8) bytes per
/// row (np.packbits(axis=-1)), and writes width values of T (0 or 1) per row.
/// A column of another width is a data_error naming the column and both
/// widths; a row with nonzero padding bits is a data_error naming the column
/// and the record (dropped under on_error::skip).
template <bit_element T, fixed_string Input>
struct packed_bits_decoder {
  using value_type = T;
  using input_value = std::uint8_t;
  static constexpr auto input = Input;
  std::size_t bit_count;
  bit_order order = bit_order::big;

  [[nodiscard]] std::size_t width() const noexcept { return bit_count; }
  void decode_rows(const dense_column<std::uint8_t>& in, dense_column<T>& out, std::span<const std::uint64_t> records,
                   const stage_context& ctx) const {
    const std::size_t bytes = (bit_count + 7) / 8;
    if (in.rows() > 0 && in.width() != bytes)
      throw data_error("column '" + std::string(Input.view()) + "' has " + std::to_string(in.width()) +
                           " bytes per row; packed_bits(" + std::to_string(bit_count) + ") reads " +
                           std::to_string(bytes),
                       std::string(Input.view()));
    if (detail::padding_mask(bit_count, order) == 0) {
      unpack_bit_rows(in.values(), out.values(), bit_count, order);
      return;
    }
    for (std::size_t r = 0; r < in.rows(); ++r) {
      try {
        unpack_bits(in.row(r), out.row(r), order);
      } catch (const std::invalid_argument& bad) {
        ctx.reject(data_error(std::string("column '") + std::string(Input.view()) + "': " + bad.what(),
                              std::string(Input.view()), records[r]),
                   r);
      }
    }
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::combine(detail::combine(detail::hash_name(Input.view()), bit_count ^ (sizeof(T) << 40)),
                           detail::salt::bits + static_cast<std::uint64_t>(order));
  }
};
// Input is column<"name">'s type, not column_name<Name>: see column_name_type.
template <bit_element T = float, column_name_type Input>
auto packed_bits(Input, std::size_t width, bit_order order = bit_order::big) {
  return packed_bits_decoder<T, Input::name>{width, order};
}

}  // namespace conveyor
