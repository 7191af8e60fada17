// conveyor/source/detail/delimited_scan.hpp: the byte-level grammar of delimited
// text, shared by the index builder and the record parser so that both agree on
// where a record ends.
//
// The grammar is Python's csv.reader with the default dialect (quotechar '"',
// doublequote, strict=False, skipinitialspace=False). Python runs a per-character
// state machine over lines; here the same language is scanned field by field,
// which lets the hot loop jump over plain bytes 16 at a time. The equivalence of
// the two formulations is what the fuzz target checks.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "conveyor/core/detail/hash.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CONVEYOR_DELIMITED_HAS_AVX2 1
#include <immintrin.h>
#else
#define CONVEYOR_DELIMITED_HAS_AVX2 0
#endif

namespace conveyor::detail::delimited {

inline constexpr char quote_char = '"';

// Portable fallback for find_first_of3: 8 bytes at a time with the classic
// "has a zero byte" bit trick. Borrows can flag bytes above the first real
// match, never below it, so the lowest flagged byte is exact.
inline const char* find_first_of3_swar(const char* p, const char* end, char a, char b,
                                       char c) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const std::uint64_t wa = ones * static_cast<unsigned char>(a);
    const std::uint64_t wb = ones * static_cast<unsigned char>(b);
    const std::uint64_t wc = ones * static_cast<unsigned char>(c);
    while (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      const std::uint64_t xa = word ^ wa, xb = word ^ wb, xc = word ^ wc;
      const std::uint64_t hits = ((xa - ones) & ~xa) | ((xb - ones) & ~xb) | ((xc - ones) & ~xc);
      const std::uint64_t flagged = hits & highs;
      if (flagged != 0) return p + (std::countr_zero(flagged) / 8);
      p += 8;
    }
  }
  for (; p < end; ++p)
    if (*p == a || *p == b || *p == c) return p;
  return end;
}

#if CONVEYOR_DELIMITED_HAS_AVX2
// Whether this CPU runs AVX2 code; checked once.
inline bool delimited_cpu_has_avx2() noexcept {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return supported;
}

// find_first_of3 for long runs, 64 bytes an iteration (the DEA records' bit
// strings are 1024 bytes); compiled for AVX2 whatever the build's flags, run
// only where delimited_cpu_has_avx2(). Leaves fewer than 64 bytes to the caller,
// returning the first of them, or the match.
__attribute__((target("avx2"))) inline const char* find_first_of3_avx2(const char* p,
                                                                       const char* end, char a,
                                                                       char b, char c) noexcept {
  const __m256i va = _mm256_set1_epi8(a), vb = _mm256_set1_epi8(b), vc = _mm256_set1_epi8(c);
  while (end - p >= 64) {
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const __m256i hit_low =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(low, va), _mm256_cmpeq_epi8(low, vb)),
                        _mm256_cmpeq_epi8(low, vc));
    const __m256i hit_high =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(high, va), _mm256_cmpeq_epi8(high, vb)),
                        _mm256_cmpeq_epi8(high, vc));
    const std::uint64_t mask =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(hit_low)) |
        static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(hit_high)))
            << 32;
    if (mask != 0) return p + std::countr_zero(mask);
    p += 64;
  }
  return p;
}
#endif

// The first byte in [p, end) equal to a, b or c; end if there is none.
inline const char* find_first_of3(const char* p, const char* end, char a, char b, char c) noexcept {
#if CONVEYOR_DELIMITED_HAS_AVX2
  if (end - p >= 128 && delimited_cpu_has_avx2()) {
    p = find_first_of3_avx2(p, end, a, b, c);
    if (end - p >= 64) return p;  // a match (one in the tail is found again below, at p)
  }
#endif
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
  while (end - p >= 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, va), _mm_cmpeq_epi8(chunk, vb)),
                     _mm_cmpeq_epi8(chunk, vc));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit));
    if (mask != 0) return p + std::countr_zero(mask);
    p += 16;
  }
#endif
  return find_first_of3_swar(p, end, a, b, c);
}

// Where one field lies in the file and how to turn it into its value.
struct field_extent {
  const char* raw_begin = nullptr;  // first byte (the opening quote if quoted)
  const char* raw_end = nullptr;    // one past the last byte of the field
  // The value as a contiguous slice of the file; valid when !needs_unescape.
  const char* value_begin = nullptr;
  const char* value_end = nullptr;
  bool needs_unescape = false;  // "" inside quotes, or bytes after the closing quote
  bool unterminated = false;    // an opening quote that no closing quote matches
};

