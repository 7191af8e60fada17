// conveyor/cache/detail/cached_batch.hpp: a record_batch's rows to and from
// the per-record values of row_codec.hpp, for the cache stage.
//
// Why the type tag hashes names, kinds and dtypes: two chains that happen to
// share a key (a renamed column, float -> double) must never read each
// other's bytes as their own; the tag turns that into a counted miss.
//
// Bitmap columns (row_codec.hpp): a dense column of a dtype with a 0 and a 1
// (binary_dtype below: float, double, float16, bfloat16, the integer types,
// bool) whose values in one record are all exactly the bit pattern of 0 or
// of 1 is stored as one bit per value. The scan compares every value's bits
// against the two patterns (-0.0, NaN, 2, a denormal... anything else keeps
// the column raw for that record), stopping at the first block that holds
// another value; a hit expands the bitmap with the decoders' kernels
// (decode/detail/packed_bits_kernels.hpp, AVX2 when the CPU has it) straight
// into the output column. Lossless by construction: the bitmap exists only
// when every value is one of the two patterns, and expands to those patterns.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/row_codec.hpp"
#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/half.hpp"
#include "conveyor/decode/bit_element.hpp"
#include "conveyor/decode/bit_order.hpp"
#include "conveyor/decode/detail/bits_avx2.hpp"
#include "conveyor/decode/detail/packed_bits_kernels.hpp"

namespace conveyor::detail {

template <class Column>
concept dense_column_spec = requires {
  typename Column::value_type;
  requires std::same_as<typename Column::storage, dense_column<typename Column::value_type>>;
};
template <class Column>
concept bytes_column_spec = std::same_as<typename Column::storage, bytes_column>;

template <class Batch>
inline constexpr bool cacheable_batch_v = false;
template <class... Columns>
inline constexpr bool cacheable_batch_v<record_batch<Columns...>> =
    ((dense_column_spec<Columns> || bytes_column_spec<Columns>)&&...);

/// The dtypes a dense column may be stored as a bitmap in, with their 0 and 1
/// as unsigned words of the same size (0 is all-zero bits in every one).
template <class T>
struct binary_dtype {
  static constexpr bool packable = false;
};
template <class T>
requires(std::is_integral_v<T> && (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 ||
                                   sizeof(T) == 8)) struct binary_dtype<T> {
  static constexpr bool packable = true;
  using word = std::conditional_t<
      sizeof(T) == 1, std::uint8_t,
      std::conditional_t<sizeof(T) == 2, std::uint16_t,
                         std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  static constexpr word one = 1;
};
template <>
struct binary_dtype<float> {
  static constexpr bool packable = sizeof(float) == 4;
  using word = std::uint32_t;
  static constexpr word one = 0x3F80'0000u;
};
template <>
struct binary_dtype<double> {
  static constexpr bool packable = sizeof(double) == 8;
  using word = std::uint64_t;
  static constexpr word one = 0x3FF0'0000'0000'0000ull;
};
template <>
struct binary_dtype<float16> {
  static constexpr bool packable = sizeof(float16) == 2;
  using word = std::uint16_t;
  static constexpr word one = 0x3C00u;
};
template <>
struct binary_dtype<bfloat16> {
  static constexpr bool packable = sizeof(bfloat16) == 2;
  using word = std::uint16_t;
  static constexpr word one = 0x3F80u;
};

/// Portable scan-and-pack of `count` words from value `from` on (a multiple
/// of 8): see pack_binary.
template <class Word>
bool pack_binary_portable(const std::byte* values, std::size_t from, std::size_t count, Word one,
                          std::uint8_t* bitmap) noexcept {
  for (std::size_t at = from; at < count; at += 8) {
    const std::size_t n = count - at < 8 ? count - at : 8;
    Word words[8];
    std::memcpy(words, values + at * sizeof(Word), n * sizeof(Word));
    unsigned other = 0, bits = 0;
    for (std::size_t k = 0; k < n; ++k) {
      other |= static_cast<unsigned>(words[k] != 0 && words[k] != one);
      bits |= static_cast<unsigned>(words[k] == one) << k;
    }
    if (other != 0) return false;
    bitmap[at / 8] = static_cast<std::uint8_t>(bits);
  }
  return true;
}

#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
// AVX2 scan-and-pack, 32 values per step: returns the values done (a
// multiple of 32; the caller packs the rest portably), or sets `other` at a
// step holding a value that is neither 0 nor `one`. Each step compares every
// word with `one` and ORs together the words that are not `one` (andnot):
// the step is binary exactly when that OR is zero. The compare masks, packed
// down to one byte per value in value order, give the bitmap's next 4 bytes
// (x86 is little-endian: byte 0 = values 0..7). About 5 vector instructions
// per 32 bytes, a third fewer than comparing with 0 and with 1 separately.

/// 4-byte words (float, int32, uint32).
__attribute__((target("avx2"))) inline std::size_t pack_binary_words4_avx2(const std::byte* values,
                                                                           std::size_t count,
                                                                           std::uint32_t one,
                                                                           std::uint8_t* bitmap,
                                                                           bool& other) noexcept {
  const __m256i one_word = _mm256_set1_epi32(static_cast<int>(one));
  // packs_epi32 then packs_epi16 leave the 4-value groups of the four
  // vectors interleaved by 128-bit lane; this puts them back in value order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  std::size_t at = 0;
  for (; at + 32 <= count; at += 32) {
    const auto* in = reinterpret_cast<const __m256i*>(values + at * 4);
    const __m256i w0 = _mm256_loadu_si256(in), w1 = _mm256_loadu_si256(in + 1),
                  w2 = _mm256_loadu_si256(in + 2), w3 = _mm256_loadu_si256(in + 3);
    const __m256i e0 = _mm256_cmpeq_epi32(w0, one_word), e1 = _mm256_cmpeq_epi32(w1, one_word),
                  e2 = _mm256_cmpeq_epi32(w2, one_word), e3 = _mm256_cmpeq_epi32(w3, one_word);
    const __m256i rest =
        _mm256_or_si256(_mm256_or_si256(_mm256_andnot_si256(e0, w0), _mm256_andnot_si256(e1, w1)),
                        _mm256_or_si256(_mm256_andnot_si256(e2, w2), _mm256_andnot_si256(e3, w3)));
    if (!_mm256_testz_si256(rest, rest)) {
      other = true;
      return at;
    }
    const __m256i bytes = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(e0, e1), _mm256_packs_epi32(e2, e3)), order);
    const auto bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(bytes));
    std::memcpy(bitmap + at / 8, &bits, 4);
  }
  return at;
}

