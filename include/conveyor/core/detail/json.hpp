// conveyor/core/detail/json.hpp: the few JSON writers stats and traces need.
//
// Numbers are formatted with std::to_chars, never through a stream or printf,
// so the global or a stream's locale cannot turn 1.5 into "1,5" and break the
// document. Non-finite doubles have no JSON spelling and are written as null.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace conveyor::detail {

/// Appends `text` as a JSON string literal: quotes, backslashes and every
/// control character escaped (RFC 8259 section 7). Bytes >= 0x80 pass through
/// unchanged, so UTF-8 stays UTF-8.
inline void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out += "\\u00";
          out += hex[byte >> 4];
          out += hex[byte & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

inline void append_json_number(std::string& out, std::uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

inline void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char digits[40];
  auto result = std::to_chars(digits, digits + sizeof digits, value);
  if (result.ec != std::errc{}) {
    out += "null";
    return;
  }
  out.append(digits, result.ptr);
}

/// Appends a count of nanoseconds as microseconds with three decimals
/// ("12.345"), the unit of the trace event format's ts and dur.
inline void append_json_microseconds(std::string& out, std::int64_t nanoseconds) {
  if (nanoseconds < 0) nanoseconds = 0;
  append_json_number(out, static_cast<std::uint64_t>(nanoseconds / 1000));
  auto fraction = static_cast<unsigned>(nanoseconds % 1000);
  out += '.';
  out += static_cast<char>('0' + fraction / 100);
  out += static_cast<char>('0' + fraction / 10 % 10);
  out += static_cast<char>('0' + fraction % 10);
}

}  // namespace conveyor::detail
