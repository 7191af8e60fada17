// Tests of conveyor/cache/detail/crc32c.hpp: published check values, the
// interleaved hardware path against the portable one over every length to
// 1 KiB at every alignment and over long buffers that cross each block size,
// chained updates, and crc32c_combine.
#include "conveyor/cache/detail/crc32c.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace {

using conveyor::detail::crc32c_combine;
using conveyor::detail::crc32c_update;
using conveyor::detail::crc32c_update_portable;

std::uint32_t portable(const std::vector<unsigned char>& bytes) {
  return crc32c_update_portable(0, bytes.data(), bytes.size());
}
std::uint32_t fastest(const std::vector<unsigned char>& bytes) {
  return crc32c_update(0, bytes.data(), bytes.size());
}

std::vector<unsigned char> random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<unsigned char> bytes(size);
  for (auto& b : bytes) b = static_cast<unsigned char>(random());
  return bytes;
}

}  // namespace

TEST_CASE("crc32c: published check values (RFC 3720 B.4 and the CRC catalogue)") {
  std::string_view check = "123456789";
  CHECK(crc32c_update_portable(0, check.data(), check.size()) == 0xe3069283u);
  CHECK(crc32c_update(0, check.data(), check.size()) == 0xe3069283u);
  std::vector<unsigned char> zeros(32, 0x00), ones(32, 0xff), ascending(32), descending(32);
  for (std::size_t i = 0; i < 32; ++i) {
    ascending[i] = static_cast<unsigned char>(i);
    descending[i] = static_cast<unsigned char>(31 - i);
  }
  for (auto* crc : {&portable, &fastest}) {
    CHECK((*crc)(zeros) == 0x8a9136aau);
    CHECK((*crc)(ones) == 0x62a8ab43u);
    CHECK((*crc)(ascending) == 0x46dd794eu);
    CHECK((*crc)(descending) == 0x113fdb5cu);
    CHECK((*crc)({}) == 0u);
  }
}

TEST_CASE(
    "crc32c: the fastest path equals the portable one at every length to 1 KiB and every "
    "alignment") {
  auto bytes = random_bytes(1024 + 8, 1);
  std::size_t mismatches = 0;
  for (std::size_t start = 0; start < 8; ++start)
    for (std::size_t length = 0; length <= 1024; ++length)
      if (crc32c_update(0, bytes.data() + start, length) !=
          crc32c_update_portable(0, bytes.data() + start, length))
        ++mismatches;
  CHECK(mismatches == 0);
}

TEST_CASE("crc32c: long buffers across the 64, 512 and 4096-byte stream blocks") {
  auto bytes = random_bytes(3 * 4096 * 3 + 77, 2);
  for (std::size_t length : {191, 192, 193, 1535, 1536, 1537, 1536 + 192 + 7, 12287, 12288, 12289,
                             12288 * 2 + 1536 + 200, 3 * 4096 * 3 + 77}) {
    CAPTURE(length);
    for (std::size_t start : {0, 3}) {
      if (start + length > bytes.size()) continue;
      CHECK(crc32c_update(0, bytes.data() + start, length) ==
            crc32c_update_portable(0, bytes.data() + start, length));
    }
  }
  // A value where a wrong join would show: one bit flipped in each block.
  auto flipped = bytes;
  flipped[5000] ^= 0x10;
  CHECK(fastest(flipped) == portable(flipped));
  CHECK(fastest(flipped) != fastest(bytes));
}

TEST_CASE("crc32c: updates chain, from any split point, and combine joins two checksums") {
  auto bytes = random_bytes(20000, 3);
  auto whole = portable(bytes);
  for (std::size_t split : {0, 1, 7, 64, 700, 4096, 12288, 19999, 20000}) {
    CAPTURE(split);
    auto first = crc32c_update(0, bytes.data(), split);
    CHECK(crc32c_update(first, bytes.data() + split, bytes.size() - split) == whole);
    auto second = crc32c_update(0, bytes.data() + split, bytes.size() - split);
    CHECK(crc32c_combine(first, second, bytes.size() - split) == whole);
  }
}

TEST_CASE("crc32c: every single-bit change of a record changes the checksum") {
  auto bytes = random_bytes(600, 4);
  auto original = fastest(bytes);
  std::size_t unchanged = 0;
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    if (fastest(bytes) == original) ++unchanged;
    bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
  }
  CHECK(unchanged == 0);
}
