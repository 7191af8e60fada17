// conveyor/cache/detail/disk_segment_format.hpp: the byte layout of the disk
// tier's segment files, and the scanner that rebuilds the index from them.
//
// A segment file is a 16-byte segment header followed by records, appended and
// never rewritten:
//
//   segment header (16 bytes, little-endian)
//     0  u32 magic "CVSG"        4  u16 format version    6  u16 header size (16)
//     8  u64 segment id (also in the file name)
//   record header (56 bytes, little-endian), then `value length` value bytes
//     0  u32 magic "CVRC"        4  u16 format version    6  u16 kind (1 value, 2 tombstone)
//     8  u64 key.dataset        16  u64 key.chain        24  u64 key.record
//    32  u64 key hash           40  u64 value length
//    48  u32 record checksum: CRC32C of header bytes [0, 48) then the value
//    52  u32 header checksum: CRC32C of header bytes [0, 52)
//
// Why two checksums: the header checksum lets the scanner trust `value length`
// and step over a record whose value is damaged (a flipped bit costs one
// record); when the header itself is damaged there is no trustworthy way to
// find the next record, so the rest of the segment is ignored (a torn tail
// after kill -9 looks exactly like that).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail::disk_format {

inline constexpr std::uint32_t segment_magic = 0x47535643u;  // "CVSG" little-endian
inline constexpr std::uint32_t record_magic = 0x43525643u;   // "CVRC" little-endian
inline constexpr std::uint16_t version = 1;
inline constexpr std::size_t segment_header_size = 16;
inline constexpr std::size_t record_header_size = 56;

enum class record_kind : std::uint16_t { value = 1, tombstone = 2 };

using segment_header_bytes = std::array<std::byte, segment_header_size>;
using record_header_bytes = std::array<std::byte, record_header_size>;

/// "segment-<20 digits>.cvs": zero-padded so names sort in id order.
inline std::string segment_file_name(std::uint64_t segment_id) {
  char name[48];
  std::snprintf(name, sizeof name, "segment-%020llu.cvs",
                static_cast<unsigned long long>(segment_id));
  return name;
}

/// The id in a segment file name, or nullopt for any other name.
inline std::optional<std::uint64_t> parse_segment_file_name(const std::string& name) {
  if (name.size() != 32 || name.compare(0, 8, "segment-") != 0 || name.compare(28, 4, ".cvs") != 0)
    return std::nullopt;
  std::uint64_t id = 0;
  for (std::size_t i = 8; i < 28; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(name[i] - '0');
    if (id > (UINT64_MAX - digit) / 10) return std::nullopt;
    id = id * 10 + digit;
  }
  return id;
}

inline void store_le(std::byte* at, std::uint64_t value, std::size_t width) noexcept {
  for (std::size_t i = 0; i < width; ++i)
    at[i] = static_cast<std::byte>((value >> (8 * i)) & 0xffu);
}
inline std::uint64_t load_le(const std::byte* at, std::size_t width) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i)
    value |= std::uint64_t{std::to_integer<unsigned char>(at[i])} << (8 * i);
  return value;
}

inline segment_header_bytes encode_segment_header(std::uint64_t segment_id) noexcept {
  segment_header_bytes out{};
  store_le(out.data(), segment_magic, 4);
  store_le(out.data() + 4, version, 2);
  store_le(out.data() + 6, segment_header_size, 2);
  store_le(out.data() + 8, segment_id, 8);
  return out;
}

/// True when the bytes are a segment header of this format version.
inline bool segment_header_valid(std::span<const std::byte, segment_header_size> bytes) noexcept {
  return load_le(bytes.data(), 4) == segment_magic && load_le(bytes.data() + 4, 2) == version &&
         load_le(bytes.data() + 6, 2) == segment_header_size;
}

/// A decoded record header.
struct record_header {
  record_kind kind = record_kind::value;
  cache_key key;
  std::uint64_t value_length = 0;
  std::uint32_t record_checksum = 0;
};

/// Encodes a header and computes both checksums (the record checksum covers `value`).
inline record_header_bytes encode_record_header(record_kind kind, const cache_key& key,
                                                std::span<const std::byte> value) noexcept {
  record_header_bytes out{};
  store_le(out.data(), record_magic, 4);
  store_le(out.data() + 4, version, 2);
  store_le(out.data() + 6, static_cast<std::uint16_t>(kind), 2);
  store_le(out.data() + 8, key.dataset, 8);
  store_le(out.data() + 16, key.chain, 8);
  store_le(out.data() + 24, key.record, 8);
  store_le(out.data() + 32, key.hash(), 8);
  store_le(out.data() + 40, value.size(), 8);
  auto record_crc = crc32c_update(crc32c_update(0, out.data(), 48), value.data(), value.size());
  store_le(out.data() + 48, record_crc, 4);
  store_le(out.data() + 52, crc32c_update(0, out.data(), 52), 4);
  return out;
}

