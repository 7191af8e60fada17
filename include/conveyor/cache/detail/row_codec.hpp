// conveyor/cache/detail/row_codec.hpp: the bytes the cache stage stores for
// one record, and the check that a value read back from a tier is one.
//
// Why a header per record and not per batch: batches are re-formed every epoch
// (shuffle), so the unit a later epoch can reuse is the record. Why a type tag
// and a checksum: a tier may hold values written by another build, another
// program sharing the Redis server, or damaged on disk; none of them may turn
// into wrong rows, so a value that does not prove it is ours is a miss.
//
// Layout (every header integer little-endian):
//   0  u32  magic "CYR1"
//   4  u32  column count
//   8  u64  type tag (column names, kinds, dtypes and host byte order)
//  16  u32  CRC32C of the payload, with flags bit 1 of the extents (bytes
//           32 ..) then the payload (zero when not computed: flags bit 0)
//  20  u32  flags: bit 0 = no checksum was computed (a value written for a
//           tier whose values never leave this process); bit 1 = at least
//           one column is stored as a bitmap (below); other bits zero
//  24  u64  payload length in bytes
//  32  u64  per column: bits 0..62 its extent, values per row (dense) or
//           byte length (bytes); bit 63 set: the column is a bitmap
//  ..  payload: the columns' stored bytes, in column order: a raw column's
//      bytes in host byte order, a bitmap column's ceil(extent / 8) bytes
//
// Bitmap columns (added 2026-12-02): a dense column whose every value of this
// record is one of exactly two bit patterns, the 0 and the 1 of its dtype
// (cached_batch.hpp decides which dtypes and checks every value), is stored
// as one bit per value: value i is bit i % 8 of byte i / 8 (numpy's
// bitorder="little"), 1 for the dtype's 1. The unused high bits of a last,
// partial byte are zero (checked). A bitmap column is never empty. Flags bit
// 1 is set exactly when some column is a bitmap, so a value without bitmaps
// is byte for byte the layout before bitmaps existed (old values and old
// builds read it as before), and a build from before bitmaps refuses a value
// with them (unknown flag: bad_magic), a miss, never wrong rows. Why the
// extents join the CRC32C of such a value: a raw column's extent is pinned
// by the payload length (extent * unit bytes), a bitmap's only to within 8
// values (9 and 15 values both take 2 bytes), so a damaged extent could
// otherwise pass as a wrong width.
//
// Why a value may go without its checksum: the memory tier's values stay in
// this process's heap and its hits check only the header (row_checksum::trust),
// so computing the CRC32C on every put of a filling epoch buys nothing there.
// Such a value says so (flags bit 0), and a check that verifies refuses it
// (bad_checksum): if one ever reaches a tier that is read with verification
// (an eviction listener that hands it on), it is a miss, never trusted bytes.
//
// Everything here is a pure function: no state, safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"