/// 2-byte words (float16, bfloat16, int16, uint16).
__attribute__((target("avx2"))) inline std::size_t pack_binary_words2_avx2(const std::byte* values,
                                                                           std::size_t count,
                                                                           std::uint16_t one,
                                                                           std::uint8_t* bitmap,
                                                                           bool& other) noexcept {
  const __m256i one_word = _mm256_set1_epi16(static_cast<short>(one));
  std::size_t at = 0;
  for (; at + 32 <= count; at += 32) {
    const auto* in = reinterpret_cast<const __m256i*>(values + at * 2);
    const __m256i w0 = _mm256_loadu_si256(in), w1 = _mm256_loadu_si256(in + 1);
    const __m256i e0 = _mm256_cmpeq_epi16(w0, one_word), e1 = _mm256_cmpeq_epi16(w1, one_word);
    const __m256i rest = _mm256_or_si256(_mm256_andnot_si256(e0, w0), _mm256_andnot_si256(e1, w1));
    if (!_mm256_testz_si256(rest, rest)) {
      other = true;
      return at;
    }
    // packs_epi16 interleaves the 8-value halves by lane: 64-bit order 0, 2, 1, 3.
    const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(e0, e1), 0xD8);
    const auto bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(bytes));
    std::memcpy(bitmap + at / 8, &bits, 4);
  }
  return at;
}

