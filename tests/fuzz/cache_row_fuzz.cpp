// libFuzzer target for the cache stage's stored-row check
// (cache/detail/row_codec.hpp through cached_batch<...>::parse): any bytes a
// tier returns must be refused or be exactly a row the encoder would write.
//
// Input: byte 0 picks a mode, the rest is `data`.
//   mode 0: parse `data` as it is.
//   mode 1: parse `data` after repairing magic, tag, payload length and CRC,
//           so the per-column length checks and the success path are reached.
//   mode 2: split `data` into the three columns of the batch type, encode a
//           row, and check that it parses back to the same columns.
// Properties: parse never reads out of bounds (ASan); an accepted value is
// canonical: re-encoding its fields reproduces it byte for byte.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "conveyor/cache/detail/cached_batch.hpp"
#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/detail/row_codec.hpp"
#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"

namespace {

namespace cy = conveyor;
namespace d = conveyor::detail;
using row_batch = cy::record_batch<cy::dense<"x", float>, cy::bytes<"name">, cy::dense<"id", std::int16_t>>;
using codec = d::cached_batch<row_batch>;

void require(bool condition) {
  if (!condition) std::abort();
}

void check_accepted_is_canonical(std::span<const std::byte> value) {
  codec::fields fields;
  if (codec::parse(value, fields) != d::row_check::ok) return;
  std::vector<std::byte> again;
  d::append_row<codec::column_count>(again, codec::type_tag, fields.data, fields.extents);
  require(again.size() == value.size());
  require(std::memcmp(again.data(), value.data(), value.size()) == 0);
  for (std::size_t c = 0; c < codec::column_count; ++c)
    require(fields.data[c].size() == fields.extents[c] * codec::unit_bytes[c]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = bytes[0] % 3;
  std::vector<std::byte> data(size - 1);
  if (size > 1) std::memcpy(data.data(), bytes + 1, size - 1);
  constexpr std::size_t header = d::row_header_bytes(codec::column_count);

  if (mode == 0) {
    check_accepted_is_canonical(data);
  } else if (mode == 1) {
    if (data.size() >= header) {
      d::store_le(data.data(), d::row_magic, 4);
      d::store_le(data.data() + 4, codec::column_count, 4);
      d::store_le(data.data() + 8, codec::type_tag, 8);
      d::store_le(data.data() + 20, 0, 4);
      d::store_le(data.data() + 24, data.size() - header, 8);
      d::store_le(data.data() + 16, d::crc32c_update(0, data.data() + header, data.size() - header), 4);
    }
    check_accepted_is_canonical(data);
  } else {
    // Column lengths from the first bytes: x a multiple of 4, id of 2.
    std::size_t n = data.size();
    std::size_t x_bytes = n > 0 ? (static_cast<std::size_t>(data[0]) * 4) % (n + 1) / 4 * 4 : 0;
    std::size_t rest = n - x_bytes;
    std::size_t id_bytes = rest > 1 ? (static_cast<std::size_t>(data[n - 1]) * 2) % (rest + 1) / 2 * 2 : 0;
    std::size_t name_bytes = rest - id_bytes;
    std::span<const std::byte> all(data);
    std::array<std::span<const std::byte>, 3> columns{all.subspan(0, x_bytes), all.subspan(x_bytes, name_bytes),
                                                      all.subspan(x_bytes + name_bytes, id_bytes)};
    std::array<std::uint64_t, 3> extents{x_bytes / 4, name_bytes, id_bytes / 2};
    std::vector<std::byte> value;
    d::append_row<3>(value, codec::type_tag, columns, extents);
    codec::fields fields;
    require(codec::parse(value, fields) == d::row_check::ok);
    for (std::size_t c = 0; c < 3; ++c) {
      require(fields.extents[c] == extents[c]);
      require(fields.data[c].size() == columns[c].size());
      require(columns[c].empty() || std::memcmp(fields.data[c].data(), columns[c].data(), columns[c].size()) == 0);
    }
    // Any single flipped bit is refused.
    if (!value.empty()) {
      std::size_t at = (n * 131 + x_bytes) % value.size();
      value[at] ^= std::byte{1};
      require(codec::parse(value, fields) != d::row_check::ok);
    }
  }
  return 0;
}
