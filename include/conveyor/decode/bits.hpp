// conveyor/decode/bits.hpp: bit strings and packed bits -> numbers, and bit
// strings -> packed bits.
//
// A bit string is text of '0'/'1' characters, one per value (the DEA
// `bloomfilter` column: 1024 characters). Packed bits are bytes holding 8 values
// each, most significant bit first (numpy.packbits' default, bitorder='big'):
// value i is bit 7 - i%8 of byte i/8, and the unused low bits of a last partial
// byte are ignored when unpacking and written as zero when packing.
//
// Every function is a pure function on spans: no allocation (except the
// exception a throwing form throws), no state, safe to call from any number of
// threads at once. They pick an AVX2 kernel at run time when the CPU has AVX2
// (checked once with __builtin_cpu_supports), else a portable one; pass
// simd_path::portable to force the portable kernel. Both write identical bytes
// and report identical positions: on any input, on success and on error.
//
// Errors: the `try_` forms return a decode_status (wrong_length or
// bad_character, with the byte position) and never throw. On bad_character,
// out[0, position) has been written and the rest of out is untouched. The other
// forms take the field's error_location (file, record, byte offset of the field
// in the file) and throw conveyor::data_error whose offset is that of the bad
// character.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/half.hpp"
#include "conveyor/decode/detail/bit_values.hpp"
#include "conveyor/decode/detail/bits_avx2.hpp"
#include "conveyor/decode/detail/packed_bits_kernels.hpp"
#include "conveyor/decode/field.hpp"
#include "conveyor/decode/status.hpp"

