// conveyor/decode/int_set.hpp: sets of integers as Python prints them
// (`{628739, 459782}`, `{}`, `set()`) -> index lists or multi-hot rows.
//
// Grammar (the DEA `twostephash` column): optional whitespace, then either
// `set()` or `{` [value (`,` value)*] `}`, then optional whitespace. A value is
// an optional '-' and one or more decimal digits (leading zeros allowed) that
// has a magnitude below 2^63 (int64). Negative values are real: the DEA
// fakename_1k_tsh_encoded.tsv holds -1430, -1685 and -447 (46 rows); the
// Python original parses items with int(), so they are values, not errors. Whitespace (space, \t, \n, \v, \f, \r) is allowed around braces, values
// and commas. A trailing comma, an empty element, a sign or anything else is
// malformed. Values are kept in text order; duplicates (which Python never
// prints) are kept in the list and harmless in a multi-hot row.
//
// Pure functions, thread-safe. The vector form allocates (it reuses the
// vector's capacity); the span and multi-hot forms do not allocate.
// Errors: `try_` forms return a decode_status with the byte position of the
// offending byte (malformed), of the value's first character
// (value_out_of_range, with status.value the value, saturated to the int64 range
// when it does not fit; too_many_values). The other forms throw data_error naming file, record and
// the field's offset plus that position.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/text.hpp"
#include "conveyor/decode/field.hpp"
#include "conveyor/decode/detail/bit_values.hpp"
#include "conveyor/decode/status.hpp"

