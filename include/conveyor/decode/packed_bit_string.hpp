// conveyor/decode/packed_bit_string.hpp: a text field of '0'/'1' characters
// -> its bits packed eight to a byte (numpy.packbits order, most significant
// bit first), as a text decoder.
//
//   cy::decode(cy::packed_bit_string("bloomfilter", 1024) >> cy::column<"x_packed">)
//     | cy::cache(tier)
//     | cy::decode(cy::packed_bits<float>(cy::column<"x_packed">, 1024) >> cy::column<"x">)
//
// Why: a 1024-bit filter is 128 bytes packed and 4096 bytes as float32; a
// cache that keeps the packed form holds and moves 32x fewer bytes, and
// packed_bits expands it after the cache (or on the GPU). docs/cache-stage.md
// recommends this placement.
//
// Columns: one text field in -> a dense column of std::uint8_t,
// ceil(width / 8) bytes per row, padding bits of a last partial byte zero (so
// packed_bits(width) reads it back). Allocates nothing beyond the output
// column. Errors: a field of another length or with a character other than
// '0'/'1' is a data_error naming the file, the record and the byte offset,
// as bits<T>() reports it. AVX2 when the CPU has it. Thread-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/text.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/field.hpp"

namespace conveyor {

/// packed_bit_string(field, width): see the top of this header.
struct packed_bit_string_decoder {
  using value_type = std::uint8_t;
  field_ref field;
  std::size_t bit_count;

  [[nodiscard]] std::size_t width() const noexcept { return (bit_count + 7) / 8; }
  [[nodiscard]] std::size_t bind(const text_schema& schema) const { return field.resolve(schema); }
  void decode(const text_column& records, std::size_t row, std::size_t column,
              std::span<std::uint8_t> out) const {
    auto text = records.field(row, column);
    if (text.size() != bit_count) {
      // pack_bit_string checks only the byte count (1023 characters fill 128
      // bytes too): the declared width is checked here, as bits<T>() does.
      detail::throw_bit_string_error("bit string", text,
                                     detail::bit_length_status(text.size(), bit_count),
                                     records.location(row, text));
    }
    pack_bit_string(text, out, records.location(row, text));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(field.fingerprint() ^ bit_count ^ detail::hash_name("packed_bit_string"));
  }
};

inline packed_bit_string_decoder packed_bit_string(field_ref field, std::size_t width) {
  return {std::move(field), width};
}

}  // namespace conveyor