/// 8-byte words (double, int64, uint64).
__attribute__((target("avx2"))) inline std::size_t pack_binary_words8_avx2(const std::byte* values,
                                                                           std::size_t count,
                                                                           std::uint64_t one,
                                                                           std::uint8_t* bitmap,
                                                                           bool& other) noexcept {
  const __m256i one_word = _mm256_set1_epi64x(static_cast<long long>(one));
  std::size_t at = 0;
  for (; at + 32 <= count; at += 32) {
    const auto* in = reinterpret_cast<const __m256i*>(values + at * 8);
    __m256i rest = _mm256_setzero_si256();
    std::uint32_t bits = 0;
    for (int k = 0; k < 8; ++k) {
      const __m256i w = _mm256_loadu_si256(in + k);
      const __m256i e = _mm256_cmpeq_epi64(w, one_word);
      rest = _mm256_or_si256(rest, _mm256_andnot_si256(e, w));
      bits |= static_cast<std::uint32_t>(_mm256_movemask_pd(_mm256_castsi256_pd(e))) << (4 * k);
    }
    if (!_mm256_testz_si256(rest, rest)) {
      other = true;
      return at;
    }
    std::memcpy(bitmap + at / 8, &bits, 4);
  }
  return at;
}

/// 1-byte words (uint8, int8, char, bool): a byte is 0 or 1 exactly when its
/// bits 1..7 are clear.
__attribute__((target("avx2"))) inline std::size_t pack_binary_words1_avx2(const std::byte* values,
                                                                           std::size_t count,
                                                                           std::uint8_t* bitmap,
                                                                           bool& other) noexcept {
  const __m256i high_bits = _mm256_set1_epi8(static_cast<char>(0xFE));
  std::size_t at = 0;
  for (; at + 32 <= count; at += 32) {
    const __m256i words = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + at));
    if (!_mm256_testz_si256(words, high_bits)) {
      other = true;
      return at;
    }
    // 0/1 bytes: shifting 16-bit lanes left by 7 moves each byte's bit 0 into its bit 7.
    const auto bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(words, 7)));
    std::memcpy(bitmap + at / 8, &bits, 4);
  }
  return at;
}
#endif

/// Scans `count` values of T at `values` (any alignment): when every one is
/// exactly T's 0 or 1 (binary_dtype), writes their bitmap_bytes(count)-byte
/// bitmap (row_codec.hpp: value i is bit i % 8 of byte i / 8, unused bits
/// zero) and returns true; else returns false, at the first block of 8 (or
/// 32 with AVX2, every word size) values that holds another value, with
/// `bitmap` partly written. The AVX2 and portable paths write the same bits
/// and give the same answer (tests/cache/row_codec.cpp). Never throws, never
/// allocates.
template <class T>
requires binary_dtype<T>::packable bool pack_binary(const std::byte* values, std::size_t count,
                                                    std::uint8_t* bitmap) noexcept {
  using word = typename binary_dtype<T>::word;
  std::size_t done = 0;
#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
  if (cpu_supports_avx2()) {
    bool other = false;
    if constexpr (sizeof(word) == 8)
      done = pack_binary_words8_avx2(values, count, binary_dtype<T>::one, bitmap, other);
    else if constexpr (sizeof(word) == 4)
      done = pack_binary_words4_avx2(values, count, binary_dtype<T>::one, bitmap, other);
    else if constexpr (sizeof(word) == 2)
      done = pack_binary_words2_avx2(values, count, binary_dtype<T>::one, bitmap, other);
    else
      done = pack_binary_words1_avx2(values, count, bitmap, other);
    if (other) return false;
  }
#endif
  return pack_binary_portable<word>(values, done, count, binary_dtype<T>::one, bitmap);
}

/// Portable expansion of values `from` .. `count` of a bitmap into words
/// `one` or 0 at `target` (bytes, any alignment).
template <class Word>
void expand_binary_words_portable(const std::uint8_t* bitmap, std::size_t from, std::size_t count,
                                  Word one, std::byte* target) noexcept {
  for (std::size_t i = from; i < count; ++i) {
    const Word value = ((bitmap[i / 8] >> (i % 8)) & 1u) != 0 ? one : Word{0};
    std::memcpy(target + i * sizeof(Word), &value, sizeof(Word));
  }
}

