// Bit-string -> float32 decode throughput, as ratios to memcpy measured in the
// same run. Input: 2048 rows of 1024 '0'/'1' characters (2 MiB, one buffer);
// output: 2048 x 1024 float32 (8 MiB). Two memcpy baselines:
//   memcpy(input size):  copies the 2 MiB of characters to another buffer;
//   memcpy(output size): copies 8 MiB (the bytes the decoder writes).
// Each figure is the best of 7 trials; trials interleave all kernels so machine
// noise hits them alike; times are this thread's CPU time. Ratio = memcpy
// time / kernel time (> 1: faster).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "conveyor/decode/bits.hpp"
#include "support/thread_clock.hpp"

namespace {

namespace cy = conveyor;
using clock_type = conveyor::bench::thread_cpu_clock;

constexpr std::size_t row_count = 2048;
constexpr std::size_t row_width = 1024;
constexpr int repeats = 8;
constexpr int trials = 7;

template <class Work>
double best_seconds(Work&& work, std::vector<double>& best, std::size_t slot) {
  const auto start = clock_type::now();
  for (int r = 0; r < repeats; ++r) work();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count() / repeats;
  best[slot] = std::min(best[slot], seconds);
  return seconds;
}

volatile std::uint8_t sink;

}  // namespace

int main() {
  std::mt19937 rng(1);
  std::string input(row_count * row_width, '0');
  for (auto& c : input) c = static_cast<char>('0' + (rng() & 1));
  std::string input_copy(input.size(), ' ');
  std::vector<float> output(row_count * row_width);
  std::vector<float> output_copy(output.size(), 2.0f);
  std::vector<std::uint8_t> packed(row_count * row_width / 8);
  if (!cy::try_pack_bit_string(input, packed).ok()) return 1;

  const auto decode_rows = [&](cy::simd_path path) {
    for (std::size_t row = 0; row < row_count; ++row) {
      const auto status = cy::try_decode_bit_string(std::string_view(input).substr(row * row_width, row_width),
                                                    std::span<float>(output).subspan(row * row_width, row_width), path);
      if (!status) std::abort();
    }
    sink = reinterpret_cast<const std::uint8_t*>(output.data())[output.size() / 2];
  };
  const auto unpack_rows = [&](cy::simd_path path) {
    for (std::size_t row = 0; row < row_count; ++row) {
      const auto status = cy::try_unpack_bits(std::span<const std::uint8_t>(packed).subspan(row * row_width / 8, row_width / 8),
                                              std::span<float>(output).subspan(row * row_width, row_width), path);
      if (!status) std::abort();
    }
    sink = reinterpret_cast<const std::uint8_t*>(output.data())[output.size() / 3];
  };

  enum { memcpy_in, memcpy_out, decode_avx2, decode_portable, unpack_avx2, unpack_portable, slots };
  std::vector<double> best(slots, 1e9);
  for (int trial = 0; trial < trials; ++trial) {
    best_seconds([&] { std::memcpy(input_copy.data(), input.data(), input.size()); sink = input_copy[77]; }, best, memcpy_in);
    best_seconds([&] { std::memcpy(output_copy.data(), output.data(), output.size() * 4); sink = static_cast<std::uint8_t>(output_copy[77]); }, best, memcpy_out);
    best_seconds([&] { decode_rows(cy::simd_path::best); }, best, decode_avx2);
    best_seconds([&] { decode_rows(cy::simd_path::portable); }, best, decode_portable);
    best_seconds([&] { unpack_rows(cy::simd_path::best); }, best, unpack_avx2);
    best_seconds([&] { unpack_rows(cy::simd_path::portable); }, best, unpack_portable);
  }
  const double in_bytes = static_cast<double>(input.size()), out_bytes = static_cast<double>(output.size() * 4);
  std::printf("bit string -> float32, %zu rows x %zu bits, one core, avx2_available=%d\n", row_count, row_width,
              cy::avx2_available() ? 1 : 0);
  std::printf("  baseline memcpy %.1f MiB (input size):  %.2f GB/s\n", in_bytes / 1048576, in_bytes / best[memcpy_in] / 1e9);
  std::printf("  baseline memcpy %.1f MiB (output size): %.2f GB/s\n", out_bytes / 1048576, out_bytes / best[memcpy_out] / 1e9);
  const auto report = [&](const char* name, int slot, double read_bytes) {
    std::printf("  %-32s %6.2f GB/s read, %6.2f GB/s written | ratio vs memcpy(input size) %.2f, vs memcpy(output size) %.2f\n",
                name, read_bytes / best[slot] / 1e9, out_bytes / best[slot] / 1e9, best[memcpy_in] / best[slot],
                best[memcpy_out] / best[slot]);
  };
  report("decode string, AVX2:", decode_avx2, in_bytes);
  report("decode string, portable:", decode_portable, in_bytes);
  const auto report_unpack = [&](const char* name, int slot) {
    std::printf("  %-32s %6.2f GB/s read, %6.2f GB/s written | ratio vs memcpy(output size) %.2f\n", name,
                in_bytes / 8 / best[slot] / 1e9, out_bytes / best[slot] / 1e9, best[memcpy_out] / best[slot]);
  };
  report_unpack("unpack 256 KiB packed, AVX2:", unpack_avx2);
  report_unpack("unpack 256 KiB packed, portable:", unpack_portable);
  std::printf("  AVX2 / portable speedup: decode %.2fx, unpack %.2fx\n", best[decode_portable] / best[decode_avx2],
              best[unpack_portable] / best[unpack_avx2]);
  return 0;
}
