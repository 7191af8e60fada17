// Fuzzes conveyor/decode/bits.hpp: on arbitrary bytes the AVX2 and portable
// kernels must write identical values and report identical statuses, for every
// dtype; packing must agree too, and unpack(pack(x)) must equal decode(x).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "conveyor/decode/bits.hpp"

namespace {

namespace cy = conveyor;

void require(bool condition) {
  if (!condition) std::abort();
}

bool same_status(const cy::decode_status& a, const cy::decode_status& b) {
  return a.code == b.code && a.position == b.position && a.value == b.value;
}

// memcmp/memset on empty vectors would pass null pointers (UB even for size 0).
template <class T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
void check_decode(std::string_view text) {
  if (text.empty()) return;
  // Fill with a pattern that decoding never writes, so "untouched" is visible.
  std::vector<T> portable(text.size()), best(text.size());
  std::memset(portable.data(), 0xA5, portable.size() * sizeof(T));
  std::memset(best.data(), 0xA5, best.size() * sizeof(T));
  const auto status_portable = cy::try_decode_bit_string(text, std::span<T>(portable), cy::simd_path::portable);
  const auto status_best = cy::try_decode_bit_string(text, std::span<T>(best), cy::simd_path::best);
  require(same_status(status_portable, status_best));
  require(same_bytes(portable, best));
  if (status_portable.ok()) {
    // Round trip through packed bits.
    std::vector<std::uint8_t> packed((text.size() + 7) / 8);
    require(cy::try_pack_bit_string(text, packed).ok());
    std::vector<T> unpacked(text.size());
    require(cy::try_unpack_bits(std::span<const std::uint8_t>(packed), std::span<T>(unpacked)).ok());
    require(same_bytes(unpacked, best));
  } else {
    require(status_portable.code == cy::decode_errc::bad_character);
    const unsigned char bad = static_cast<unsigned char>(text[status_portable.position]);
    require(bad != '0' && bad != '1');
    for (std::size_t i = 0; i < status_portable.position; ++i) require(text[i] == '0' || text[i] == '1');
  }
  // A wrong length is reported without writing.
  std::vector<T> short_out(text.size() - 1);
  require(cy::try_decode_bit_string(text, std::span<T>(short_out)).code == cy::decode_errc::wrong_length);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Most bytes become '0'/'1' so that long valid runs (and the AVX2 blocks) are
  // reached; a byte with the top two bits set stays as it is.
  std::string text(size, '0');
  for (std::size_t i = 0; i < size; ++i) text[i] = (data[i] & 0xC0) == 0xC0 ? static_cast<char>(data[i]) : static_cast<char>('0' + (data[i] & 1));
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  for (std::string_view input : {std::string_view(text), raw}) {
    check_decode<float>(input);
    check_decode<cy::float16>(input);
    check_decode<cy::bfloat16>(input);
    check_decode<std::uint8_t>(input);
    std::vector<std::uint8_t> packed_portable((input.size() + 7) / 8, 0x5A), packed_best((input.size() + 7) / 8, 0x5A);
    const auto pack_portable = cy::try_pack_bit_string(input, packed_portable, cy::simd_path::portable);
    const auto pack_best = cy::try_pack_bit_string(input, packed_best, cy::simd_path::best);
    require(same_status(pack_portable, pack_best));
    require(packed_portable == packed_best);
  }
  // Raw bytes as packed bits: both paths agree, for every bit count that fits.
  const std::size_t bits = size * 8 - (size ? data[0] % 8 : 0);
  std::vector<float> unpacked_portable(bits), unpacked_best(bits);
  const std::span<const std::uint8_t> packed(data, size);
  require(cy::try_unpack_bits(packed, std::span<float>(unpacked_portable), cy::simd_path::portable).ok());
  require(cy::try_unpack_bits(packed, std::span<float>(unpacked_best), cy::simd_path::best).ok());
  require(unpacked_portable == unpacked_best);
  return 0;
}
