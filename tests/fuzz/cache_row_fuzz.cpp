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
//   mode 3: as mode 1, with the bitmaps flag set and the CRC32C computed as
//           a value with bitmaps has it (extents, then payload), so that
//           bitmap extents, lengths and unused bits are reached.
//   mode 4: bitmap round trip: x (float) and id (int16) made of 0/1 from
//           `data`'s bits, with an odd value (-0.0, NaN, 2, a denormal, 1 +
//           ulp) injected where `data` says; encoded with bitmaps where they
//           apply (a column with an odd value must stay raw), parsed, expanded
//           back bit for bit; any single flipped bit is refused.
// Properties: parse never reads out of bounds (ASan); an accepted value is
// canonical: re-encoding its fields reproduces it byte for byte; an accepted
// bitmap expands to values that pack back into the same bitmap.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "conveyor/cache/detail/cached_batch.hpp"
#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/detail/row_codec.hpp"
#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"

namespace {

namespace cy = conveyor;
namespace d = conveyor::detail;
using row_batch =
    cy::record_batch<cy::dense<"x", float>, cy::bytes<"name">, cy::dense<"id", std::int16_t>>;
using codec = d::cached_batch<row_batch>;

void require(bool condition) {
  if (!condition) std::abort();
}

// Expands a bitmap column c of `fields` into values of T and packs them again.
template <class T>
void check_bitmap_round_trip(const codec::fields& fields, std::size_t c) {
  const auto count = static_cast<std::size_t>(fields.extents[c]);
  std::vector<T> values(count);
  d::expand_binary(reinterpret_cast<const std::uint8_t*>(fields.data[c].data()), count,
                   values.data());
  std::vector<std::uint8_t> bits(static_cast<std::size_t>(d::bitmap_bytes(count)));
  require(d::pack_binary<T>(reinterpret_cast<const std::byte*>(values.data()), count, bits.data()));
  require(std::memcmp(bits.data(), fields.data[c].data(), bits.size()) == 0);
}

void check_accepted_is_canonical(std::span<const std::byte> value) {
  codec::fields fields;
  if (codec::parse(value, fields) != d::row_check::ok) return;
  std::vector<std::byte> again;
  d::append_row<codec::column_count>(again, codec::type_tag, fields.data, fields.extents,
                                     fields.bitmap);
  require(again.size() == value.size());
  require(std::memcmp(again.data(), value.data(), value.size()) == 0);
  for (std::size_t c = 0; c < codec::column_count; ++c)
    require(fields.data[c].size() == (fields.bitmap[c] ? d::bitmap_bytes(fields.extents[c])
                                                       : fields.extents[c] * codec::unit_bytes[c]));
  require(!fields.bitmap[1]);  // a bytes column is never a bitmap
  if (fields.bitmap[0]) check_bitmap_round_trip<float>(fields, 0);
  if (fields.bitmap[2]) check_bitmap_round_trip<std::int16_t>(fields, 2);
}

// Mode 4: see the top. x gets `data`'s bits (up to 600 values), id the same
// bits reversed; byte 1 picks the odd value (if any) and byte 2 its place.
void check_binary_round_trip(std::span<const std::byte> data) {
  const std::size_t n = data.size();
  const std::size_t width = std::min<std::size_t>(n * 8, 600);
  std::vector<std::uint32_t> x(width);
  std::vector<std::uint16_t> id(width);
  auto bit = [&](std::size_t i) { return (static_cast<unsigned>(data[i / 8]) >> (i % 8)) & 1u; };
  for (std::size_t i = 0; i < width; ++i) {
    x[i] = bit(i) ? 0x3F80'0000u : 0u;
    id[i] = static_cast<std::uint16_t>(bit(width - 1 - i));
  }
  const std::uint32_t odd_x[] = {0x8000'0000u, 0x7FC0'0000u, 0x4000'0000u, 0x0000'0001u,
                                 0x3F80'0001u};
  const std::uint16_t odd_id[] = {2, 0xFFFF, 0x8000, 0x0100, 0x0003};
  bool x_odd = false, id_odd = false;
  if (n > 2 && width > 0) {
    const auto pick = static_cast<unsigned>(data[1]);
    const std::size_t at = static_cast<std::size_t>(data[2]) * 7 % width;
    if (pick % 4 == 1) x[at] = odd_x[pick / 4 % 5], x_odd = true;
    if (pick % 4 == 2) id[at] = odd_id[pick / 4 % 5], id_odd = true;
  }
  auto pool = cy::default_pool();
  const std::uint64_t index = 9;
  row_batch batch(pool, cy::batch_info{}, std::span<const std::uint64_t>(&index, 1));
  auto& xc = batch.get<"x">();
  xc = cy::dense_column<float>(pool, 1, width);
  auto& idc = batch.get<"id">();
  idc = cy::dense_column<std::int16_t>(pool, 1, width);
  batch.get<"name">() = cy::bytes_column(pool, 1);
  batch.get<"name">().append(
      std::string_view(reinterpret_cast<const char*>(data.data()), std::min<std::size_t>(n, 5)));
  if (width > 0) {
    std::memcpy(xc.row(0).data(), x.data(), width * 4);
    std::memcpy(idc.row(0).data(), id.data(), width * 2);
  }
  std::vector<std::byte> value;
  codec::append_value(batch, 0, value);
  codec::fields fields;
  require(codec::parse(value, fields) == d::row_check::ok);
  require(fields.bitmap[0] == (width > 0 && !x_odd));
  require(fields.bitmap[2] == (width > 0 && !id_odd));
  check_accepted_is_canonical(value);
  // Expanded (or copied) back: bit for bit what was encoded.
  row_batch out(pool, cy::batch_info{}, std::span<const std::uint64_t>(&index, 1));
  out.get<"x">() = cy::dense_column<float>(pool, 1, width);
  out.get<"id">() = cy::dense_column<std::int16_t>(pool, 1, width);
  codec::hit_bytes bytes;
  bytes.reset(1);
  codec::copy_hit(fields, out, 0, bytes);
  if (width > 0) {
    require(std::memcmp(out.get<"x">().row(0).data(), x.data(), width * 4) == 0);
    require(std::memcmp(out.get<"id">().row(0).data(), id.data(), width * 2) == 0);
  }
  // Any single flipped bit is refused.
  const std::size_t at = (n * 131 + width) % value.size();
  value[at] ^= static_cast<std::byte>(1u << (n % 8));
  require(codec::parse(value, fields) != d::row_check::ok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = bytes[0] % 5;
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
      d::store_le(data.data() + 16, d::crc32c_update(0, data.data() + header, data.size() - header),
                  4);
    }
    check_accepted_is_canonical(data);
  } else if (mode == 3) {
    if (data.size() >= header) {
      d::store_le(data.data(), d::row_magic, 4);
      d::store_le(data.data() + 4, codec::column_count, 4);
      d::store_le(data.data() + 8, codec::type_tag, 8);
      d::store_le(data.data() + 20, d::row_flag_bitmaps, 4);
      d::store_le(data.data() + 24, data.size() - header, 8);
      // Small extents so that lengths can agree: each column's top bit
      // (the bitmap mark) and low 12 bits from `data`.
      for (std::size_t c = 0; c < codec::column_count; ++c) {
        std::byte* word = data.data() + d::row_fixed_header_bytes + 8 * c;
        const std::uint64_t extent = d::load_le(word, 8);
        d::store_le(word, (extent & d::row_extent_bitmap) | (extent & 0xFFF), 8);
      }
      std::uint32_t crc =
          d::crc32c_update(0, data.data() + d::row_fixed_header_bytes, 8 * codec::column_count);
      crc = d::crc32c_update(crc, data.data() + header, data.size() - header);
      d::store_le(data.data() + 16, crc, 4);
    }
    check_accepted_is_canonical(data);
  } else if (mode == 4) {
    check_binary_round_trip(data);
  } else {
    // Column lengths from the first bytes: x a multiple of 4, id of 2.
    std::size_t n = data.size();
    std::size_t x_bytes = n > 0 ? (static_cast<std::size_t>(data[0]) * 4) % (n + 1) / 4 * 4 : 0;
    std::size_t rest = n - x_bytes;
    std::size_t id_bytes =
        rest > 1 ? (static_cast<std::size_t>(data[n - 1]) * 2) % (rest + 1) / 2 * 2 : 0;
    std::size_t name_bytes = rest - id_bytes;
    std::span<const std::byte> all(data);
    std::array<std::span<const std::byte>, 3> columns{all.subspan(0, x_bytes),
                                                      all.subspan(x_bytes, name_bytes),
                                                      all.subspan(x_bytes + name_bytes, id_bytes)};
    std::array<std::uint64_t, 3> extents{x_bytes / 4, name_bytes, id_bytes / 2};
    std::vector<std::byte> value;
    d::append_row<3>(value, codec::type_tag, columns, extents);
    codec::fields fields;
    require(codec::parse(value, fields) == d::row_check::ok);
    for (std::size_t c = 0; c < 3; ++c) {
      require(fields.extents[c] == extents[c]);
      require(fields.data[c].size() == columns[c].size());
      require(columns[c].empty() ||
              std::memcmp(fields.data[c].data(), columns[c].data(), columns[c].size()) == 0);
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