/// Decodes a header whose magic, version, kind, key hash and header checksum
/// are all right; nullopt otherwise. Does not look at the value.
inline std::optional<record_header> decode_record_header(
    std::span<const std::byte, record_header_size> bytes) noexcept {
  const std::byte* at = bytes.data();
  if (load_le(at, 4) != record_magic || load_le(at + 4, 2) != version) return std::nullopt;
  if (load_le(at + 52, 4) != crc32c_update(0, at, 52)) return std::nullopt;
  auto kind = load_le(at + 6, 2);
  if (kind != static_cast<std::uint16_t>(record_kind::value) &&
      kind != static_cast<std::uint16_t>(record_kind::tombstone))
    return std::nullopt;
  record_header header;
  header.kind = static_cast<record_kind>(kind);
  header.key = cache_key{load_le(at + 8, 8), load_le(at + 16, 8), load_le(at + 24, 8)};
  if (load_le(at + 32, 8) != header.key.hash()) return std::nullopt;
  header.value_length = load_le(at + 40, 8);
  header.record_checksum = static_cast<std::uint32_t>(load_le(at + 48, 4));
  if (header.kind == record_kind::tombstone && header.value_length != 0) return std::nullopt;
  return header;
}

/// The record checksum of a decoded header over a candidate value.
inline bool record_checksum_matches(std::span<const std::byte, record_header_size> header_bytes,
                                    std::uint32_t expected,
                                    std::span<const std::byte> value) noexcept {
  auto crc = crc32c_update(crc32c_update(0, header_bytes.data(), 48), value.data(), value.size());
  return crc == expected;
}

/// pread until `size` bytes arrived; false on error or end of file.
inline bool read_exact(int fd, void* into, std::size_t size, std::uint64_t offset) noexcept {
  auto* bytes = static_cast<char*>(into);
  while (size > 0) {
    auto got = ::pread(fd, bytes, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    bytes += got;
    size -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

/// preadv of exactly `total` bytes into two parts; false otherwise.
inline bool read_vector(int fd, iovec* parts, std::uint64_t offset, std::size_t total) noexcept {
  for (;;) {
    auto got = ::preadv(fd, parts, 2, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 || static_cast<std::size_t>(got) != total) return false;
    return true;
  }
}
/// pwritev of all `total` bytes from `count` parts (at most IOV_MAX),
/// resuming after short writes; the parts are consumed. errno is the
/// failed call's.
inline bool write_vector(int fd, iovec* parts, std::uint64_t offset, std::size_t total,
                         int count = 2) noexcept {
  while (total > 0) {
    auto wrote = ::pwritev(fd, parts, count, static_cast<off_t>(offset));
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return false;
    auto done = static_cast<std::size_t>(wrote);
    total -= done;
    offset += done;
    while (count > 0 && done >= parts->iov_len) {
      done -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + done;
      parts->iov_len -= done;
    }
  }
  return true;
}

/// What a scan of one segment found.
struct scan_summary {
  std::uint64_t valid_end = 0;        ///< end of the last good record (or of the segment header)
  std::uint64_t records = 0;          ///< good records
  std::uint64_t damaged_records = 0;  ///< records skipped for a bad value checksum
  bool header_valid = false;          ///< the segment header was readable and right
  bool stopped_early = false;         ///< a damaged header or torn tail ended the scan
};

/// Reads a segment file from the start and calls `on_record(header, offset)`
/// for each record whose header and value checksums are right, in file order.
/// `offset` is where the record header starts. Reads through pread with one
/// reusable buffer (allocates up to `max_value_bytes`); never throws on bad
/// bytes: it stops or skips as the file comment above describes.
template <class OnRecord>
scan_summary scan_segment(int fd, std::uint64_t file_size, std::uint64_t max_value_bytes,
                          OnRecord&& on_record) {
  scan_summary summary;
  segment_header_bytes segment_header;
  if (file_size < segment_header_size ||
      !read_exact(fd, segment_header.data(), segment_header_size, 0) ||
      !segment_header_valid(segment_header)) {
    summary.stopped_early = file_size > 0;
    return summary;
  }
  summary.header_valid = true;
  summary.valid_end = segment_header_size;
  std::uint64_t offset = segment_header_size;
  std::vector<std::byte> value;
  while (offset < file_size) {
    record_header_bytes header_bytes;
    if (file_size - offset < record_header_size ||
        !read_exact(fd, header_bytes.data(), record_header_size, offset)) {
      summary.stopped_early = true;
      break;
    }
    auto header = decode_record_header(header_bytes);
    auto room = file_size - offset - record_header_size;
    if (!header || header->value_length > room) {
      summary.stopped_early = true;
      break;
    }
    auto record_end = offset + record_header_size + header->value_length;
    bool good = false;
    if (header->value_length <= max_value_bytes) {
      value.resize(static_cast<std::size_t>(header->value_length));
      good = read_exact(fd, value.data(), value.size(), offset + record_header_size) &&
             record_checksum_matches(header_bytes, header->record_checksum, value);
    }
    if (good) {
      on_record(*header, offset);
      ++summary.records;
      summary.valid_end = record_end;
    } else {
      ++summary.damaged_records;
    }
    offset = record_end;
  }
  return summary;
}

}  // namespace conveyor::detail::disk_format
