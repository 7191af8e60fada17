// conveyor/source/detail/delimited_index.hpp: the record-offset index of a
// delimited file, built by one quote-aware pass and persisted to a sidecar.
//
// Why a sidecar: finding record boundaries needs a full pass over the file
// (a quoted field may hold newlines), which is the slowest step of opening a
// multi-GB file. The sidecar stores 8 bytes per record and is trusted only when
// everything it claims checks out: its own checksum, and the size, mtime and a
// hash of sampled blocks of the file it indexes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/delimited_scan.hpp"

namespace conveyor::detail::delimited {

// Offsets of every data record, plus where the header row starts.
struct record_index {
  std::uint64_t header_offset = unknown_position;  // unknown_position: no header row
  std::vector<std::uint64_t> offsets;              // data records, strictly increasing
};

// A UTF-8 byte order mark at the very start is not part of the first column's
// name (Python's "utf-8-sig", pandas); conveyor skips it.
inline std::size_t utf8_bom_length(const char* data, std::size_t size) noexcept {
  return size >= 3 && static_cast<unsigned char>(data[0]) == 0xEF &&
                 static_cast<unsigned char>(data[1]) == 0xBB &&
                 static_cast<unsigned char>(data[2]) == 0xBF
             ? 3
             : 0;
}

// One pass over [data, data + size): a leading UTF-8 byte order mark is skipped; the header is the
// first non-blank row; blank lines after it become zero-field records unless skipped. A record
// whose quote never closes runs to the end of the file (parsing it reports the error).
inline record_index build_record_index(const char* data, std::size_t size, char delimiter,
                                       bool skip_blank_lines) {
  record_index index;
  const char* end = data + size;
  const char* p = data + utf8_bom_length(data, size);
  while (is_blank_line(p, end)) p = skip_line_terminator(p, end);
  if (p == end) return index;
  index.header_offset = static_cast<std::uint64_t>(p - data);
  auto ignore_fields = [](const field_extent&, std::size_t) {};
  p = scan_record(p, end, delimiter, ignore_fields).next;
  const char* first_record = p;
  constexpr std::size_t sampled_records = 64;
  bool reserved = false;
  while (p < end) {
    if (!reserved && index.offsets.size() == sampled_records) {
      // Reserve from the mean length of the first records, so that a large
      // file's index grows without repeated copying.
      const auto sampled_bytes = static_cast<std::size_t>(p - first_record);
      const std::size_t estimate = size / std::max<std::size_t>(sampled_bytes / sampled_records, 1);
      index.offsets.reserve(estimate + estimate / 8 + sampled_records);
      reserved = true;
    }
    if (is_blank_line(p, end)) {
      if (!skip_blank_lines) index.offsets.push_back(static_cast<std::uint64_t>(p - data));
      p = skip_line_terminator(p, end);
      continue;
    }
    index.offsets.push_back(static_cast<std::uint64_t>(p - data));
    p = scan_record(p, end, delimiter, ignore_fields).next;
  }
  return index;
}

// What identifies the indexed file's content well enough to trust an index.
struct file_identity {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t sample_hash = 0;  // hash of sampled blocks, see identify()
};

inline constexpr std::size_t sample_block_bytes = 4096;
inline constexpr std::size_t sample_blocks = 16;

// Hashes the first and last block and blocks evenly spaced between them:
// O(1) reads however large the file, and a whole-file hash up to 64 KiB. It
// catches a same-size rewrite that a coarse mtime might miss, unless every
// change falls between the samples.
inline file_identity identify(const char* data, std::size_t size, std::int64_t mtime_ns) {
  if (size == 0) return {0, mtime_ns, 0};
  std::uint64_t hash = 0;
  if (size <= sample_block_bytes * sample_blocks) {
    hash = hash_bytes(data, size);
  } else {
    const std::size_t last_start = size - sample_block_bytes;
    for (std::size_t block = 0; block < sample_blocks; ++block) {
      const std::size_t start = last_start / (sample_blocks - 1) * block;
      hash = hash_bytes(data + (block + 1 == sample_blocks ? last_start : start),
                        sample_block_bytes, hash);
    }
  }
  return {size, mtime_ns, hash};
}

// The sidecar's fixed header; the offsets follow it.
struct sidecar_header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t syntax;  // delimiter byte | skip_blank_lines << 8
  std::uint64_t file_size;
  std::int64_t file_mtime_ns;
  std::uint64_t file_sample_hash;
  std::uint64_t header_offset;
  std::uint64_t record_count;
  std::uint64_t offsets_hash;
};
static_assert(sizeof(sidecar_header) == 64, "the sidecar header is a fixed 64-byte layout");

inline constexpr char sidecar_magic[8] = {'C', 'Y', 'D', 'L', 'M', 'I', 'D', 'X'};
inline constexpr std::uint32_t sidecar_version = 1;

inline std::uint32_t syntax_code(char delimiter, bool skip_blank_lines) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(delimiter)) |
         (skip_blank_lines ? 1u << 8 : 0u);
}

