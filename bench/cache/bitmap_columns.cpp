// The cache stage's bitmap columns (cache/detail/cached_batch.hpp): the 0/1
// scan-and-pack a filling epoch runs over every dense column it stores, and
// the expansion every hit runs, for each word size, as ratios to the portable
// loops measured in the same run (> 1: faster than the portable loop).
// Input: 256 rows (a batch) of 2,060 values (a DEA record's x and y widths
// together) of random 0/1 in the dtype's encoding, so every row packs; the
// scan reads 256 x 2,060 values, the expansion writes as many.
// Each figure is the best of 9 trials; trials interleave the variants so
// machine noise hits them alike; times are this thread's CPU time.
//
// Usage: bench_cache_bitmap_columns
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "conveyor/cache/detail/cached_batch.hpp"
#include "conveyor/core/half.hpp"
#include "support/thread_clock.hpp"

namespace {

namespace cy = conveyor;
namespace d = conveyor::detail;
using clock_type = conveyor::bench::thread_cpu_clock;

constexpr std::size_t rows = 256;
constexpr std::size_t width = 2060;
constexpr int trials = 9;

template <class Work>
double seconds_of(Work&& work) {
  const auto start = clock_type::now();
  work();
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class T>
void compare(const char* name) {
  using word = typename d::binary_dtype<T>::word;
  constexpr word one = d::binary_dtype<T>::one;
  std::mt19937_64 random(3);
  std::vector<word> values(rows * width);
  for (auto& w : values) w = (random() & 7) == 0 ? one : word{0};
  const std::size_t bitmap_bytes = d::bitmap_bytes(width);
  std::vector<std::uint8_t> bitmaps(rows * bitmap_bytes), portable_bitmaps(rows * bitmap_bytes);
  std::vector<word> expanded(rows * width);
  const auto* bytes = reinterpret_cast<const std::byte*>(values.data());
  double pack = 1e9, pack_portable = 1e9, expand = 1e9, expand_portable = 1e9;
  bool all_packed = true;
  for (int trial = 0; trial < trials; ++trial) {
    pack = std::min(pack, seconds_of([&] {
                      for (std::size_t r = 0; r < rows; ++r)
                        all_packed &= d::pack_binary<T>(bytes + r * width * sizeof(word), width,
                                                        bitmaps.data() + r * bitmap_bytes);
                    }));
    pack_portable = std::min(pack_portable, seconds_of([&] {
                               for (std::size_t r = 0; r < rows; ++r)
                                 all_packed &= d::pack_binary_portable<word>(
                                     bytes + r * width * sizeof(word), 0, width, one,
                                     portable_bitmaps.data() + r * bitmap_bytes);
                             }));
    expand = std::min(expand, seconds_of([&] {
                        for (std::size_t r = 0; r < rows; ++r)
                          d::expand_binary<T>(bitmaps.data() + r * bitmap_bytes, width,
                                              reinterpret_cast<T*>(expanded.data() + r * width));
                      }));
    expand_portable = std::min(expand_portable, seconds_of([&] {
                                 for (std::size_t r = 0; r < rows; ++r)
                                   d::expand_binary_words_portable<word>(
                                       bitmaps.data() + r * bitmap_bytes, 0, width, one,
                                       reinterpret_cast<std::byte*>(expanded.data() + r * width));
                               }));
  }
  // Both paths must agree, and the expansion must give the values back.
  if (!all_packed || bitmaps != portable_bitmaps || expanded != values) {
    std::printf("%-9s ERROR: the paths disagree\n", name);
    std::exit(1);
  }
  const double row_ns = 1e9 / static_cast<double>(rows);
  std::printf("%-9s %6zu B  %9.1f  %9.1f  %7.2fx  %9.1f  %9.1f  %7.2fx\n", name, sizeof(T),
              pack * row_ns, pack_portable * row_ns, pack_portable / pack, expand * row_ns,
              expand_portable * row_ns, expand_portable / expand);
}

}  // namespace

int main() {
  std::printf("%zu rows of %zu values, ns per row (best of %d), AVX2 %s\n", rows, width, trials,
              d::cpu_supports_avx2() ? "used" : "absent (both columns portable)");
  std::printf("%-9s %8s  %9s  %9s  %8s  %9s  %9s  %8s\n", "dtype", "word", "scan", "portable",
              "ratio", "expand", "portable", "ratio");
  compare<float>("float");
  compare<double>("double");
  compare<cy::float16>("float16");
  compare<cy::bfloat16>("bfloat16");
  compare<std::uint8_t>("uint8");
  compare<std::int16_t>("int16");
  compare<std::int32_t>("int32");
  compare<std::int64_t>("int64");
}
