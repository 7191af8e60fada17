// conveyor/cache/detail/crc32c.hpp: CRC32C (Castagnoli), the checksum of the
// disk and shared-memory tiers' records.
//
// Why CRC32C: it detects every burst error up to 32 bits and all 1-3 bit errors
// in records far larger than ours, and x86-64 has an instruction for it. The
// portable path is slicing-by-8 over eight 256-entry tables computed at compile
// time (about 1.5 bytes per cycle); on x86-64 CPUs with SSE4.2 the `crc32`
// instruction is picked once at run time, run as three interleaved streams
// joined by table lookups (about 3x one stream: the instruction's latency is
// 3 cycles, its throughput 1). Both paths give the same value; the tests check
// every length to 1 KiB at every alignment, and long buffers, against each other
// and against published check values.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace conveyor::detail {

inline constexpr std::uint32_t crc32c_polynomial = 0x82f63b78u;  // reflected 0x1EDC6F41

using crc32c_tables = std::array<std::array<std::uint32_t, 256>, 8>;

consteval crc32c_tables make_crc32c_tables() {
  crc32c_tables tables{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? crc32c_polynomial : 0u);
    tables[0][byte] = crc;
  }
  for (std::uint32_t byte = 0; byte < 256; ++byte)
    for (std::size_t slice = 1; slice < 8; ++slice)
      tables[slice][byte] =
          (tables[slice - 1][byte] >> 8) ^ tables[0][tables[slice - 1][byte] & 0xffu];
  return tables;
}

inline constexpr crc32c_tables crc32c_table = make_crc32c_tables();

/// Continues a CRC32C over `size` more bytes; `state` is the value a previous call
/// returned (start with 0). Portable slicing-by-8; never allocates; thread-safe.
inline std::uint32_t crc32c_update_portable(std::uint32_t state, const void* data,
                                            std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint32_t crc = ~state;
  while (size >= 8) {
    std::uint32_t low;
    std::uint32_t high;
    std::memcpy(&low, bytes, 4);
    std::memcpy(&high, bytes + 4, 4);
    if constexpr (std::endian::native == std::endian::big) {
      low = __builtin_bswap32(low);
      high = __builtin_bswap32(high);
    }
    low ^= crc;
    crc = crc32c_table[7][low & 0xffu] ^ crc32c_table[6][(low >> 8) & 0xffu] ^
          crc32c_table[5][(low >> 16) & 0xffu] ^ crc32c_table[4][low >> 24] ^
          crc32c_table[3][high & 0xffu] ^ crc32c_table[2][(high >> 8) & 0xffu] ^
          crc32c_table[1][(high >> 16) & 0xffu] ^ crc32c_table[0][high >> 24];
    bytes += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *bytes++) & 0xffu];
  return ~crc;
}

// Combining streams. The CRC register is linear over GF(2): the register
// after A||B, started from r, is shift(register after A from r, |B|) XOR
// (register after B started from 0), where shift(v, n) multiplies v by x^(8n)
// modulo the polynomial. For the fixed stream lengths of the interleaved
// loop, shift is four table lookups (one 256-entry table per byte of v),
// tables built at compile time from x^(8n) by square-and-multiply.

/// a * b modulo the polynomial, both in the reflected bit order (x^0 is bit 31).
constexpr std::uint32_t crc32c_multiply(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t product = 0;
  for (std::uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if ((a & bit) != 0) product ^= b;
    b = (b & 1u) != 0 ? (b >> 1) ^ crc32c_polynomial : b >> 1;
  }
  return product;
}

/// x^(8 * bytes) modulo the polynomial, reflected.
constexpr std::uint32_t crc32c_x_to_8n(std::size_t bytes) noexcept {
  std::uint32_t result = 1u << 31;  // x^0
  std::uint32_t square = 1u << 23;  // x^8
  for (; bytes != 0; bytes >>= 1) {
    if ((bytes & 1u) != 0) result = crc32c_multiply(result, square);
    square = crc32c_multiply(square, square);
  }
  return result;
}

using crc32c_shift_table = std::array<std::array<std::uint32_t, 256>, 4>;

consteval crc32c_shift_table make_crc32c_shift_table(std::size_t bytes) {
  const std::uint32_t factor = crc32c_x_to_8n(bytes);
  crc32c_shift_table table{};
  for (std::uint32_t k = 0; k < 4; ++k)
    for (std::uint32_t value = 0; value < 256; ++value)
      table[k][value] = crc32c_multiply(factor, value << (8 * k));
  return table;
}

/// The register `crc` moved past `n` zero bytes, for the n `table` was made for.
inline std::uint32_t crc32c_shift(const crc32c_shift_table& table, std::uint32_t crc) noexcept {
  return table[0][crc & 0xffu] ^ table[1][(crc >> 8) & 0xffu] ^ table[2][(crc >> 16) & 0xffu] ^
         table[3][crc >> 24];
}

