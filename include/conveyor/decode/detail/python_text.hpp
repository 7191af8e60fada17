// conveyor/decode/detail/python_text.hpp: the parts of Python 3's str.strip(),
// str.isspace() and str.lower() that decide which two-grams a text holds.
//
// Grams are pairs of code points in U+0000..U+00FF (see gram_alphabet), so
// lowercasing only has to be exact for results in that range; every other
// code point becomes `other_gram_code`, which matches no gram but still takes a
// position (it breaks the pair around it). The tables below were checked against
// CPython 3.11 over all 0x110000 code points:
//   - str.isspace() is true for exactly the code points in is_python_whitespace;
//   - the only code points >= U+0100 whose lower() contains a code point below
//     U+0100 are U+0130 -> "i" U+0307, U+0178 -> U+00FF, U+1E9E -> U+00DF,
//     U+212A -> "k", U+212B -> U+00E5;
//   - U+0130 is the only code point whose lower() has more than one code point;
//   - below U+0100, lower() changes only A-Z and U+00C0..U+00DE except U+00D7,
//     each by +0x20.
// Final-sigma handling (U+03A3) cannot produce a code point below U+0100, so
// context-free mapping is exact here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor::detail {

/// Stands for any code point >= U+0100 after lowercasing: matches no gram.
inline constexpr std::uint16_t other_gram_code = 0x100;

/// Python 3's str.isspace() for one code point (what str.strip() removes).
constexpr bool is_python_whitespace(char32_t code_point) noexcept {
  if (code_point <= 0x20) {
    return code_point == 0x20 || (code_point >= 0x09 && code_point <= 0x0D) ||
           (code_point >= 0x1C && code_point <= 0x1F);
  }
  if (code_point < 0x85) return false;
  switch (code_point) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return code_point >= 0x2000 && code_point <= 0x200A;
  }
}

/// The characters the DEA preprocessing deletes before stripping: " . /
constexpr bool is_deleted_label_character(char32_t code_point) noexcept {
  return code_point == U'"' || code_point == U'.' || code_point == U'/';
}

/// Python's lower() of one code point, as gram codes (0..255 or
/// other_gram_code). Writes 1 or 2 codes to `codes` and returns how many.
constexpr std::size_t lowercase_gram_codes(char32_t code_point, std::uint16_t (&codes)[2]) noexcept {
  if (code_point < 0x100) {
    const bool upper = (code_point >= U'A' && code_point <= U'Z') ||
                       (code_point >= 0xC0 && code_point <= 0xDE && code_point != 0xD7);
    codes[0] = static_cast<std::uint16_t>(upper ? code_point + 0x20 : code_point);
    return 1;
  }
  switch (code_point) {
    case 0x130:  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + COMBINING DOT ABOVE
      codes[0] = U'i';
      codes[1] = other_gram_code;
      return 2;
    case 0x178: codes[0] = 0xFF; return 1;    // Y WITH DIAERESIS
    case 0x1E9E: codes[0] = 0xDF; return 1;   // CAPITAL SHARP S
    case 0x212A: codes[0] = U'k'; return 1;   // KELVIN SIGN
    case 0x212B: codes[0] = 0xE5; return 1;   // ANGSTROM SIGN
    default: codes[0] = other_gram_code; return 1;
  }
}

}  // namespace conveyor::detail