inline std::uint64_t hash_offsets(const std::vector<std::uint64_t>& offsets) {
  return hash_bytes(offsets.data(), offsets.size() * sizeof(std::uint64_t));
}

// Reads and validates a sidecar. Returns false, with the reason, for anything
// missing, unreadable, stale or inconsistent; never throws for bad contents.
inline bool load_sidecar(const std::filesystem::path& sidecar, const file_identity& identity,
                         std::uint32_t syntax, record_index& out, std::string& reason) {
  std::error_code code;
  const auto sidecar_size = std::filesystem::file_size(sidecar, code);
  if (code) {
    reason = "no index sidecar";
    return false;
  }
  std::ifstream in(sidecar, std::ios::binary);
  sidecar_header header{};
  if (!in || sidecar_size < sizeof header ||
      !in.read(reinterpret_cast<char*>(&header), sizeof header)) {
    reason = "sidecar unreadable or truncated";
    return false;
  }
  if (std::memcmp(header.magic, sidecar_magic, sizeof sidecar_magic) != 0 ||
      header.version != sidecar_version) {
    reason = "sidecar has a wrong magic or version";
    return false;
  }
  if (header.syntax != syntax) {
    reason = "sidecar was built with other options";
    return false;
  }
  if (header.file_size != identity.size || header.file_mtime_ns != identity.mtime_ns ||
      header.file_sample_hash != identity.sample_hash) {
    reason = "sidecar is stale: the file changed";
    return false;
  }
  if (header.record_count > (sidecar_size - sizeof header) / sizeof(std::uint64_t) ||
      sizeof header + header.record_count * sizeof(std::uint64_t) != sidecar_size) {
    reason = "sidecar size does not match its record count";
    return false;
  }
  std::vector<std::uint64_t> offsets(static_cast<std::size_t>(header.record_count));
  if (!in.read(reinterpret_cast<char*>(offsets.data()),
               static_cast<std::streamsize>(offsets.size() * sizeof(std::uint64_t)))) {
    reason = "sidecar truncated";
    return false;
  }
  if (hash_offsets(offsets) != header.offsets_hash) {
    reason = "sidecar checksum mismatch";
    return false;
  }
  // Bounds and order are what parsing relies on for memory safety; check them
  // even though the checksum matched.
  const bool has_header = header.header_offset != unknown_position;
  if ((has_header && header.header_offset >= identity.size) || (!has_header && !offsets.empty())) {
    reason = "sidecar header offset out of range";
    return false;
  }
  std::uint64_t previous = header.header_offset;
  for (const std::uint64_t offset : offsets) {
    if (offset <= previous || offset >= identity.size) {
      reason = "sidecar offsets out of order or out of range";
      return false;
    }
    previous = offset;
  }
  out.header_offset = header.header_offset;
  out.offsets = std::move(offsets);
  return true;
}

// Writes the sidecar through a temporary file and a rename, so a reader never
// sees half an index. Returns false, with the reason, on any failure.
inline bool save_sidecar(const std::filesystem::path& sidecar, const file_identity& identity,
                         std::uint32_t syntax, const record_index& index, std::string& reason) {
  sidecar_header header{};
  std::memcpy(header.magic, sidecar_magic, sizeof sidecar_magic);
  header.version = sidecar_version;
  header.syntax = syntax;
  header.file_size = identity.size;
  header.file_mtime_ns = identity.mtime_ns;
  header.file_sample_hash = identity.sample_hash;
  header.header_offset = index.header_offset;
  header.record_count = index.offsets.size();
  header.offsets_hash = hash_offsets(index.offsets);

  std::random_device entropy;
  auto temporary = sidecar;
  temporary += ".tmp-" + std::to_string(entropy()) + std::to_string(entropy());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      reason = "cannot create " + temporary.string();
      return false;
    }
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(reinterpret_cast<const char*>(index.offsets.data()),
              static_cast<std::streamsize>(index.offsets.size() * sizeof(std::uint64_t)));
    out.flush();
    if (!out) {
      reason = "cannot write " + temporary.string();
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      return false;
    }
  }
  std::error_code code;
  std::filesystem::rename(temporary, sidecar, code);
  if (code) {
    reason = "cannot rename the index into place: " + code.message();
    std::filesystem::remove(temporary, code);
    return false;
  }
  return true;
}

// <directory>/<file name>.<hash of the absolute path>.cyidx, so that files of
// the same name in different directories do not share a sidecar.
inline std::filesystem::path sidecar_in_directory(const std::filesystem::path& file,
                                                  const std::filesystem::path& directory) {
  std::error_code code;
  auto absolute = std::filesystem::absolute(file, code);
  const std::string text = (code ? file : absolute).lexically_normal().string();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(hash_bytes(text.data(), text.size())));
  return directory / (file.filename().string() + "." + hex + ".cyidx");
}

}  // namespace conveyor::detail::delimited
