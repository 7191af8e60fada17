// conveyor/decode/two_gram.hpp: text fields -> multi-hot two-gram labels (the
// DEA attack's label preprocessing, bit-exact), and scores -> grams.
//
// encode: concatenate the fields with no separator; delete every '"', '.' and
// '/'; strip leading and trailing whitespace and lowercase exactly as Python 3's
// str.strip() and str.lower() do on the UTF-8 decoded text; for each pair of
// adjacent code points that contains no ' ' (U+0020) and is in the alphabet,
// set that column to 1. Everything else in `out` is set to 0: the caller need
// not zero it. Text that is not valid UTF-8 is an error (the Python original
// opened its files as UTF-8 and would have raised UnicodeDecodeError).
//
// Pure functions: no allocation on the encode path (the throwing forms allocate
// only the exception), no state, thread-safe. The reverse functions allocate
// their result vector.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/text.hpp"
#include "conveyor/decode/field.hpp"
#include "conveyor/decode/detail/bit_values.hpp"
#include "conveyor/decode/detail/python_text.hpp"
#include "conveyor/decode/detail/utf8.hpp"
#include "conveyor/decode/gram_alphabet.hpp"
#include "conveyor/decode/status.hpp"

namespace conveyor {

namespace detail {

/// Walks the code points of several fields as one text.
struct field_text_walker {
  std::span<const std::string_view> fields;

  /// Calls visit(field, byte, length, code_point) for each code point of
  /// fields [begin_field:begin_byte, end_field:end_byte). Stops at the first
  /// invalid sequence and returns its status.
  template <class Visitor>
  decode_status walk(std::size_t begin_field, std::size_t begin_byte, std::size_t end_field,
                     std::size_t end_byte, Visitor&& visit) const noexcept {
    for (std::size_t field = begin_field; field <= end_field && field < fields.size(); ++field) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(fields[field].data());
      const std::size_t stop = field == end_field ? end_byte : fields[field].size();
      for (std::size_t byte = field == begin_field ? begin_byte : 0; byte < stop;) {
        char32_t code_point = bytes[byte];
        std::size_t length = 1;
        if (code_point >= 0x80) {
          length = decode_utf8_code_point(bytes + byte, fields[field].size() - byte, code_point);
          if (length == 0) return decode_status{decode_errc::invalid_utf8, byte, 0, field, "invalid UTF-8"};
        }
        visit(field, byte, length, code_point);
        byte += length;
      }
    }
    return {};
  }
};

/// The grams of text that is all ASCII (every DEA name and date), in one pass
/// over the bytes and one over the kept ones: for ASCII, UTF-8 decoding is the
/// identity, Python's whitespace is 0x09..0x0D, 0x1C..0x1F and ' ', and lower()
/// maps only A..Z. Returns false, having called neither, when a byte is not
/// ASCII or more than 256 bytes are kept (encode_two_grams_general is then the
/// answer); else calls start() once, then gram(column) for each adjacent pair
/// the alphabet holds, in text order (a column may come more than once).
template <class Start, class Gram>
bool for_each_two_gram_ascii(std::span<const std::string_view> fields, const gram_alphabet& alphabet,
                             Start&& start, Gram&& gram) noexcept {
  constexpr std::size_t capacity = 256;
  unsigned char kept[capacity];
  std::size_t count = 0;
  for (const std::string_view field : fields) {
    for (const char each : field) {
      const auto byte = static_cast<unsigned char>(each);
      if (byte >= 0x80) return false;
      if (is_deleted_label_character(byte)) continue;
      if (count == capacity) return false;
      kept[count++] = byte;
    }
  }
  start();
  std::size_t first = 0, last = count;
  while (first < last && is_python_whitespace(kept[first])) ++first;
  while (last > first && is_python_whitespace(kept[last - 1])) --last;
  const auto lower = [](unsigned byte) { return byte - unsigned{'A'} < 26u ? byte + 0x20u : byte; };
  unsigned previous = first < last ? lower(kept[first]) : 0;
  for (std::size_t index = first + 1; index < last; ++index) {
    const unsigned code = lower(kept[index]);
    if (previous != ' ' && code != ' ') {
      const std::uint16_t column = alphabet.lookup(previous, code);
      if (column != absent_gram) gram(static_cast<std::size_t>(column));
    }
    previous = code;
  }
  return true;
}

/// The label of ASCII text (for_each_two_gram_ascii) into out, zeroed first.
/// Returns false, having written nothing, where that returns false.
template <bit_element T>
bool encode_two_grams_ascii(std::span<const std::string_view> fields, T* out,
                            const gram_alphabet& alphabet) noexcept {
  return for_each_two_gram_ascii(
      fields, alphabet, [&] { std::fill(out, out + alphabet.size(), bit_zero<T>()); },
      [&](std::size_t column) { out[column] = bit_one<T>(); });
}

/// The label of any text: walks code points (UTF-8), the reference for
/// encode_two_grams_ascii. Sets out to zero first.
template <bit_element T>
decode_status encode_two_grams_general(std::span<const std::string_view> fields, T* out,
                                       const gram_alphabet& alphabet) noexcept {
  std::fill(out, out + alphabet.size(), bit_zero<T>());
  const field_text_walker walker{fields};
  // Pass 1: validate, and find the stripped range [first kept, last kept] after deletion.
  bool found = false;
  std::size_t begin_field = 0, begin_byte = 0, end_field = 0, end_byte = 0;
  const decode_status status = walker.walk(
      0, 0, fields.size(), 0, [&](std::size_t field, std::size_t byte, std::size_t length, char32_t code_point) {
        if (is_deleted_label_character(code_point) || is_python_whitespace(code_point)) return;
        if (!found) {
          found = true;
          begin_field = field;
          begin_byte = byte;
        }
        end_field = field;
        end_byte = byte + length;
      });
  if (!status || !found) return status;
  // Pass 2: lowercase and look up each adjacent pair.
  unsigned previous = other_gram_code;
  auto push = [&](unsigned code) {
    if (previous < other_gram_code && code < other_gram_code && previous != ' ' && code != ' ') {
      const std::uint16_t index = alphabet.lookup(previous, code);
      if (index != absent_gram) out[index] = bit_one<T>();
    }
    previous = code;
  };
  walker.walk(begin_field, begin_byte, end_field, end_byte,
              [&](std::size_t, std::size_t, std::size_t, char32_t code_point) {
                if (is_deleted_label_character(code_point)) return;
                std::uint16_t codes[2];
                const std::size_t count = lowercase_gram_codes(code_point, codes);
                for (std::size_t index = 0; index < count; ++index) push(codes[index]);
              });
  return {};
}

template <bit_element T>
decode_status encode_two_grams_into(std::span<const std::string_view> fields, T* out,
                                    const gram_alphabet& alphabet) noexcept {
  if (encode_two_grams_ascii(fields, out, alphabet)) return {};
  return encode_two_grams_general(fields, out, alphabet);
}

inline void check_label_width(std::size_t width, const gram_alphabet& alphabet) {
  if (width != alphabet.size()) {
    throw std::invalid_argument("two-gram label: output width " + std::to_string(width) +
                                " differs from the alphabet size " + std::to_string(alphabet.size()));
  }
}

}  // namespace detail