namespace conveyor::detail {

inline constexpr std::uint32_t row_magic = 0x31525943u;  // "CYR1" read little-endian
inline constexpr std::size_t row_fixed_header_bytes = 32;
inline constexpr std::uint32_t row_flag_no_checksum = 1;
inline constexpr std::uint32_t row_flag_bitmaps = 2;
/// Bit 63 of a column's extent word: the column is stored as a bitmap.
inline constexpr std::uint64_t row_extent_bitmap = std::uint64_t{1} << 63;

/// The stored size of a bitmap of `values` values.
constexpr std::uint64_t bitmap_bytes(std::uint64_t values) noexcept {
  return values / 8 + (values % 8 != 0 ? 1 : 0);
}

/// Why a stored value was refused (ok when it was not).
enum class row_check : std::uint8_t {
  ok,
  too_short,
  bad_magic,
  wrong_type,
  bad_lengths,
  bad_checksum
};

/// The columns of one decoded record: a view into the value it came from.
template <std::size_t Columns>
struct row_fields {
  std::array<std::uint64_t, Columns> extents{};          ///< width (dense) or byte length (bytes)
  std::array<std::span<const std::byte>, Columns> data;  ///< each column's stored bytes
  std::array<bool, Columns> bitmap{};  ///< data[c] is a bitmap of extents[c] values
};

inline void store_le(std::byte* at, std::uint64_t value, std::size_t bytes) noexcept {
  for (std::size_t i = 0; i < bytes; ++i)
    at[i] = static_cast<std::byte>((value >> (8 * i)) & 0xffu);
}
inline std::uint64_t load_le(const std::byte* at, std::size_t bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(at[i]) << (8 * i);
  return value;
}

/// Header size of a record with `columns` columns.
constexpr std::size_t row_header_bytes(std::size_t columns) noexcept {
  return row_fixed_header_bytes + 8 * columns;
}

/// The size of the value of a record whose columns hold `columns`.
template <std::size_t Columns>
std::size_t row_value_bytes(
    const std::array<std::span<const std::byte>, Columns>& columns) noexcept {
  std::size_t payload = 0;
  for (const auto& column : columns) payload += column.size();
  return row_header_bytes(Columns) + payload;
}

/// Whether write_row computes the payload's CRC32C and parse_row verifies it. Values that crossed a
/// process, a file or the network are always verified; a tier whose values
/// never leave this process's heap may skip both (the header is still
/// written and checked).
enum class row_checksum : std::uint8_t { verify, trust };

/// Writes one record's value into `out`, which must be exactly
/// row_value_bytes(columns) long (a tier's own storage, or a buffer).
/// `columns[c]` holds column c's stored bytes for this record and
/// `extents[c]` its width (dense) or length (bytes); when `bitmap[c]`,
/// columns[c] is the column's bitmap (bitmap_bytes(extents[c]) bytes, unused
/// bits zero, extents[c] > 0: the caller built it). With row_checksum::trust
/// the CRC32C is not computed and the value is marked so (see above). Never
/// throws, never allocates.
template <std::size_t Columns>
void write_row(std::span<std::byte> out, std::uint64_t type_tag,
               const std::array<std::span<const std::byte>, Columns>& columns,
               const std::array<std::uint64_t, Columns>& extents,
               row_checksum checksum = row_checksum::verify,
               const std::array<bool, Columns>& bitmap = {}) noexcept {
  std::byte* header = out.data();
  std::byte* body = header + row_header_bytes(Columns);
  const std::size_t payload = out.size() - row_header_bytes(Columns);
  std::size_t at = 0;
  std::uint32_t crc = 0;
  for (const auto& column : columns) {
    if (column.empty()) continue;
    std::memcpy(body + at, column.data(), column.size());
    at += column.size();
  }
  std::uint32_t flags = checksum == row_checksum::verify ? 0 : row_flag_no_checksum;
  for (std::size_t c = 0; c < Columns; ++c) {
    if (bitmap[c]) flags |= row_flag_bitmaps;
    store_le(header + row_fixed_header_bytes + 8 * c,
             extents[c] | (bitmap[c] ? row_extent_bitmap : 0), 8);
  }
  if (checksum == row_checksum::verify) {
    // With bitmaps the extents join the checksum (see the layout above).
    if ((flags & row_flag_bitmaps) != 0)
      crc = crc32c_update(0, header + row_fixed_header_bytes, 8 * Columns);
    crc = crc32c_update(crc, body, payload);
  }
  store_le(header, row_magic, 4);
  store_le(header + 4, Columns, 4);
  store_le(header + 8, type_tag, 8);
  store_le(header + 16, crc, 4);
  store_le(header + 20, flags, 4);
  store_le(header + 24, payload, 8);
}

/// Appends one record's value to `out` (see write_row). Allocates: grows
/// `out`. Never throws except std::bad_alloc.
template <std::size_t Columns>
void append_row(std::vector<std::byte>& out, std::uint64_t type_tag,
                const std::array<std::span<const std::byte>, Columns>& columns,
                const std::array<std::uint64_t, Columns>& extents,
                const std::array<bool, Columns>& bitmap = {}) {
  std::size_t start = out.size();
  out.resize(start + row_value_bytes<Columns>(columns));
  write_row<Columns>(std::span<std::byte>(out).subspan(start), type_tag, columns, extents,
                     row_checksum::verify, bitmap);
}

/// Checks that `value` is a record written by write_row with this type tag
/// and these per-column unit sizes (sizeof(T) for a dense column of T, 1 for
/// a bytes column), and fills `fields` with views into `value`. A column may
/// be a bitmap only where `may_be_bitmap[c]`; a bitmap's length
/// (bitmap_bytes(extent), extent > 0) and its zero unused bits are checked
/// on both paths, as is flags bit 1 against the columns. Any other
/// input, of any length and content, gives a check other than ok and leaves
/// `fields` unspecified (with row_checksum::trust, any input whose header and
/// lengths are consistent is ok: use it only for bytes this process wrote). Never reads outside
/// `value`, never throws, never allocates.
template <std::size_t Columns>
row_check parse_row(std::span<const std::byte> value, std::uint64_t type_tag,
                    const std::array<std::uint32_t, Columns>& unit_bytes,
                    row_fields<Columns>& fields, row_checksum checksum = row_checksum::verify,
                    const std::array<bool, Columns>& may_be_bitmap = {}) noexcept {
  constexpr std::size_t header = row_header_bytes(Columns);
  if (value.size() < header) return row_check::too_short;
  const std::byte* base = value.data();
  const std::uint64_t flags = load_le(base + 20, 4);
  if (load_le(base, 4) != row_magic || load_le(base + 4, 4) != Columns ||
      (flags & ~std::uint64_t{row_flag_no_checksum | row_flag_bitmaps}) != 0)
    return row_check::bad_magic;
  if (load_le(base + 8, 8) != type_tag) return row_check::wrong_type;
  std::uint64_t payload = load_le(base + 24, 8);
  if (payload != value.size() - header) return row_check::bad_lengths;
  std::uint64_t at = 0;
  bool any_bitmap = false;
  for (std::size_t c = 0; c < Columns; ++c) {
    const std::uint64_t word = load_le(base + row_fixed_header_bytes + 8 * c, 8);
    const bool bitmap = (word & row_extent_bitmap) != 0;
    const std::uint64_t extent = word & ~row_extent_bitmap;
    std::uint64_t size = 0;
    if (bitmap) {
      if (!may_be_bitmap[c] || extent == 0) return row_check::bad_lengths;
      size = bitmap_bytes(extent);
      if (size > payload - at) return row_check::bad_lengths;
      const auto used = static_cast<unsigned>(extent % 8);
      if (used != 0 &&
          (static_cast<unsigned>(base[header + at + size - 1]) >> used) != 0)  // unused bits
        return row_check::bad_lengths;
      any_bitmap = true;
    } else {
      // extent * unit must fit in what is left, computed without overflow.
      if (unit_bytes[c] == 0 || extent > (payload - at) / unit_bytes[c])
        return row_check::bad_lengths;
      size = extent * unit_bytes[c];
    }
    fields.extents[c] = extent;
    fields.bitmap[c] = bitmap;
    fields.data[c] = value.subspan(header + at, size);
    at += size;
  }
  if (at != payload) return row_check::bad_lengths;
  if (any_bitmap != ((flags & row_flag_bitmaps) != 0)) return row_check::bad_magic;
  if (checksum == row_checksum::trust) return row_check::ok;
  if ((flags & row_flag_no_checksum) != 0) return row_check::bad_checksum;
  auto crc = static_cast<std::uint32_t>(load_le(base + 16, 4));
  std::uint32_t computed =
      any_bitmap ? crc32c_update(0, base + row_fixed_header_bytes, 8 * Columns) : 0;
  if (crc32c_update(computed, base + header, payload) != crc) return row_check::bad_checksum;
  return row_check::ok;
}

}  // namespace conveyor::detail
