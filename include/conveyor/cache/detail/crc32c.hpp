// conveyor/cache/detail/crc32c.hpp: CRC32C (Castagnoli), the checksum of the
// disk and shared-memory tiers' records.
//
// Why CRC32C: it detects every burst error up to 32 bits and all 1-3 bit errors
// in records far larger than ours, and x86-64 has an instruction for it. The
// portable path is slicing-by-8 over eight 256-entry tables computed at compile
// time (about 1.5 bytes per cycle); on x86-64 CPUs with SSE4.2 the `crc32`
// instruction is picked once at run time (several times faster). Both give the
// same value; the tests check that.
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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVEYOR_CRC32C_HAS_HARDWARE 1
/// The same function through SSE4.2's crc32 instruction. Call only when
/// `crc32c_hardware_available()` is true.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_update_hardware(
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
