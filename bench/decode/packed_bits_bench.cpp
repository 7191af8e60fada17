// Packed bits -> float32 (decode/packed_bits.hpp), as ratios to baselines
// measured in the same run. Input: 2048 rows of 1024 bits (the DEA filter),
// packed with np.packbits' layout (128 bytes a row, 256 KiB in all); output:
// 2048 x 1024 float32 (8 MiB), the same as bits_bench so figures compare.
// Baselines:
//   portable: the same rows through simd_path::portable (the loop over the
//             CONVEYOR_HOST_DEVICE per-value step, as the compiler optimizes it);
//   text:     the same bits as 1024 '0'/'1' characters a row (2 MiB) through
//             decode_bit_string (AVX2 when available), what the TSV path does;
//   memcpy:   copying 8 MiB, the bytes every variant writes.
// Each figure is the best of 7 trials; trials interleave all variants so machine
// noise hits them alike; times are this thread's CPU time. Ratio = baseline time
// / kernel time (> 1: faster than the baseline).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/packed_bits.hpp"
#include "support/thread_clock.hpp"

namespace {

namespace cy = conveyor;
using clock_type = conveyor::bench::thread_cpu_clock;

constexpr std::size_t row_count = 2048;
constexpr std::size_t row_width = 1024;
constexpr std::size_t row_bytes = row_width / 8;
constexpr int repeats = 8;
constexpr int trials = 7;

template <class Work>
void best_seconds(Work&& work, std::vector<double>& best, std::size_t slot) {
  const auto start = clock_type::now();
  for (int r = 0; r < repeats; ++r) work();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count() / repeats;
  best[slot] = std::min(best[slot], seconds);
}

volatile std::uint8_t sink;

}  // namespace

int main() {
  std::mt19937 rng(1);
  std::string text(row_count * row_width, '0');
  for (auto& c : text) c = static_cast<char>('0' + (rng() & 1));
  std::vector<std::uint8_t> packed(row_count * row_bytes);
  if (!cy::try_pack_bit_string(text, packed).ok()) return 1;
  const std::span<const std::uint8_t> packed_view(packed);
  std::vector<float> output(row_count * row_width), output_copy(output.size(), 2.0f);
  std::vector<float> reference(output.size());
  const auto touch = [&] {
    sink = reinterpret_cast<const std::uint8_t*>(output.data())[output.size() / 3];
  };

  const auto batch = [&](cy::simd_path path) {
    cy::unpack_bit_rows(packed_view, std::span<float>(output), row_width, cy::bit_order::big, path);
    touch();
  };
  const auto row_by_row = [&](cy::simd_path path) {
    for (std::size_t row = 0; row < row_count; ++row)
      cy::unpack_bits(packed_view.subspan(row * row_bytes, row_bytes),
                      std::span<float>(output).subspan(row * row_width, row_width),
                      cy::bit_order::big, path);
    touch();
  };
  const auto from_text = [&](cy::simd_path path) {
    for (std::size_t row = 0; row < row_count; ++row) {
      const auto status = cy::try_decode_bit_string(
          std::string_view(text).substr(row * row_width, row_width),
          std::span<float>(output).subspan(row * row_width, row_width), path);
      if (!status) std::abort();
    }
    touch();
  };

  // Every variant writes the same values.
  from_text(cy::simd_path::portable);
  reference = output;
  for (auto path : {cy::simd_path::best, cy::simd_path::portable}) {
    std::fill(output.begin(), output.end(), -1.0f);
    batch(path);
    if (output != reference) return 1;
    std::fill(output.begin(), output.end(), -1.0f);
    row_by_row(path);
    if (output != reference) return 1;
  }

  enum { memcpy_out, text_best, batch_best, rows_best, batch_portable, rows_portable, slots };
  std::vector<double> best(slots, 1e9);
  for (int trial = 0; trial < trials; ++trial) {
    best_seconds(
        [&] {
          std::memcpy(output_copy.data(), output.data(), output.size() * 4);
          sink = static_cast<std::uint8_t>(output_copy[77]);
        },
        best, memcpy_out);
    best_seconds([&] { from_text(cy::simd_path::best); }, best, text_best);
    best_seconds([&] { batch(cy::simd_path::best); }, best, batch_best);
    best_seconds([&] { row_by_row(cy::simd_path::best); }, best, rows_best);
    best_seconds([&] { batch(cy::simd_path::portable); }, best, batch_portable);
    best_seconds([&] { row_by_row(cy::simd_path::portable); }, best, rows_portable);
  }

  const double out_bytes = static_cast<double>(output.size() * 4);
  std::printf("packed bits -> float32, %zu rows x %zu bits, one core, avx2_available=%d\n",
              row_count, row_width, cy::avx2_available() ? 1 : 0);
  std::printf("  baseline memcpy %.1f MiB (output size): %.2f GB/s\n", out_bytes / 1048576,
              out_bytes / best[memcpy_out] / 1e9);
  const auto report = [&](const char* name, int slot) {
    std::printf(
        "  %-44s %7.1f ns/row %6.2f GB/s written | vs portable %5.2fx, vs text %5.2fx, vs memcpy "
        "%4.2fx\n",
        name, best[slot] / row_count * 1e9, out_bytes / best[slot] / 1e9,
        best[batch_portable] / best[slot], best[text_best] / best[slot],
        best[memcpy_out] / best[slot]);
  };
  report("unpack_bit_rows, best (AVX2):", batch_best);
  report("unpack_bits row by row, best (AVX2):", rows_best);
  report("unpack_bit_rows, portable [baseline]:", batch_portable);
  report("unpack_bits row by row, portable:", rows_portable);
  report("decode_bit_string text, best [baseline]:", text_best);
  return 0;
}
