// libFuzzer target: arbitrary bytes as a disk tier segment file. Opening the
// tier scans them; then every key named by a record-looking header in the input
// is looked up. A hit must be bytes that follow a header for that key in the
// input (the tier may never invent data), and a fresh put must read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/disk_tier.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
namespace format = conveyor::detail::disk_format;

// One directory for the whole run, removed at exit (libFuzzer ends with exit()).
const fs::path& scratch_directory() {
  static const conveyor::test::temp_dir dir("disk-fuzz");
  return dir.path();
}

// Positions in the input where a record header's magic appears.
std::vector<std::size_t> magic_positions(const std::uint8_t* data, std::size_t size) {
  std::vector<std::size_t> out;
  const unsigned char magic[4] = {'C', 'V', 'R', 'C'};
  for (std::size_t i = 0; i + format::record_header_size <= size; ++i)
    if (std::memcmp(data + i, magic, 4) == 0) out.push_back(i);
  return out;
}

conveyor::cache_key key_at(const std::uint8_t* data, std::size_t at) {
  auto* bytes = reinterpret_cast<const std::byte*>(data + at);
  return {format::load_le(bytes + 8, 8), format::load_le(bytes + 16, 8),
          format::load_le(bytes + 24, 8)};
}

// A copy of the input in which every record-looking header (walking from the
// segment header as the scanner does) gets a right key hash and checksums, so
// the fuzzer also reaches the paths behind checksum verification.
std::vector<std::uint8_t> with_repaired_checksums(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> copy(data, data + size);
  std::size_t at = format::segment_header_size;
  while (at + format::record_header_size <= copy.size()) {
    auto* header = reinterpret_cast<std::byte*>(copy.data() + at);
    auto room = copy.size() - at - format::record_header_size;
    auto length = format::load_le(header + 40, 8);
    if (length > room) break;
    auto key = key_at(copy.data(), at);
    format::store_le(header + 32, key.hash(), 8);
    auto record_crc =
        conveyor::detail::crc32c_update(conveyor::detail::crc32c_update(0, header, 48),
                                        header + format::record_header_size, length);
    format::store_le(header + 48, record_crc, 4);
    format::store_le(header + 52, conveyor::detail::crc32c_update(0, header, 52), 4);
    at += format::record_header_size + length;
  }
  return copy;
}

void run_one(const std::uint8_t* data, std::size_t size) {
  const auto& dir = scratch_directory();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove(entry.path(), ec);
  {
    std::ofstream file(dir / format::segment_file_name(1), std::ios::binary);
    file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  conveyor::disk_tier tier(dir, {.capacity_bytes = 4 << 20, .segment_bytes = 1 << 20});
  if (!tier.available()) std::abort();

  conveyor::byte_buffer out;
  auto positions = magic_positions(data, size);
  for (auto at : positions) {
    auto key = key_at(data, at);
    if (!tier.get(key, out)) continue;
    bool explained = false;
    for (auto other : positions) {
      auto start = other + format::record_header_size;
      if (key_at(data, other) == key && start + out.size() <= size &&
          std::memcmp(data + start, out.data(), out.size()) == 0)
        explained = true;
    }
    if (!explained) std::abort();  // the tier returned bytes it was never given
  }

  conveyor::cache_key fresh{0xfeed, 0xbeef, size};
  std::vector<std::byte> value(size % 97, std::byte{0x5a});
  if (!tier.put(fresh, value) || !tier.get(fresh, out) || out != value) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(data, size);
  auto repaired = with_repaired_checksums(data, size);
  run_one(repaired.data(), repaired.size());
  return 0;
}