/// Writes the multi-hot label of `fields` into out (width alphabet.size(); 1 at
/// each gram present, 0 elsewhere). Returns invalid_utf8 with the field index
/// and the byte position of the first bad sequence in that field (out is then
/// all zero). Throws std::invalid_argument only when out.size() !=
/// alphabet.size(), a caller bug.
template <bit_element T>
decode_status try_encode_two_grams(std::span<const std::string_view> fields, std::span<T> out,
                                   const gram_alphabet& alphabet = dea_alphabet()) {
  detail::check_label_width(out.size(), alphabet);
  decode_status status = detail::encode_two_grams_into(fields, out.data(), alphabet);
  if (!status) std::fill(out.begin(), out.end(), detail::bit_zero<T>());
  return status;
}

/// One text field (already concatenated).
template <bit_element T>
decode_status try_encode_two_grams(std::string_view text, std::span<T> out,
                                   const gram_alphabet& alphabet = dea_alphabet()) {
  return try_encode_two_grams(std::span<const std::string_view>(&text, 1), out, alphabet);
}

/// Throwing form: data_error naming record.file and record.record. Its byte
/// offset is field_offsets[field] + position when the caller passes the file
/// offset of each field; otherwise record.offset as given, and the message
/// names the field index and the byte within the field.
template <bit_element T>
void encode_two_grams(std::span<const std::string_view> fields, std::span<T> out,
                      const error_location& record, const gram_alphabet& alphabet = dea_alphabet(),
                      std::span<const std::uint64_t> field_offsets = {}) {
  const decode_status status = try_encode_two_grams(fields, out, alphabet);
  if (status) return;
  error_location where = record;
  decode_status located = status;
  if (status.field < field_offsets.size()) {
    where.offset = field_offsets[status.field];
  } else {
    located.position = 0;  // keep record.offset untouched
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(fields[status.field].data());
  detail::throw_decode_error("two-gram label: invalid UTF-8 in field " + std::to_string(status.field) +
                                 " at byte " + std::to_string(status.position) + " (" +
                                 detail::describe_byte(bytes[status.position]) + ")",
                             where, located);
}

/// Throwing form for one text field; record.offset is taken as the field's offset.
template <bit_element T>
void encode_two_grams(std::string_view text, std::span<T> out, const error_location& record,
                      const gram_alphabet& alphabet = dea_alphabet()) {
  const std::uint64_t offsets[1] = {record.offset};
  encode_two_grams(std::span<const std::string_view>(&text, 1), out, record, alphabet,
                   record.offset == unknown_position ? std::span<const std::uint64_t>{}
                                                     : std::span<const std::uint64_t>(offsets));
}

/// A gram and the score a model gave it.
struct scored_gram {
  std::uint32_t index;    ///< column in the alphabet
  std::string_view gram;  ///< the gram (points into the alphabet, which must outlive it)
  float score;
};

namespace detail {
inline void check_score_width(std::size_t width, const gram_alphabet& alphabet) {
  if (width != alphabet.size()) {
    throw std::invalid_argument("two-gram scores: " + std::to_string(width) + " scores for an alphabet of " +
                                std::to_string(alphabet.size()) + " grams");
  }
}
}  // namespace detail

/// Grams whose score is strictly above threshold, in alphabet order. NaN
/// scores never qualify. Allocates the result; throws std::invalid_argument
/// when scores.size() != alphabet.size().
inline std::vector<scored_gram> grams_above(std::span<const float> scores, float threshold,
                                            const gram_alphabet& alphabet = dea_alphabet()) {
  detail::check_score_width(scores.size(), alphabet);
  std::vector<scored_gram> result;
  for (std::size_t index = 0; index < scores.size(); ++index) {
    if (scores[index] > threshold)
      result.push_back({static_cast<std::uint32_t>(index), alphabet.gram(index), scores[index]});
  }
  return result;
}

/// The k grams with the highest scores, highest first; equal scores in
/// alphabet order; NaN scores are left out (so fewer than k may come back).
/// Allocates; throws std::invalid_argument when scores.size() != alphabet.size().
inline std::vector<scored_gram> top_k_grams(std::span<const float> scores, std::size_t k,
                                            const gram_alphabet& alphabet = dea_alphabet()) {
  detail::check_score_width(scores.size(), alphabet);
  std::vector<scored_gram> result;
  result.reserve(scores.size());
  for (std::size_t index = 0; index < scores.size(); ++index) {
    if (!std::isnan(scores[index]))
      result.push_back({static_cast<std::uint32_t>(index), alphabet.gram(index), scores[index]});
  }
  const auto higher = [](const scored_gram& left, const scored_gram& right) {
    return left.score != right.score ? left.score > right.score : left.index < right.index;
  };
  const std::size_t kept = std::min(k, result.size());
  std::partial_sort(result.begin(), result.begin() + static_cast<std::ptrdiff_t>(kept), result.end(), higher);
  result.resize(kept);
  return result;
}

/// two_grams<T>(fields, alphabet): a decoder for decode(...): the multi-hot
/// two-gram label of the concatenated text fields, exactly as the dataset
/// extension attack builds it (see decoders.md); width alphabet.size() (1036
/// for the DEA alphabet).
template <bit_element T>
struct two_gram_decoder {
  using value_type = T;
  field_set fields;
  const gram_alphabet* alphabet;

  [[nodiscard]] std::size_t width() const noexcept { return alphabet->size(); }
  [[nodiscard]] std::vector<std::size_t> bind(const text_schema& schema) const { return fields.resolve(schema); }
  void decode(const text_column& records, std::size_t row, const std::vector<std::size_t>& columns,
              std::span<T> out) const {
    constexpr std::size_t inline_fields = 16;
    std::array<std::string_view, inline_fields> small;
    std::array<std::uint64_t, inline_fields> small_offsets;
    std::vector<std::string_view> large;
    std::vector<std::uint64_t> large_offsets;
    std::span<std::string_view> views;
    std::span<std::uint64_t> offsets;
    if (columns.size() <= inline_fields) {
      views = std::span(small.data(), columns.size());
      offsets = std::span(small_offsets.data(), columns.size());
    } else {
      large.resize(columns.size());
      large_offsets.resize(columns.size());
      views = large;
      offsets = large_offsets;
    }
    for (std::size_t i = 0; i < columns.size(); ++i) views[i] = records.field(row, columns[i]);
    auto status = try_encode_two_grams(std::span<const std::string_view>(views.data(), views.size()), out, *alphabet);
    if (status) return;
    for (std::size_t i = 0; i < columns.size(); ++i) offsets[i] = records.offset_of(row, views[i]);
    encode_two_grams(std::span<const std::string_view>(views.data(), views.size()), out, records.location(row),
                     *alphabet, std::span<const std::uint64_t>(offsets.data(), offsets.size()));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = detail::mix64(fields.fingerprint() ^ alphabet->size() ^ (sizeof(T) << 40) ^ detail::salt::two_grams);
    for (std::size_t g = 0; g < alphabet->size(); ++g) h = detail::combine(h, detail::hash_name(alphabet->gram(g)));
    return h;
  }
};
template <bit_element T = float>
two_gram_decoder<T> two_grams(field_set fields, const gram_alphabet& alphabet = gram_alphabet::dea()) {
  return {std::move(fields), &alphabet};
}

}  // namespace conveyor