#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
/// AVX2 expansion into 2-, 4- or 8-byte words `one` or 0, 32 values per step
/// (the decoders' float kernel, for any word size and encoding of 1): the
/// step's 4 bitmap bytes are broadcast to every lane, each lane tests its own
/// bit, and the compare mask selects `one`. Returns the values done (a
/// multiple of 32); the caller expands the rest portably.
template <class Word>
__attribute__((target("avx2"))) std::size_t expand_binary_words_avx2(const std::uint8_t* bitmap,
                                                                      std::size_t count, Word one,
                                                                      std::byte* target) noexcept {
  constexpr int lanes = 32 / static_cast<int>(sizeof(Word));  // per vector
  constexpr int vectors = 32 / lanes;                            // per step of 32 values
  __m256i select[vectors];
  __m256i one_word;
  for (int v = 0; v < vectors; ++v) {
    alignas(32) Word bits[lanes];
    for (int j = 0; j < lanes; ++j) {
      // Lane j of vector v holds value v * lanes + j: bit (v * lanes + j) % (8 * sizeof(Word))
      // of the part of the 32-bit step word that its lane can see.
      const int value = v * lanes + j;
      bits[j] = static_cast<Word>(Word{1} << (sizeof(Word) == 2 ? value % 16 : value));
    }
    select[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bits));
  }
  if constexpr (sizeof(Word) == 2)
    one_word = _mm256_set1_epi16(static_cast<short>(one));
  else if constexpr (sizeof(Word) == 4)
    one_word = _mm256_set1_epi32(static_cast<int>(one));
  else
    one_word = _mm256_set1_epi64x(static_cast<long long>(one));
  std::size_t at = 0;
  for (; at + 32 <= count; at += 32) {
    std::uint32_t step;
    std::memcpy(&step, bitmap + at / 8, 4);  // x86 is little-endian: bit k = value at + k
    for (int v = 0; v < vectors; ++v) {
      __m256i word_bits, set;
      if constexpr (sizeof(Word) == 2) {
        // 16-bit lanes see one half of the step: values 0-15, then 16-31.
        word_bits = _mm256_set1_epi16(static_cast<short>(step >> (16 * v)));
        set = _mm256_cmpeq_epi16(_mm256_and_si256(word_bits, select[v]), select[v]);
      } else if constexpr (sizeof(Word) == 4) {
        word_bits = _mm256_set1_epi32(static_cast<int>(step));
        set = _mm256_cmpeq_epi32(_mm256_and_si256(word_bits, select[v]), select[v]);
      } else {
        word_bits = _mm256_set1_epi64x(static_cast<long long>(step));
        set = _mm256_cmpeq_epi64(_mm256_and_si256(word_bits, select[v]), select[v]);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(target + (at + v * lanes) * sizeof(Word)),
                          _mm256_and_si256(set, one_word));
    }
  }
  return at;
}
#endif

/// Expands a bitmap written by pack_binary into `count` values of T at `out`:
/// the decoders' row kernel (AVX2 when the CPU has it) for float, float16,
/// bfloat16 and the 1-byte types, expand_binary_words_avx2 for the other
/// 2-, 4- and 8-byte types (int16, int32, int64, double...), each with the
/// portable loop for the tail and on CPUs without AVX2. Never throws.
template <class T>
requires binary_dtype<T>::packable void expand_binary(const std::uint8_t* bitmap, std::size_t count,
                                                      T* out) noexcept {
  if constexpr (bit_element<T>) {
    unpack_row<T>(bitmap, count, out, bit_order::little, cpu_supports_avx2());
  } else if constexpr (sizeof(T) == 1) {
    // Same bytes as uint8's 0 and 1; unsigned char may alias any T.
    unpack_row<std::uint8_t>(bitmap, count, reinterpret_cast<std::uint8_t*>(out), bit_order::little,
                             cpu_supports_avx2());
  } else {
    using word = typename binary_dtype<T>::word;
    auto* target = reinterpret_cast<std::byte*>(out);
    std::size_t done = 0;
#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
    if (cpu_supports_avx2())
      done = expand_binary_words_avx2<word>(bitmap, count, binary_dtype<T>::one, target);
#endif
    expand_binary_words_portable<word>(bitmap, done, count, binary_dtype<T>::one, target);
  }
}

/// The compiler's spelling of T (stable within one compiler, which is all the
/// tag needs: another compiler's values are then misses, never wrong rows).
template <class T>
consteval std::string_view spelled_type() {
  return __PRETTY_FUNCTION__;
}

