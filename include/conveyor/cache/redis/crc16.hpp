// conveyor/cache/redis/crc16.hpp: Redis Cluster's key -> hash slot function.
//
// Redis Cluster splits the key space into 16384 slots: slot = CRC16(key) mod
// 16384, where CRC16 is the XMODEM variant (polynomial 0x1021, initial value 0,
// no reflection). When the key holds a non-empty "{hash tag}", only the tag is
// hashed, so keys that share a tag land on the same slot.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conveyor::redis {

/// Number of hash slots in a Redis Cluster.
inline constexpr std::uint16_t cluster_slot_count = 16384;

namespace detail {
// Table-driven CRC16/XMODEM; the table is computed at compile time from the
// polynomial so there is no magic table to get wrong.
constexpr std::array<std::uint16_t, 256> make_crc16_table() noexcept {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000u) ? (crc << 1) ^ 0x1021u : crc << 1);
    table[byte] = crc;
  }
  return table;
}
inline constexpr auto crc16_table = make_crc16_table();
}  // namespace detail

/// CRC16/XMODEM of `bytes`. Pure, never allocates, thread-safe.
[[nodiscard]] constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (char c : bytes) {
    auto index = static_cast<unsigned>(((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xffu);
    crc = static_cast<std::uint16_t>((crc << 8) ^ detail::crc16_table[index]);
  }
  return crc;
}

/// The part of `key` that Redis Cluster hashes: the text between the first '{'
/// and the next '}' when that text is non-empty, otherwise the whole key.
[[nodiscard]] constexpr std::string_view hash_tag_of(std::string_view key) noexcept {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

/// The cluster hash slot (0..16383) that owns `key`, honouring hash tags.
[[nodiscard]] constexpr std::uint16_t key_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hash_tag_of(key)) % cluster_slot_count);
}

static_assert(crc16("123456789") == 0x31c3,
              "CRC16/XMODEM check value (from the Redis Cluster spec)");

}  // namespace conveyor::redis
