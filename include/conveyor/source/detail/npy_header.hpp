// conveyor/source/detail/npy_header.hpp: parsing and writing the header of a
// .npy file (format versions 1.0, 2.0, 3.0).
//
// The header is a Python dict literal. Rather than a Python parser we accept the
// subset numpy writes and reads back: string keys, and values that are strings,
// True/False, integers or tuples of integers. Everything else is an error with
// the byte offset of the offending character, because a header is small and a
// precise position is the fastest way for a user to see what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/element_type.hpp"

namespace conveyor::detail {

inline constexpr std::string_view npy_magic = "\x93NUMPY";

// What a .npy header says about the array that follows it.
struct npy_header {
  unsigned major_version = 1;
  unsigned minor_version = 0;
  element_type dtype = element_type::uint8;
  bool big_endian = false;
  std::vector<std::uint64_t> shape;
  std::uint64_t data_offset = 0;  // first byte of the array data
  std::uint64_t data_bytes = 0;   // product of shape times element size
};

// Maps a descr string ("<f4", "|u1", ">i8", "=i2") to a type and byte order.
inline std::optional<std::pair<element_type, bool>> parse_npy_descr(std::string_view descr) {
  if (descr.size() != 3) return std::nullopt;
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') return std::nullopt;
  const auto code = descr.substr(1);
  struct known {
    std::string_view code;
    element_type type;
  };
  static constexpr known table[] = {
      {"b1", element_type::boolean}, {"i1", element_type::int8},    {"u1", element_type::uint8},
      {"i2", element_type::int16},   {"u2", element_type::uint16},  {"i4", element_type::int32},
      {"u4", element_type::uint32},  {"i8", element_type::int64},   {"u8", element_type::uint64},
      {"f2", element_type::float16}, {"f4", element_type::float32}, {"f8", element_type::float64},
  };
  for (const auto& entry : table) {
    if (entry.code != code) continue;
    // '|' means "byte order does not apply": only right for one-byte types.
    if (order == '|' && element_size(entry.type) != 1) return std::nullopt;
    return std::pair{entry.type, order == '>' && element_size(entry.type) != 1};
  }
  return std::nullopt;
}

// A cursor over the dict text that reports errors at absolute file offsets.
class npy_dict_parser {
 public:
  npy_dict_parser(std::string_view text, std::uint64_t base_offset, const std::string& file)
      : text_(text), base_(base_offset), file_(file) {}

  npy_header parse() {
    npy_header header;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    skip_space();
    expect('{');
    skip_space();
    while (peek() != '}') {
      const auto key_at = at_;
      const auto key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (seen_descr) fail("duplicate key 'descr'", key_at);
        seen_descr = true;
        const auto value_at = at_;
        if (peek() != '\'' && peek() != '"')
          fail("'descr' is not a string (structured dtypes are not supported)", value_at);
        const auto descr = parse_string();
        const auto parsed = parse_npy_descr(descr);
        if (!parsed) fail("unsupported dtype '" + std::string(descr) + "'", value_at);
        header.dtype = parsed->first;
        header.big_endian = parsed->second;
      } else if (key == "fortran_order") {
        if (seen_order) fail("duplicate key 'fortran_order'", key_at);
        seen_order = true;
        const auto value_at = at_;
        if (consume_word("True"))
          fail("fortran_order is True: only C-order arrays are supported (save with "
               "numpy.ascontiguousarray)",
               value_at);
        if (!consume_word("False")) fail("'fortran_order' is not True or False", value_at);
      } else if (key == "shape") {
        if (seen_shape) fail("duplicate key 'shape'", key_at);
        seen_shape = true;
        header.shape = parse_shape();
      } else {
        fail("unexpected key '" + std::string(key) + "'", key_at);
      }
      skip_space();
      if (peek() == ',') {
        ++at_;
        skip_space();
      } else if (peek() != '}') {
        fail("expected ',' or '}'", at_);
      }
    }
    ++at_;
    skip_space();
    if (at_ != text_.size()) fail("unexpected text after the header dict", at_);
    if (!seen_descr || !seen_order || !seen_shape)
      fail("header dict lacks " + std::string(!seen_descr ? "'descr'"
                                              : !seen_order ? "'fortran_order'"
                                                            : "'shape'"),
           0);
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& message, std::size_t at) const {
    throw data_error("bad .npy header: " + message, file_, unknown_position, base_ + at);
  }
  char peek() const {
    if (at_ >= text_.size()) fail("header dict ends early", at_);
    return text_[at_];
  }
  void expect(char wanted) {
    if (peek() != wanted) fail(std::string("expected '") + wanted + "'", at_);
    ++at_;
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' ||
                                  text_[at_] == '\r'))
      ++at_;
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }
  std::string_view parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string", at_);
    const auto begin = ++at_;
    while (peek() != quote) {
      if (text_[at_] == '\\') fail("escapes in strings are not supported", at_);
      ++at_;
    }
    return text_.substr(begin, at_++ - begin);
  }
  std::uint64_t parse_integer() {
    const auto begin = at_;
    std::uint64_t value = 0;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[at_] - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        fail("dimension too large", begin);
      value = value * 10 + digit;
      ++at_;
    }
    if (at_ == begin) fail("expected a non-negative integer", begin);
    if (at_ < text_.size() && text_[at_] == 'L') ++at_;  // Python 2 long literal
    return value;
  }
  std::vector<std::uint64_t> parse_shape() {
    std::vector<std::uint64_t> shape;
    if (peek() != '(') fail("'shape' is not a tuple", at_);
    ++at_;
    skip_space();
    bool trailing_comma = false;
    while (peek() != ')') {
      if (shape.size() >= 64) fail("more than 64 dimensions", at_);
      shape.push_back(parse_integer());
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++at_;
        trailing_comma = true;
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape", at_);
      }
    }
    // "(5)" is the integer 5 in Python, not a tuple.
    if (shape.size() == 1 && !trailing_comma) fail("'shape' is not a tuple", at_);
    ++at_;
    return shape;
  }

  std::string_view text_;
  std::uint64_t base_;
  const std::string& file_;
  std::size_t at_ = 0;
};

