// conveyor/decode/two_gram_indices.hpp: text fields -> the two-gram label as an
// index list, the compact form a GPU expands to multi-hot.
//
//   cy::decode(cy::two_gram_indices({"GivenName", "Surname", "Birthday"}) >> "y_index")
//
// Each row is `max_grams` int32 values: the alphabet columns of the grams
// present (exactly those two_grams() sets to 1), ascending, then no_index (-1)
// padding. With the DEA alphabet a record has about 17 grams: 64 int32 (256 B)
// cross PCIe instead of 1036 float32 (4144 B), and gpu::expand_multi_hot
// (gpu/decode_kernels.cuh) rebuilds the multi-hot row on the device with the
// same per-value function the CPU test checks (detail/multi_hot_element.hpp).
//
// Columns: text fields in, dense<int32_t> of width max_grams out. ASCII text
// (every DEA record) goes straight to a bitset of the alphabet's columns on
// the stack; other text builds the whole label first. Allocates: for the
// latter, one alphabet-wide scratch row per thread (thread_local, once). Errors: as
// two_grams() (invalid UTF-8, naming file, record and byte offset), and a
// record with more grams than max_grams is a data_error naming the record and
// both counts (raise max_grams). Thread-safe.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "conveyor/core/error.hpp"
#include "conveyor/decode/detail/multi_hot_element.hpp"
#include "conveyor/decode/two_gram.hpp"

namespace conveyor {

struct two_gram_index_decoder {
  using value_type = std::int32_t;
  /// The ASCII fast path's limits: fields per record, alphabet size. (Plain
  /// arrays below: nvcc 13.0's front end rejects std::array<std::string_view, N>
  /// in this member, in a .cu translation unit.)
  static constexpr std::size_t max_ascii_fields = 16, max_ascii_columns = 4096;
  two_gram_decoder<std::uint8_t> labels;
  std::size_t max_grams;

  [[nodiscard]] std::size_t width() const noexcept { return max_grams; }
  [[nodiscard]] std::vector<std::size_t> bind(const text_schema& schema) const {
    return labels.bind(schema);
  }
  void decode(const text_column& records, std::size_t row, const std::vector<std::size_t>& columns,
              std::span<std::int32_t> out) const {
    std::size_t count = 0;
    if (!decode_ascii(records, row, columns, out, count)) {
      // Any text: the whole multi-hot label, then its nonzero columns.
      thread_local std::vector<std::uint8_t> multi_hot;
      multi_hot.resize(labels.width());
      labels.decode(records, row, columns, multi_hot);
      count = compact(multi_hot, out);
    }
    if (count > out.size()) {
      throw data_error("two-gram indices: the record has " + std::to_string(count) +
                           " grams, more than max_grams " + std::to_string(out.size()) +
                           "; raise max_grams",
                       records.location(row));
    }
  }
  /// The ASCII fast path (every DEA record): see ascii_indices. Returns false,
  /// having written nothing, for more than 16 fields or where that does.
  bool decode_ascii(const text_column& records, std::size_t row,
                    const std::vector<std::size_t>& columns, std::span<std::int32_t> out,
                    std::size_t& count) const {
    if (columns.size() > max_ascii_fields) return false;
    std::string_view views[max_ascii_fields];
    for (std::size_t i = 0; i < columns.size(); ++i) views[i] = records.field(row, columns[i]);
    return ascii_indices(std::span<const std::string_view>(views, columns.size()),
                         *labels.alphabet, out, count);
  }
  /// The grams of ASCII `fields` straight into a bitset of the alphabet's
  /// columns (at most 4096), whose set bits are the indices in ascending
  /// order, without the 1-byte-per-gram label that `compact` scans (which
  /// was most of this decoder's time: docs/performance.md, the cache stage;
  /// `decode_two_gram_bench` compares the two). Writes `out` and sets `count`
  /// as compact does; returns false, having written nothing, for text that is
  /// not all ASCII (or over 256 kept bytes) or a larger alphabet. The same
  /// indices as the general path (tested).
  static bool ascii_indices(std::span<const std::string_view> fields, const gram_alphabet& alphabet,
                            std::span<std::int32_t> out, std::size_t& count) noexcept {
    const std::size_t size = alphabet.size();
    if (size > max_ascii_columns) return false;
    std::uint64_t bits[max_ascii_columns / 64];
    const std::size_t used = (size + 63) / 64;
    if (!detail::for_each_two_gram_ascii(
            fields, alphabet, [&] { std::fill_n(bits, used, std::uint64_t{0}); },
            [&](std::size_t column) { bits[column / 64] |= std::uint64_t{1} << (column % 64); }))
      return false;
    count = 0;
    for (std::size_t word = 0; word < used; ++word)
      for (std::uint64_t mask = bits[word]; mask != 0; mask &= mask - 1) {
        if (count < out.size())
          out[count] = static_cast<std::int32_t>(word * 64 +
                                                 static_cast<std::size_t>(std::countr_zero(mask)));
        ++count;
      }
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(std::min(count, out.size())), out.end(),
              no_index);
    return true;
  }
  /// Writes the indices of the nonzero values of `multi_hot` into `out`,
  /// padding with no_index; returns how many there are (may exceed out.size()).
  /// Sixteen bytes at a time (SSE2; eight elsewhere): a DEA label has about
  /// 17 ones in 1036 bytes, and a byte-at-a-time scan was 55% of decoding
  /// the packed placement's front (docs/performance.md, the cache stage).
  static std::size_t compact(std::span<const std::uint8_t> multi_hot,
                             std::span<std::int32_t> out) noexcept {
    std::size_t count = 0;
    auto push = [&](std::size_t column) {
      if (count < out.size()) out[count] = static_cast<std::int32_t>(column);
      ++count;
    };
    const std::size_t size = multi_hot.size();
    std::size_t column = 0;
#if defined(__SSE2__)
    // A 16-bit mask of the nonzero bytes of each 16, its set bits taken
    // lowest first: fewer branches than a test per byte or per word, which
    // mispredicted at every gram.
    const __m128i zero = _mm_setzero_si128();
    for (; column + 16 <= size; column += 16) {
      const __m128i bytes =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(multi_hot.data() + column));
      auto mask = static_cast<unsigned>(~_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, zero))) & 0xFFFFu;
      for (; mask != 0; mask &= mask - 1)
        push(column + static_cast<std::size_t>(std::countr_zero(mask)));
    }
#else
    for (; column + 8 <= size; column += 8) {
      std::uint64_t word;
      std::memcpy(&word, multi_hot.data() + column, sizeof word);
      if (word == 0) continue;
      for (std::size_t byte = 0; byte < 8; ++byte)
        if (multi_hot[column + byte] != 0) push(column + byte);
    }
#endif
    for (; column < size; ++column)
      if (multi_hot[column] != 0) push(column);
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(std::min(count, out.size())), out.end(),
              no_index);
    return count;
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::combine(labels.fingerprint(),
                           detail::combine(detail::hash_name("two_gram_indices"), max_grams));
  }
};

/// two_gram_indices(fields, max_grams, alphabet): see the top of this header.
inline two_gram_index_decoder two_gram_indices(
    field_set fields, std::size_t max_grams = 64,
    const gram_alphabet& alphabet = gram_alphabet::dea()) {
  return {two_grams<std::uint8_t>(std::move(fields), alphabet), max_grams};
}

}  // namespace conveyor