template <class T>
constexpr void hash_dtype(std::uint64_t& h) {
  auto add = [&h](std::string_view text) { h = fnv1a(text, h); };
  if constexpr (std::is_same_v<T, bool>) {
    add("b");
  } else if constexpr (std::is_floating_point_v<T>) {
    add("f");
  } else if constexpr (std::is_integral_v<T>) {
    add(std::is_signed_v<T> ? "i" : "u");
  } else {
    add(spelled_type<T>());
  }
  const char size[2] = {static_cast<char>('0' + sizeof(T) % 10),
                        static_cast<char>('0' + sizeof(T) / 10 % 10)};
  add(std::string_view(size, 2));
}

template <class... Columns>
consteval std::uint64_t batch_type_tag(std::type_identity<record_batch<Columns...>>) {
  std::uint64_t h = salt::fnv_offset;
  auto add = [&h](std::string_view text) {
    h = fnv1a(text, h);
    h = fnv1a("\xff", h);  // separator: ("ab","c") != ("a","bc")
  };
  add(std::endian::native == std::endian::little ? "le" : "be");
  (
      [&] {
        add(Columns::name.view());
        if constexpr (dense_column_spec<Columns>) {
          add("dense");
          hash_dtype<typename Columns::value_type>(h);
        } else {
          add("bytes");
        }
      }(),
      ...);
  return h;
}

/// Encoding, validation and assembly for one cacheable batch type.
template <class Batch>
struct cached_batch;

template <class... Columns>
struct cached_batch<record_batch<Columns...>> {
  using batch_type = record_batch<Columns...>;
  static constexpr std::size_t column_count = sizeof...(Columns);
  using fields = row_fields<column_count>;
  static constexpr std::uint64_t type_tag = batch_type_tag(std::type_identity<batch_type>{});
  static constexpr std::array<std::uint32_t, column_count> unit_bytes{[] {
    if constexpr (dense_column_spec<Columns>) {
      return static_cast<std::uint32_t>(sizeof(typename Columns::value_type));
    } else {
      return std::uint32_t{1};
    }
  }()...};
  static constexpr std::array<bool, column_count> is_dense{dense_column_spec<Columns>...};
  /// Whether column c may be stored as a bitmap: dense, of a binary_dtype.
  static constexpr std::array<bool, column_count> packable{[] {
    if constexpr (dense_column_spec<Columns>) {
      return binary_dtype<typename Columns::value_type>::packable;
    } else {
      return false;
    }
  }()...};

  /// What a batch's values will hold, decided by scanning its rows before
  /// their sizes are asked for: which columns of which rows are bitmaps, and
  /// those bitmaps (so that writing a value reads each column once more only
  /// when it is raw). Reused between batches (per-thread scratch).
  struct value_plan {
    std::vector<std::uint8_t> bitmap;  ///< rows x column_count: column c of row r is a bitmap
    std::vector<std::uint8_t> bits;    ///< rows x row_bits bytes: each row's bitmaps
    std::array<std::size_t, column_count> bits_offset{};  ///< column c's bitmap in a row's bytes
    std::size_t row_bits = 0;
    bool pack = true;
    std::uint64_t bitmap_columns = 0;  ///< dense columns of the batch's rows planned as bitmaps
    std::uint64_t raw_columns = 0;     ///< dense columns of the batch's rows planned raw
  };

