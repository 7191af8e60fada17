// conveyor/decode/status.hpp: the result of a non-throwing decoder call.
//
// Every decoder in conveyor/decode/ comes in two forms: `try_xxx(...)` returns a
// `decode_status` and never throws on bad data, and `xxx(..., where)` throws
// `conveyor::data_error` naming the file, the record and the byte offset of the
// offending byte (the field's offset in `where` plus the position in the field).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "conveyor/core/error.hpp"

namespace conveyor {

/// What went wrong in a decoder.
enum class decode_errc : std::uint8_t {
  ok,                  ///< no error
  bad_character,       ///< a byte the format does not allow (bit strings, int sets)
  wrong_length,        ///< the input does not have the length the output needs
  invalid_utf8,        ///< text that is not valid UTF-8 (two-gram labels)
  malformed,           ///< the text does not follow the grammar (int sets)
  value_out_of_range,  ///< a value does not fit the output (int set value < 0 or >= width)
  too_many_values,     ///< the caller's output span is too small (int sets)
};

/// Result of a `try_` decoder. Trivially copyable, no allocation.
struct decode_status {
  decode_errc code = decode_errc::ok;
  /// Byte position of the problem inside the decoded field (for wrong_length:
  /// where the shorter of input and expected length ends).
  std::size_t position = 0;
  /// wrong_length: the expected input length; value_out_of_range: the value.
  std::int64_t value = 0;
  /// Index of the field, for decoders that read several fields (two-grams).
  std::size_t field = 0;
  /// A static sentence describing the problem ("" when ok).
  const char* reason = "";

  [[nodiscard]] constexpr bool ok() const noexcept { return code == decode_errc::ok; }
  constexpr explicit operator bool() const noexcept { return ok(); }
};

namespace detail {

/// Throws data_error for a failed status. `field_location.offset`, when known,
/// is the byte offset of the field in the file; the byte offset reported is that
/// plus `status.position`.
[[noreturn]] inline void throw_decode_error(std::string message, const error_location& field_location,
                                            const decode_status& status) {
  error_location where = field_location;
  if (where.offset != unknown_position) where.offset += status.position;
  throw data_error(std::move(message), std::move(where));
}

/// "'x' (0x78)" for printable bytes, "0x07" otherwise: used in messages.
inline std::string describe_byte(unsigned char byte) {
  static constexpr char hex_digits[] = "0123456789abcdef";
  std::string hex = "0x";
  hex += hex_digits[byte >> 4];
  hex += hex_digits[byte & 0xF];
  if (byte >= 0x20 && byte < 0x7F) return std::string("'") + static_cast<char>(byte) + "' (" + hex + ")";
  return hex;
}

}  // namespace detail
}  // namespace conveyor
