// Tests of conveyor/cache/detail/row_codec.hpp's checksum flag: a value
// written without its CRC32C (for a tier whose values stay in this process)
// parses when trusted, and is refused, never trusted, where it is verified.
#include "conveyor/cache/detail/row_codec.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <vector>

namespace d = conveyor::detail;

namespace {

constexpr std::uint64_t tag = 0x1234'5678'9abc'def0ull;
constexpr std::array<std::uint32_t, 2> units{4, 1};

std::vector<std::byte> row(d::row_checksum checksum) {
  std::array<float, 3> dense{1.5f, -2.0f, 8.25f};
  const char text[] = "seven";
  std::array<std::span<const std::byte>, 2> columns{std::as_bytes(std::span<const float>(dense)),
                                                    std::as_bytes(std::span<const char>(text, 5))};
  std::array<std::uint64_t, 2> extents{3, 5};
  std::vector<std::byte> out(d::row_value_bytes<2>(columns));
  d::write_row<2>(out, tag, columns, extents, checksum);
  return out;
}

}  // namespace

TEST_CASE("row_codec: a value written without its checksum is ok trusted and refused verified") {
  auto unchecked = row(d::row_checksum::trust);
  auto checked = row(d::row_checksum::verify);
  REQUIRE(unchecked.size() == checked.size());
  d::row_fields<2> fields;
  CHECK(d::parse_row<2>(checked, tag, units, fields, d::row_checksum::verify) == d::row_check::ok);
  CHECK(d::parse_row<2>(checked, tag, units, fields, d::row_checksum::trust) == d::row_check::ok);
  CHECK(d::parse_row<2>(unchecked, tag, units, fields, d::row_checksum::trust) == d::row_check::ok);
  CHECK(fields.extents[0] == 3);
  CHECK(std::memcmp(fields.data[1].data(), "seven", 5) == 0);
  CHECK(d::parse_row<2>(unchecked, tag, units, fields, d::row_checksum::verify) ==
        d::row_check::bad_checksum);
  // Same payload, same header but for the CRC and the flag.
  CHECK(std::memcmp(unchecked.data() + 24, checked.data() + 24, checked.size() - 24) == 0);
  // Flag bits other than "no checksum" are not ours.
  auto odd = checked;
  odd[20] |= std::byte{0x02};
  CHECK(d::parse_row<2>(odd, tag, units, fields, d::row_checksum::trust) ==
        d::row_check::bad_magic);
  // A checked value whose flag is set afterwards is still refused when verified.
  auto flagged = checked;
  flagged[20] |= std::byte{0x01};
  CHECK(d::parse_row<2>(flagged, tag, units, fields, d::row_checksum::verify) ==
        d::row_check::bad_checksum);
}