  /// The bytes of each column of row r of `batch`, and each column's extent.
  static void row_columns(const batch_type& batch, std::size_t r,
                          std::array<std::span<const std::byte>, column_count>& data,
                          std::array<std::uint64_t, column_count>& extents) noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const auto& column = std::get<I>(batch.columns());
            if constexpr (is_dense[I]) {
              data[I] = std::as_bytes(column.row(r));
              extents[I] = column.width();
            } else {
              data[I] = column.row(r);
              extents[I] = data[I].size();
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Prepares `plan` for the rows of `batch`: with `pack` false every column
  /// stays raw. Allocates (the plan's vectors grow to the largest batch).
  static void plan_batch(const batch_type& batch, bool pack, value_plan& plan) {
    const auto widths = dense_widths(batch);
    plan.pack = pack;
    plan.row_bits = 0;
    plan.bitmap_columns = 0;
    plan.raw_columns = 0;
    for (std::size_t c = 0; c < column_count; ++c) {
      plan.bits_offset[c] = plan.row_bits;
      if (pack && packable[c]) plan.row_bits += static_cast<std::size_t>(bitmap_bytes(widths[c]));
    }
    plan.bitmap.assign(batch.rows() * column_count, 0);
    plan.bits.resize(batch.rows() * plan.row_bits);
  }

  /// Scans row r of `batch` (plan_batch first): decides which of its columns
  /// are bitmaps, writes those into the plan, and returns the size of the
  /// row's value. Rows may be planned in any order, each once.
  static std::size_t plan_value(const batch_type& batch, std::size_t r, value_plan& plan) noexcept {
    std::array<std::span<const std::byte>, column_count> data;
    std::array<std::uint64_t, column_count> extents{};
    row_columns(batch, r, data, extents);
    std::size_t size = row_header_bytes(column_count);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (packable[I]) {
              using T = typename std::tuple_element_t<I, std::tuple<Columns...>>::value_type;
              if (plan.pack && extents[I] > 0 &&
                  pack_binary<T>(data[I].data(), static_cast<std::size_t>(extents[I]),
                                 plan.bits.data() + r * plan.row_bits + plan.bits_offset[I])) {
                plan.bitmap[r * column_count + I] = 1;
                size += static_cast<std::size_t>(bitmap_bytes(extents[I]));
                ++plan.bitmap_columns;
                return;
              }
            }
            if constexpr (is_dense[I]) ++plan.raw_columns;
            size += data[I].size();
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
    return size;
  }

  /// Writes the value of row r of `batch` into `out` (exactly the size
  /// plan_value returned for it); with row_checksum::trust without its
  /// CRC32C (row_codec.hpp).
  static void write_value(const batch_type& batch, std::size_t r, const value_plan& plan,
                          std::span<std::byte> out,
                          row_checksum checksum = row_checksum::verify) noexcept {
    std::array<std::span<const std::byte>, column_count> data;
    std::array<std::uint64_t, column_count> extents{};
    row_columns(batch, r, data, extents);
    std::array<bool, column_count> bitmap{};
    for (std::size_t c = 0; c < column_count; ++c) {
      if (!plan.bitmap[r * column_count + c]) continue;
      bitmap[c] = true;
      data[c] = std::as_bytes(
          std::span<const std::uint8_t>(plan.bits.data() + r * plan.row_bits + plan.bits_offset[c],
                                        static_cast<std::size_t>(bitmap_bytes(extents[c]))));
    }
    write_row<column_count>(out, type_tag, data, extents, checksum, bitmap);
  }

  /// The value of row r of `batch` appended to `out`, bitmaps where they
  /// apply when `pack` (one row's plan_batch, plan_value and write_value).
  static void append_value(const batch_type& batch, std::size_t r, std::vector<std::byte>& out,
                           bool pack = true, row_checksum checksum = row_checksum::verify) {
    value_plan plan;
    plan_batch(batch, pack, plan);
    const std::size_t start = out.size();
    out.resize(start + plan_value(batch, r, plan));
    write_value(batch, r, plan, std::span<std::byte>(out).subspan(start), checksum);
  }

  /// Checks a value read from a tier; on ok, `out` views into `value`.
  static row_check parse(std::span<const std::byte> value, fields& out,
                         row_checksum checksum = row_checksum::verify) noexcept {
    return parse_row<column_count>(value, type_tag, unit_bytes, out, checksum, packable);
  }

  /// The width of each dense column of `batch` (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const batch_type& batch) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((widths[I] = is_dense[I] ? width_of(std::get<I>(batch.columns())) : 0), ...);
    }
    (std::make_index_sequence<column_count>{});
    return widths;
  }
  /// The dense widths a hit carries (0 for bytes columns).
  static std::array<std::uint64_t, column_count> dense_widths(const fields& hit) noexcept {
    std::array<std::uint64_t, column_count> widths{};
    for (std::size_t c = 0; c < column_count; ++c) widths[c] = is_dense[c] ? hit.extents[c] : 0;
    return widths;
  }

  /// The bytes columns' rows of the hits of one batch, gathered while the tier
  /// shows each value (it cannot be kept past that), until the columns are
  /// built: row r's bytes of column c are blob[c][offset[c][r] ..][.. length[c][r]].
  struct hit_bytes {
    std::array<std::vector<std::byte>, column_count> blob;
    std::array<std::vector<std::uint64_t>, column_count> offset;
    std::array<std::vector<std::uint64_t>, column_count> length;

    void reset(std::size_t rows) {
      for (std::size_t c = 0; c < column_count; ++c) {
        if (is_dense[c]) continue;
        blob[c].clear();
        offset[c].assign(rows, 0);
        length[c].assign(rows, 0);
      }
    }
  };

  /// Gives every dense column of `out` `rows` rows of `widths[c]` values,
  /// from ctx.pool_for(its name) (the sink's pool when delivered); contents
  /// unspecified until copied into.
  static void allocate_dense(batch_type& out, const stage_context& ctx, std::size_t rows,
                             const std::array<std::uint64_t, column_count>& widths) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (is_dense[I]) {
              using storage = std::tuple_element_t<I, std::tuple<typename Columns::storage...>>;
              std::get<I>(out.columns()) = storage(ctx.pool_for(column_name<I>()), rows, widths[I]);
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Copies a validated hit into row `row` of `out`'s dense columns (which
  /// have the hit's widths; a bitmap column expanded into them) and its bytes
  /// columns into `bytes`: the one copy of a hit's dense bytes.
  static void copy_hit(const fields& hit, batch_type& out, std::size_t row, hit_bytes& bytes) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const auto& from = hit.data[I];
            if constexpr (packable[I]) {
              if (hit.bitmap[I]) {
                expand_binary(reinterpret_cast<const std::uint8_t*>(from.data()),
                              static_cast<std::size_t>(hit.extents[I]),
                              std::get<I>(out.columns()).row(row).data());
                return;
              }
            }
            if constexpr (is_dense[I]) {
              if (!from.empty())
                std::memcpy(
                    reinterpret_cast<std::byte*>(std::get<I>(out.columns()).row(row).data()),
                    from.data(), from.size());
            } else {
              bytes.offset[I][row] = bytes.blob[I].size();
              bytes.length[I][row] = from.size();
              bytes.blob[I].insert(bytes.blob[I].end(), from.begin(), from.end());
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Copies row `from` of `fresh` into row `row` of `out`'s dense columns.
  static void copy_fresh_dense(const batch_type& fresh, std::size_t from, batch_type& out,
                               std::size_t row) noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (is_dense[I]) {
              auto source = std::as_bytes(std::get<I>(fresh.columns()).row(from));
              if (!source.empty())
                std::memcpy(
                    reinterpret_cast<std::byte*>(std::get<I>(out.columns()).row(row).data()),
                    source.data(), source.size());
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

  /// Builds `out`'s bytes columns, `rows` rows: row r from the hit bytes when
  /// from_hit[r], else row fresh_row[r] of `fresh` when fresh_row[r] is not
  /// `no_row`, else empty (a row about to be dropped).
  static constexpr std::size_t no_row = static_cast<std::size_t>(-1);
  static void build_bytes(batch_type& out, const stage_context& ctx, std::size_t rows,
                          std::span<const std::uint8_t> from_hit,
                          std::span<const std::size_t> fresh_row, const hit_bytes& bytes,
                          const batch_type* fresh) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            if constexpr (!is_dense[I]) {
              auto row_bytes = [&](std::size_t r) -> std::span<const std::byte> {
                if (from_hit[r])
                  return std::span<const std::byte>(bytes.blob[I])
                      .subspan(bytes.offset[I][r], bytes.length[I][r]);
                if (fresh_row[r] != no_row) return std::get<I>(fresh->columns()).row(fresh_row[r]);
                return {};
              };
              std::size_t total = 0;
              for (std::size_t r = 0; r < rows; ++r) total += row_bytes(r).size();
              bytes_column column(ctx.pool_for(column_name<I>()), rows, total);
              for (std::size_t r = 0; r < rows; ++r) column.append(row_bytes(r));
              std::get<I>(out.columns()) = std::move(column);
            }
          }(),
          ...);
    }
    (std::make_index_sequence<column_count>{});
  }

 private:
  template <std::size_t I>
  static constexpr std::string_view column_name() noexcept {
    return std::tuple_element_t<I, typename batch_type::column_types>::name.view();
  }

  template <class Storage>
  static std::uint64_t width_of(const Storage& column) noexcept {
    if constexpr (std::is_same_v<Storage, bytes_column>) {
      return 0;
    } else {
      return column.width();
    }
  }
};

}  // namespace conveyor::detail