namespace conveyor {

namespace detail {

constexpr bool is_int_set_space(char c) noexcept {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

/// The reason of a multi-hot value outside the row (compared by address).
inline constexpr const char* int_set_outside_row = "value is outside [0, row width)";

/// Magnitudes from 2^63 on do not fit (the parser saturates there).
inline constexpr std::uint64_t int_set_magnitude_limit = std::uint64_t{1} << 63;

/// Parses text and calls accept(value, position_of_first_digit) -> decode_status
/// for each value, stopping at the first failure.
template <class Accept>
decode_status parse_int_set_values(std::string_view text, Accept&& accept) {
  const auto malformed = [](std::size_t position, const char* reason) {
    return decode_status{decode_errc::malformed, position, 0, 0, reason};
  };
  std::size_t position = 0;
  const auto skip_space = [&] {
    while (position < text.size() && is_int_set_space(text[position])) ++position;
  };
  const auto finish = [&]() -> decode_status {
    skip_space();
    if (position != text.size()) return malformed(position, "unexpected character after the set");
    return {};
  };
  skip_space();
  if (text.substr(position, 5) == "set()") {
    position += 5;
    return finish();
  }
  if (position == text.size() || text[position] != '{') return malformed(position, "expected '{' or 'set()'");
  ++position;
  skip_space();
  if (position < text.size() && text[position] == '}') {
    ++position;
    return finish();
  }
  for (;;) {
    const std::size_t value_start = position;
    const bool negative = position < text.size() && text[position] == '-';
    if (negative) ++position;
    if (position == text.size() || text[position] < '0' || text[position] > '9')
      return malformed(position, "expected a decimal digit");
    std::uint64_t magnitude = 0;
    for (; position < text.size() && text[position] >= '0' && text[position] <= '9'; ++position) {
      const unsigned digit = static_cast<unsigned>(text[position] - '0');
      magnitude = magnitude > (int_set_magnitude_limit - digit) / 10 ? int_set_magnitude_limit
                                                                       : magnitude * 10 + digit;
    }
    if (magnitude >= int_set_magnitude_limit) {
      const std::int64_t saturated = negative ? std::numeric_limits<std::int64_t>::min()
                                              : std::numeric_limits<std::int64_t>::max();
      return decode_status{decode_errc::value_out_of_range, value_start, saturated, 0,
                           "value does not fit in 64 bits"};
    }
    const auto value = negative ? -static_cast<std::int64_t>(magnitude) : static_cast<std::int64_t>(magnitude);
    if (const decode_status accepted = accept(value, value_start); !accepted) return accepted;
    skip_space();
    if (position == text.size()) return malformed(position, "expected ',' or '}' before the end");
    if (text[position] == '}') {
      ++position;
      return finish();
    }
    if (text[position] != ',') return malformed(position, "expected ',' or '}'");
    ++position;
    skip_space();
  }
}

[[noreturn]] inline void throw_int_set_error(std::string_view text, const decode_status& status,
                                             const error_location& field) {
  std::string message = "integer set: ";
  message += status.reason;
  if (status.code == decode_errc::malformed) {
    message += status.position < text.size()
                   ? ", found " + describe_byte(static_cast<unsigned char>(text[status.position]))
                   : std::string(", found the end of the field");
  } else if (status.code == decode_errc::value_out_of_range) {
    std::size_t end = status.position + 1;  // past the sign or first digit
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    message += ": " + std::string(text.substr(status.position, std::min<std::size_t>(end - status.position, 40)));
  }
  message += " (at byte " + std::to_string(status.position) + ")";
  throw_decode_error(std::move(message), field, status);
}

}  // namespace detail

/// Parses text into `values` (cleared first, capacity reused). On error the
/// values before the bad one are in `values`.
inline decode_status try_parse_int_set(std::string_view text, std::vector<std::int64_t>& values) {
  values.clear();
  return detail::parse_int_set_values(text, [&](std::int64_t value, std::size_t) {
    values.push_back(value);
    return decode_status{};
  });
}

/// Parses text into the caller's span; `count` receives the number of values.
/// More values than out.size() -> too_many_values at the first one that does not fit.
inline decode_status try_parse_int_set(std::string_view text, std::span<std::int64_t> out,
                                       std::size_t& count) noexcept {
  count = 0;
  return detail::parse_int_set_values(text, [&](std::int64_t value, std::size_t position) {
    if (count == out.size())
      return decode_status{decode_errc::too_many_values, position, static_cast<std::int64_t>(out.size()), 0,
                           "more values than the output holds"};
    out[count++] = value;
    return decode_status{};
  });
}

/// Parses text into a multi-hot row: row is zeroed, then row[v] = 1 for each
/// value v. A value outside [0, row.size()) is value_out_of_range (status.value = v).
template <bit_element T>
decode_status try_parse_int_set_multi_hot(std::string_view text, std::span<T> row) noexcept {
  std::fill(row.begin(), row.end(), detail::bit_zero<T>());
  return detail::parse_int_set_values(text, [&](std::int64_t value, std::size_t position) {
    if (value < 0 || static_cast<std::uint64_t>(value) >= row.size())
      return decode_status{decode_errc::value_out_of_range, position, value, 0, detail::int_set_outside_row};
    row[static_cast<std::size_t>(value)] = detail::bit_one<T>();
    return decode_status{};
  });
}

/// Throwing form: returns the values; data_error names field.file,
/// field.record and field.offset + the byte position.
inline std::vector<std::int64_t> parse_int_set(std::string_view text, const error_location& field) {
  std::vector<std::int64_t> values;
  if (const decode_status status = try_parse_int_set(text, values); !status)
    detail::throw_int_set_error(text, status, field);
  return values;
}

/// Throwing form into a reused vector.
inline void parse_int_set(std::string_view text, std::vector<std::int64_t>& values, const error_location& field) {
  if (const decode_status status = try_parse_int_set(text, values); !status)
    detail::throw_int_set_error(text, status, field);
}

/// Throwing form of try_parse_int_set_multi_hot.
template <bit_element T>
void parse_int_set_multi_hot(std::string_view text, std::span<T> row, const error_location& field) {
  const decode_status status = try_parse_int_set_multi_hot(text, row);
  if (status) return;
  if (status.reason == detail::int_set_outside_row) {
    detail::throw_decode_error("integer set: value " + std::to_string(status.value) + " is outside [0, " +
                                   std::to_string(row.size()) + "), the row width (at byte " +
                                   std::to_string(status.position) + ")",
                               field, status);
  }
  detail::throw_int_set_error(text, status, field);
}

/// int_set<T>(field, width): a decoder for decode(...): a text field holding
/// a set of integers written `{628739, 459782}` -> a multi-hot row of `width`
/// values; a value >= width is a data_error.
template <bit_element T>
struct int_set_decoder {
  using value_type = T;
  field_ref field;
  std::size_t row_width;

  [[nodiscard]] std::size_t width() const noexcept { return row_width; }
  [[nodiscard]] std::size_t bind(const text_schema& schema) const { return field.resolve(schema); }
  void decode(const text_column& records, std::size_t row, std::size_t column, std::span<T> out) const {
    auto text = records.field(row, column);
    parse_int_set_multi_hot(text, out, records.location(row, text));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(field.fingerprint() ^ row_width ^ (sizeof(T) << 40) ^ detail::salt::int_set);
  }
};
template <bit_element T = float>
int_set_decoder<T> int_set(field_ref field, std::size_t width) {
  return {std::move(field), width};
}

}  // namespace conveyor
