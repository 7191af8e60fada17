// Values for the tiered stack's concurrency tests (tiered_write_back.cpp,
// tiered_promotion.cpp): deterministic bytes per (record, version), 100 to 999
// bytes long, with the record and the version in the first 16 bytes, so a
// reader can tell which write it is looking at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "conveyor/cache/tier.hpp"

namespace conveyor::test {

inline byte_buffer value_for(std::uint64_t record, std::uint64_t version = 0) {
  std::size_t size = 100 + (record * 53 + version * 17) % 900;
  byte_buffer value(size);
  for (std::size_t i = 0; i < size; ++i)
    value[i] = static_cast<std::byte>((record * 37 + version * 101 + i) & 0xff);
  std::memcpy(value.data(), &record, 8);
  std::memcpy(value.data() + 8, &version, 8);
  return value;
}

inline std::span<const std::byte> bytes(const byte_buffer& buffer) {
  return {buffer.data(), buffer.size()};
}

}  // namespace conveyor::test