/// Moves a finished CRC32C `crc_a` of a buffer A past `length_b` more bytes
/// whose own CRC32C is `crc_b`: returns the CRC32C of A followed by B. Costs
/// about 32 multiplications by log2(length_b); for tests and for joining
/// checksums computed apart.
constexpr std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b,
                                       std::size_t length_b) noexcept {
  // With finished (inverted) values the inversions cancel, as in zlib's
  // crc32_combine: shift(~a) ^ shift(~0) = shift(a) by linearity.
  return crc32c_multiply(crc32c_x_to_8n(length_b), crc_a) ^ crc_b;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVEYOR_CRC32C_HAS_HARDWARE 1

// The crc32 instruction has a latency of 3 cycles and a throughput of 1, so
// one dependent chain runs at a third of the unit's speed. Three streams over
// three adjacent blocks keep it busy; their registers are joined with
// crc32c_shift. Blocks of 4096, 512 and 64 bytes per stream: long values take
// the big blocks (fewest joins), records of a few hundred bytes the small ones.
inline constexpr std::size_t crc32c_long_block = 4096;
inline constexpr std::size_t crc32c_medium_block = 512;
inline constexpr std::size_t crc32c_short_block = 64;
inline constexpr crc32c_shift_table crc32c_long_shift = make_crc32c_shift_table(crc32c_long_block);
inline constexpr crc32c_shift_table crc32c_medium_shift =
    make_crc32c_shift_table(crc32c_medium_block);
inline constexpr crc32c_shift_table crc32c_short_shift =
    make_crc32c_shift_table(crc32c_short_block);

__attribute__((target("sse4.2"))) inline std::uint64_t crc32c_three_streams(
    std::uint64_t crc, const unsigned char*& bytes, std::size_t& size, std::size_t block,
    const crc32c_shift_table& shift) noexcept {
  while (size >= 3 * block) {
    std::uint64_t crc1 = 0;
    std::uint64_t crc2 = 0;
    const unsigned char* end = bytes + block;
    do {
      std::uint64_t word0;
      std::uint64_t word1;
      std::uint64_t word2;
      std::memcpy(&word0, bytes, 8);
      std::memcpy(&word1, bytes + block, 8);
      std::memcpy(&word2, bytes + 2 * block, 8);
      crc = __builtin_ia32_crc32di(crc, word0);
      crc1 = __builtin_ia32_crc32di(crc1, word1);
      crc2 = __builtin_ia32_crc32di(crc2, word2);
      bytes += 8;
    } while (bytes != end);
    crc = crc32c_shift(shift, static_cast<std::uint32_t>(crc)) ^ crc1;
    crc = crc32c_shift(shift, static_cast<std::uint32_t>(crc)) ^ crc2;
    bytes += 2 * block;
    size -= 3 * block;
  }
  return crc;
}

/// One stream: the tail of the interleaved loop below, and the baseline the
/// benchmark measures the interleaved gain against (tests compare both).
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_update_hardware_one_stream(
    std::uint32_t state, const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t crc = ~state;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes, 8);
    crc = __builtin_ia32_crc32di(crc, word);
    bytes += 8;
    size -= 8;
  }
  auto crc32 = static_cast<std::uint32_t>(crc);
  while (size-- > 0) crc32 = __builtin_ia32_crc32qi(crc32, *bytes++);
  return ~crc32;
}

/// The same function through SSE4.2's crc32 instruction, three streams
/// interleaved. Call only when `crc32c_hardware_available()` is true.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_update_hardware(
    std::uint32_t state, const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t crc = ~state;
  crc = crc32c_three_streams(crc, bytes, size, crc32c_long_block, crc32c_long_shift);
  crc = crc32c_three_streams(crc, bytes, size, crc32c_medium_block, crc32c_medium_shift);
  crc = crc32c_three_streams(crc, bytes, size, crc32c_short_block, crc32c_short_shift);
  // What is left is shorter than three short blocks: one stream.
  return crc32c_update_hardware_one_stream(~static_cast<std::uint32_t>(crc), bytes, size);
}

inline bool crc32c_hardware_available() noexcept {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}
#else
#define CONVEYOR_CRC32C_HAS_HARDWARE 0
inline bool crc32c_hardware_available() noexcept {
  return false;
}
#endif

/// Continues a CRC32C (start with state 0); the fastest path this CPU has.
inline std::uint32_t crc32c_update(std::uint32_t state, const void* data,
                                   std::size_t size) noexcept {
#if CONVEYOR_CRC32C_HAS_HARDWARE
  if (crc32c_hardware_available()) return crc32c_update_hardware(state, data, size);
#endif
  return crc32c_update_portable(state, data, size);
}

/// CRC32C of one buffer.
inline std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept {
  return crc32c_update(0, bytes.data(), bytes.size());
}

}  // namespace conveyor::detail