namespace conveyor {

/// Which kernels a decoder may use.
enum class simd_path : std::uint8_t {
  best,      ///< AVX2 when this CPU has it, else portable
  portable,  ///< plain C++ only (the reference; same results)
};

/// Whether simd_path::best runs AVX2 kernels on this machine.
inline bool avx2_available() noexcept { return detail::cpu_supports_avx2(); }

namespace detail {

inline bool use_avx2(simd_path path) noexcept {
  return path == simd_path::best && cpu_supports_avx2();
}

inline decode_status bit_length_status(std::size_t actual, std::size_t expected) noexcept {
  return decode_status{decode_errc::wrong_length, std::min(actual, expected),
                       static_cast<std::int64_t>(expected), 0,
                       "wrong number of bits"};
}

inline decode_status bad_bit_char_status(std::size_t position) noexcept {
  return decode_status{decode_errc::bad_character, position, 0, 0, "character is not '0' or '1'"};
}

[[noreturn]] inline void throw_bit_string_error(std::string_view what, std::string_view text,
                                                const decode_status& status,
                                                const error_location& field) {
  std::string message(what);
  if (status.code == decode_errc::wrong_length) {
    message += ": " + std::to_string(text.size()) + " characters, expected " + std::to_string(status.value);
  } else {
    message += ": character " + describe_byte(static_cast<unsigned char>(text[status.position])) +
               " at position " + std::to_string(status.position) + " is not '0' or '1'";
  }
  throw_decode_error(std::move(message), field, status);
}

}  // namespace detail

/// Decodes the bit string `bits` into out (out.size() values, 0 or 1 in T).
/// Returns wrong_length if bits.size() != out.size() (nothing written), or
/// bad_character at the first byte that is not '0'/'1'.
template <bit_element T>
decode_status try_decode_bit_string(std::string_view bits, std::span<T> out,
                                    simd_path path = simd_path::best) noexcept {
  if (bits.size() != out.size()) return detail::bit_length_status(bits.size(), out.size());
#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
  const std::size_t end = detail::use_avx2(path)
                              ? detail::bit_chars_to_values_avx2(bits.data(), bits.size(), out.data())
                              : detail::bit_chars_to_values_portable(bits.data(), bits.size(), out.data());
#else
  (void)path;
  const std::size_t end = detail::bit_chars_to_values_portable(bits.data(), bits.size(), out.data());
#endif
  return end == bits.size() ? decode_status{} : detail::bad_bit_char_status(end);
}

/// Throwing form of try_decode_bit_string: throws data_error naming
/// field.file, field.record and field.offset + the bad character's position.
template <bit_element T>
void decode_bit_string(std::string_view bits, std::span<T> out, const error_location& field,
                       simd_path path = simd_path::best) {
  const decode_status status = try_decode_bit_string(bits, out, path);
  if (!status) detail::throw_bit_string_error("bit string", bits, status, field);
}

/// Expands out.size() packed bits (MSB-first) into out. packed.size() must be
/// exactly ceil(out.size() / 8), else wrong_length (position: the shorter
/// length, value: the expected byte count). Any byte value is valid.
template <bit_element T>
decode_status try_unpack_bits(std::span<const std::uint8_t> packed, std::span<T> out,
                              simd_path path = simd_path::best) noexcept {
  const std::size_t expected_bytes = (out.size() + 7) / 8;
  if (packed.size() != expected_bytes) return detail::bit_length_status(packed.size(), expected_bytes);
  detail::unpack_row(packed.data(), out.size(), out.data(), bit_order::big, detail::use_avx2(path));
  return {};
}

/// Throwing form of try_unpack_bits (the only error is a wrong length).
template <bit_element T>
void unpack_bits(std::span<const std::uint8_t> packed, std::span<T> out, const error_location& field,
                 simd_path path = simd_path::best) {
  const decode_status status = try_unpack_bits(packed, out, path);
  if (!status) {
    detail::throw_decode_error("packed bits: " + std::to_string(packed.size()) + " bytes, expected " +
                                   std::to_string(status.value) + " for " + std::to_string(out.size()) +
                                   " bits",
                               field, status);
  }
}

/// Packs the bit string `bits` MSB-first into packed, which must hold exactly
/// ceil(bits.size() / 8) bytes (else wrong_length: position is the shorter of
/// bits.size() and packed.size() * 8, value the expected byte count). Padding
/// bits of a last partial byte are zero. On bad_character, the bytes before the
/// one holding it have been written.
inline decode_status try_pack_bit_string(std::string_view bits, std::span<std::uint8_t> packed,
                                         simd_path path = simd_path::best) noexcept {
  const std::size_t expected_bytes = (bits.size() + 7) / 8;
  if (packed.size() != expected_bytes) {
    decode_status status = detail::bit_length_status(bits.size(), packed.size() * 8);
    status.value = static_cast<std::int64_t>(expected_bytes);
    status.reason = "output byte count does not match the number of bits";
    return status;
  }
#if CONVEYOR_DECODE_HAS_AVX2_KERNELS
  const std::size_t end = detail::use_avx2(path)
                              ? detail::bit_chars_to_packed_avx2(bits.data(), bits.size(), packed.data())
                              : detail::bit_chars_to_packed_portable(bits.data(), bits.size(), packed.data());
#else
  (void)path;
  const std::size_t end = detail::bit_chars_to_packed_portable(bits.data(), bits.size(), packed.data());
#endif
  return end == bits.size() ? decode_status{} : detail::bad_bit_char_status(end);
}

/// Throwing form of try_pack_bit_string.
inline void pack_bit_string(std::string_view bits, std::span<std::uint8_t> packed,
                            const error_location& field, simd_path path = simd_path::best) {
  const decode_status status = try_pack_bit_string(bits, packed, path);
  if (status.code == decode_errc::wrong_length) {
    detail::throw_decode_error("bit string to pack: " + std::to_string(bits.size()) + " characters need " +
                                   std::to_string(status.value) + " bytes, the output holds " +
                                   std::to_string(packed.size()),
                               field, status);
  }
  if (!status) detail::throw_bit_string_error("bit string to pack", bits, status, field);
}

/// bits<T>(field, width): a decoder for decode(...): a text field of
/// '0'/'1' characters -> width values of T (0 or 1). T: float, float16,
/// bfloat16 or std::uint8_t. AVX2 when the CPU has it.
template <bit_element T>
struct bits_decoder {
  using value_type = T;
  field_ref field;
  std::size_t bit_count;

  [[nodiscard]] std::size_t width() const noexcept { return bit_count; }
  [[nodiscard]] std::size_t bind(const text_schema& schema) const { return field.resolve(schema); }
  void decode(const text_column& records, std::size_t row, std::size_t column, std::span<T> out) const {
    auto text = records.field(row, column);
    decode_bit_string(text, out, records.location(row, text));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(field.fingerprint() ^ bit_count ^ (sizeof(T) << 40) ^ detail::salt::bits);
  }
};
template <bit_element T = float>
bits_decoder<T> bits(field_ref field, std::size_t width) {
  return {std::move(field), width};
}

}  // namespace conveyor
