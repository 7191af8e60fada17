// conveyor/decode/decoder.hpp: what a decoder is, for decode(...).
//
// A decoder maps a named input column to one dense output row per record, of
// width() values of value_type. Two kinds:
//
//   text_decoder    reads fields of the batch's text column (text<...>): it
//                   binds field names to positions once per epoch against the
//                   column's text_schema (`bind(schema)`), then decodes one
//                   record at a time (`decode(column, row, bound, out_row)`),
//                   throwing data_error with the field's file, record and
//                   byte offset (text_column::location) on bad input.
//   column_decoder  reads a dense column named `D::input` of `D::input_value`
//                   (e.g. packed bits, column<"bits"> of std::uint8_t) and
//                   decodes the whole batch at once
//                   (`decode_rows(in, out, record_indices, ctx)`), rejecting
//                   bad rows through ctx.reject(error, row).
//
// `decoder >> column<"x">` names the output column. Each decoder sits in the
// header of its kernel (bits.hpp, two_gram.hpp, int_set.hpp,
// packed_bits.hpp); a new one is one header plus its test (docs/extending.md).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/fixed_string.hpp"
#include "conveyor/core/text.hpp"

namespace conveyor {

/// A decoder over the fields of a text column.
template <class D>
concept text_decoder = requires(const D& d, const text_schema& schema, const text_column& records) {
  typename D::value_type;
  { d.width() } -> std::convertible_to<std::size_t>;
  d.bind(schema);
  d.decode(records, std::size_t{0}, d.bind(schema), std::span<typename D::value_type>{});
  { d.fingerprint() } -> std::convertible_to<std::uint64_t>;
};

/// A decoder over a dense column of the batch, a whole batch at a time.
template <class D>
concept column_decoder = requires(const D& d, const dense_column<typename D::input_value>& in,
                                  dense_column<typename D::value_type>& out, std::span<const std::uint64_t> records,
                                  const stage_context& ctx) {
  typename D::value_type;
  typename D::input_value;
  { D::input.view() } -> std::convertible_to<std::string_view>;
  { d.width() } -> std::convertible_to<std::size_t>;
  d.decode_rows(in, out, records, ctx);
  { d.fingerprint() } -> std::convertible_to<std::uint64_t>;
};

template <class D>
concept decoder = text_decoder<D> || column_decoder<D>;

/// A decoder with the name of the column it writes: `decoder >> column<"x">`.
template <decoder D, fixed_string Name>
struct named_decoder {
  /// Marks the type: decode(...) recognizes its arguments by it.
  using named_decoder_type = named_decoder;
  using decoder_type = D;
  using column_spec = dense<Name, typename D::value_type>;
  D decoder;
};

/// `decoder >> column<"x">`. (The column's type is a parameter, its name read
/// from it: see column_name_type.)
template <decoder D, column_name_type Column>
auto operator>>(D decoder, Column) {  // a deduced return type: nvcc 13.0 rejects the spelled one
  return named_decoder<D, Column::name>{std::move(decoder)};
}

}  // namespace conveyor