inline std::uint64_t read_little_endian(std::span<const std::byte> bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;)
    value = (value << 8) | static_cast<std::uint64_t>(bytes[i]);
  return value;
}

// Parses and checks the header of a whole .npy file: the data that follows must
// be exactly shape x element size bytes.
inline npy_header parse_npy_file(std::span<const std::byte> file, const std::string& name) {
  const auto file_bytes = static_cast<std::uint64_t>(file.size());
  if (file_bytes < 10)
    throw data_error("not a .npy file: " + std::to_string(file_bytes) + " bytes is too short",
                     name, unknown_position, file_bytes);
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  if (text.substr(0, 6) != npy_magic)
    throw data_error("not a .npy file: bad magic string", name, unknown_position, 0);
  npy_header header;
  header.major_version = static_cast<unsigned char>(text[6]);
  header.minor_version = static_cast<unsigned char>(text[7]);
  if (header.major_version < 1 || header.major_version > 3 || header.minor_version != 0)
    throw data_error("unsupported .npy format version " + std::to_string(header.major_version) +
                         "." + std::to_string(header.minor_version) +
                         " (supported: 1.0, 2.0, 3.0)",
                     name, unknown_position, 6);
  const std::size_t length_bytes = header.major_version == 1 ? 2 : 4;
  if (file_bytes < 8 + length_bytes)
    throw data_error("file ends inside the header length", name, unknown_position, file_bytes);
  const auto dict_length = read_little_endian(file.subspan(8, length_bytes));
  const auto dict_begin = 8 + length_bytes;
  if (dict_length > file_bytes - dict_begin)
    throw data_error("header length " + std::to_string(dict_length) +
                         " runs past the end of the file (" + std::to_string(file_bytes) +
                         " bytes)",
                     name, unknown_position, 8);
  npy_dict_parser parser(text.substr(dict_begin, dict_length), dict_begin, name);
  auto parsed = parser.parse();
  parsed.major_version = header.major_version;
  parsed.minor_version = header.minor_version;
  parsed.data_offset = dict_begin + dict_length;
  if (parsed.shape.empty())
    throw data_error("a 0-d array has no record dimension", name, unknown_position, dict_begin);
  std::uint64_t elements = 1;
  for (auto dim : parsed.shape) {
    if (dim != 0 && elements > std::numeric_limits<std::uint64_t>::max() / dim)
      throw data_error("shape overflows 64 bits", name, unknown_position, dict_begin);
    elements *= dim;
  }
  const auto element_bytes = element_size(parsed.dtype);
  if (elements > std::numeric_limits<std::uint64_t>::max() / element_bytes)
    throw data_error("shape overflows 64 bits", name, unknown_position, dict_begin);
  parsed.data_bytes = elements * element_bytes;
  const auto available = file_bytes - parsed.data_offset;
  if (available != parsed.data_bytes) {
    const auto record_bytes = parsed.shape[0] == 0 ? 0 : parsed.data_bytes / parsed.shape[0];
    if (available < parsed.data_bytes) {
      const auto whole = record_bytes == 0 ? 0 : available / record_bytes;
      throw data_error("truncated data: the shape needs " + std::to_string(parsed.data_bytes) +
                           " bytes, the file holds " + std::to_string(available),
                       name, whole, parsed.data_offset + whole * record_bytes);
    }
    throw data_error("data size mismatch: the shape needs " + std::to_string(parsed.data_bytes) +
                         " bytes, the file holds " + std::to_string(available),
                     name, unknown_position, parsed.data_offset + parsed.data_bytes);
  }
  return parsed;
}

// The header dict numpy writes for a little-endian C-order array of `shape`.
inline std::string format_npy_header(element_type dtype, std::span<const std::uint64_t> shape) {
  static constexpr std::string_view descrs[] = {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4",
                                                "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"};
  std::string dict = "{'descr': '";
  dict += descrs[static_cast<std::size_t>(dtype)];
  dict += "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  return dict;
}

// Preamble plus dict padded with spaces and a newline so the data starts at a
// multiple of 64 bytes and the whole header is at least `minimum_bytes` long.
inline std::string frame_npy_header(std::string dict, std::size_t minimum_bytes = 0) {
  std::size_t preamble = 10;
  auto total = [&] {
    std::size_t bytes = preamble + dict.size() + 1;
    if (bytes < minimum_bytes) bytes = minimum_bytes;
    return (bytes + 63) / 64 * 64;
  };
  if (total() - preamble > 0xffff) preamble = 12;
  const auto dict_bytes = total() - preamble;
  dict.append(dict_bytes - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(npy_magic);
  out += static_cast<char>(preamble == 10 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < preamble - 8; ++i)
    out += static_cast<char>((dict_bytes >> (8 * i)) & 0xff);
  return out + dict;
}

}  // namespace conveyor::detail
