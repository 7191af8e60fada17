// conveyor/decode/detail/utf8.hpp: a strict UTF-8 decoder.
//
// Strict in the way Python's "utf-8" codec with errors="strict" is (Unicode
// Table 3-7 "well-formed byte sequences"): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences. The two-gram
// encoder must accept exactly the text the Python original could read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor::detail {

/// Decodes one code point starting at text[0] (text has `available` >= 1
/// bytes). Returns the sequence length 1..4 and sets code_point, or 0 when the
/// bytes there are not a well-formed sequence.
constexpr std::size_t decode_utf8_code_point(const unsigned char* text, std::size_t available,
                                             char32_t& code_point) noexcept {
  const unsigned lead = text[0];
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  std::size_t length = 0;
  unsigned second_min = 0x80, second_max = 0xBF;  // the second byte's allowed range
  char32_t value = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0F;
    if (lead == 0xE0) second_min = 0xA0;  // no overlong 3-byte forms
    if (lead == 0xED) second_max = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07;
    if (lead == 0xF0) second_min = 0x90;  // no overlong 4-byte forms
    if (lead == 0xF4) second_max = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (available < length) return 0;
  if (text[1] < second_min || text[1] > second_max) return 0;
  value = (value << 6) | (text[1] & 0x3F);
  for (std::size_t index = 2; index < length; ++index) {
    if ((text[index] & 0xC0) != 0x80) return 0;
    value = (value << 6) | (text[index] & 0x3F);
  }
  code_point = value;
  return length;
}

}  // namespace conveyor::detail