// Scans one field starting at p (which may equal end: an empty last field).
// The field stops before a delimiter, '\r', '\n' or the end of the file.
inline field_extent scan_field(const char* p, const char* end, char delimiter) noexcept {
  field_extent field;
  field.raw_begin = p;
  if (p == end || *p != quote_char) {
    const char* stop = find_first_of3(p, end, delimiter, '\r', '\n');
    field.raw_end = stop;
    field.value_begin = p;
    field.value_end = stop;
    return field;
  }
  const char* cursor = p + 1;
  for (;;) {
    const auto* quote = static_cast<const char*>(
        std::memchr(cursor, quote_char, static_cast<std::size_t>(end - cursor)));
    if (quote == nullptr) {
      field.raw_end = end;
      field.unterminated = true;
      field.needs_unescape = true;
      return field;
    }
    if (quote + 1 < end && quote[1] == quote_char) {
      field.needs_unescape = true;
      cursor = quote + 2;
      continue;
    }
    const char* after = quote + 1;
    if (after == end || *after == delimiter || *after == '\r' || *after == '\n') {
      field.raw_end = after;
      field.value_begin = p + 1;
      field.value_end = quote;
      return field;
    }
    // Python's strict=False: bytes after the closing quote join the field as
    // ordinary characters (quotes included) up to the next delimiter or newline.
    field.raw_end = find_first_of3(after, end, delimiter, '\r', '\n');
    field.needs_unescape = true;
    return field;
  }
}

// Writes the value of a field that needs unescaping to out, which must have
// room for (raw_end - raw_begin) bytes; returns the number of bytes written.
inline std::size_t unescape_field(const field_extent& field, char* out) noexcept {
  const char* p = field.raw_begin + 1;  // past the opening quote
  const char* end = field.raw_end;
  char* write = out;
  while (p < end) {
    if (*p == quote_char) {
      if (p + 1 < end && p[1] == quote_char) {
        *write++ = quote_char;
        p += 2;
        continue;
      }
      ++p;  // the closing quote; whatever follows is plain text
      const auto rest = static_cast<std::size_t>(end - p);
      if (rest != 0) std::memcpy(write, p, rest);
      write += rest;
      break;
    }
    *write++ = *p++;
  }
  return static_cast<std::size_t>(write - out);
}

// After a field: is the record over, and where does the next one start?
enum class field_end : std::uint8_t { delimiter, record_end, end_of_file };

struct after_field {
  field_end kind;
  const char* next;  // the next field (delimiter) or the next record (otherwise)
};

inline after_field step_after(const char* stop, const char* end, char delimiter) noexcept {
  if (stop == end) return {field_end::end_of_file, end};
  if (*stop == delimiter) return {field_end::delimiter, stop + 1};
  if (*stop == '\r' && stop + 1 < end && stop[1] == '\n') return {field_end::record_end, stop + 2};
  return {field_end::record_end, stop + 1};  // '\n' or a lone '\r'
}

// A blank line: a record start that is immediately a line terminator. Python
// yields [] for it. Returns the start of the following line.
inline bool is_blank_line(const char* p, const char* end) noexcept {
  return p < end && (*p == '\r' || *p == '\n');
}
inline const char* skip_line_terminator(const char* p, const char* end) noexcept {
  if (*p == '\r' && p + 1 < end && p[1] == '\n') return p + 2;
  return p + 1;
}

// How a record scan went.
struct record_scan {
  const char* next = nullptr;                // where the following record starts
  std::size_t field_count = 0;               // fields seen
  const char* unterminated_quote = nullptr;  // the opening quote, if one never closes
};

// Visits every field of the record at p (p < end, not a blank line) in order,
// calling visit(const field_extent&, std::size_t field_number) for each.
template <class Visit>
record_scan scan_record(const char* p, const char* end, char delimiter, Visit&& visit) {
  record_scan result;
  for (;;) {
    const field_extent field = scan_field(p, end, delimiter);
    if (field.unterminated) {
      result.next = end;
      result.unterminated_quote = field.raw_begin;
      return result;
    }
    visit(field, result.field_count);
    ++result.field_count;
    const after_field step = step_after(field.raw_end, end, delimiter);
    if (step.kind != field_end::delimiter) {
      result.next = step.next;
      return result;
    }
    p = step.next;
  }
}

using detail::hash_bytes;
using detail::mix64;

}  // namespace conveyor::detail::delimited
