// Fuzzes conveyor/decode/packed_bits.hpp: on arbitrary bytes, for every dtype
// and both bit orders, the AVX2 and portable kernels write identical bytes, the
// values are the bits of the input, an error is thrown exactly when a padding
// bit is set (and then nothing is written), and the batch form equals row by row.
//
// Input: byte 0 picks the bit order (bit 0), how many bits of the last byte are
// padding (bits 1-3) and the number of rows for the batch form (bits 4-7, plus
// one); the rest is the packed data.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>
#include <vector>

#include "conveyor/decode/packed_bits.hpp"

namespace {

namespace cy = conveyor;

void require(bool condition) {
  if (!condition) std::abort();
}

constexpr std::uint8_t untouched = 0xA5;  // a byte pattern no decoded value has

template <class T>
std::vector<T> filled(std::size_t count) {
  std::vector<T> out(count);
  if (count) std::memset(out.data(), untouched, count * sizeof(T));
  return out;
}

template <class T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
bool is_value(const T& value, unsigned bit) {
  std::uint32_t raw = 0;
  std::memcpy(&raw, &value, sizeof(T));
  if (bit == 0) return raw == 0;
  if constexpr (std::is_same_v<T, float>)
    return raw == 0x3F80'0000u;
  else if constexpr (std::is_same_v<T, cy::float16>)
    return raw == 0x3C00u;
  else if constexpr (std::is_same_v<T, cy::bfloat16>)
    return raw == 0x3F80u;
  else
    return raw == 1u;
}

unsigned reference_bit(std::span<const std::uint8_t> packed, std::size_t i, cy::bit_order order) {
  const unsigned shift = order == cy::bit_order::big ? 7 - i % 8 : i % 8;
  return (packed[i / 8] >> shift) & 1u;
}

bool reference_padding_set(std::span<const std::uint8_t> row, std::size_t bits,
                           cy::bit_order order) {
  for (std::size_t i = bits; i < row.size() * 8; ++i)
    if (reference_bit(row, i, order)) return true;
  return false;
}

// Runs `unpack` on a fresh output; returns whether it threw invalid_argument.
template <class T, class Unpack>
bool run(std::vector<T>& out, Unpack&& unpack) {
  try {
    unpack(std::span<T>(out));
    return false;
  } catch (const std::invalid_argument&) {
    return true;
  }
}

template <class T>
void check(std::span<const std::uint8_t> packed, std::size_t drop, std::size_t rows,
           cy::bit_order order) {
  // One row over all the bytes.
  const std::size_t bits = packed.empty() ? 0 : packed.size() * 8 - drop;
  auto portable = filled<T>(bits), best = filled<T>(bits);
  const bool threw_portable = run(portable, [&](std::span<T> out) {
    cy::unpack_bits(packed, out, order, cy::simd_path::portable);
  });
  const bool threw_best = run(
      best, [&](std::span<T> out) { cy::unpack_bits(packed, out, order, cy::simd_path::best); });
  require(threw_portable == threw_best);
  require(threw_portable == reference_padding_set(packed, bits, order));
  require(same_bytes(portable, best));
  if (threw_portable) {
    require(same_bytes(portable, filled<T>(bits)));
  } else {
    for (std::size_t i = 0; i < bits; ++i)
      require(is_value(portable[i], reference_bit(packed, i, order)));
  }
  // A wrong byte count always throws.
  if (!packed.empty()) {
    auto short_out = filled<T>(bits);
    require(run(short_out, [&](std::span<T> out) {
      cy::unpack_bits(packed.first(packed.size() - 1), out, order);
    }));
  }

  // The batch form: `rows` rows of packed.size() / rows bytes.
  const std::size_t bytes_per_row = packed.size() / rows;
  if (bytes_per_row == 0) return;
  const std::size_t width = bytes_per_row * 8 - drop;
  const auto batch_in = packed.first(rows * bytes_per_row);
  auto batch = filled<T>(rows * width), row_by_row = filled<T>(rows * width);
  const bool threw_batch =
      run(batch, [&](std::span<T> out) { cy::unpack_bit_rows(batch_in, out, width, order); });
  bool any_padding = false;
  for (std::size_t row = 0; row < rows; ++row) {
    const auto row_in = batch_in.subspan(row * bytes_per_row, bytes_per_row);
    std::vector<T> one = filled<T>(width);
    const bool threw_row = run(one, [&](std::span<T> out) {
      cy::unpack_bits(row_in, out, order, cy::simd_path::portable);
    });
    require(threw_row == reference_padding_set(row_in, width, order));
    any_padding = any_padding || threw_row;
    if (!threw_row) std::memcpy(row_by_row.data() + row * width, one.data(), width * sizeof(T));
  }
  require(threw_batch == any_padding);
  require(same_bytes(batch, threw_batch ? filled<T>(rows * width) : row_by_row));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto order = (data[0] & 1) ? cy::bit_order::little : cy::bit_order::big;
  const std::size_t drop = (data[0] >> 1) & 7;
  const std::size_t rows = (data[0] >> 4) + 1u;
  const std::span<const std::uint8_t> packed(data + 1, size - 1);
  check<float>(packed, drop, rows, order);
  check<cy::float16>(packed, drop, rows, order);
  check<cy::bfloat16>(packed, drop, rows, order);
  check<std::uint8_t>(packed, drop, rows, order);
  return 0;
}
