// A shuffled, batched, parallel, prefetched pipeline over generated rows: every
// row arrives once; with conveyor::hdf5, HDF5's library links too.
#include <conveyor/conveyor.hpp>
#ifdef CONVEYOR_TEST_HDF5
#include <conveyor/source/hdf5.hpp>
#endif
#include <cstdint>
#include <cstdio>
#include <span>

int main() {
  namespace cy = conveyor;
  auto pipe = cy::generate<cy::dense<"x", float>>(100, 4,
                                                  [](std::uint64_t i, std::span<float> row) {
                                                    for (auto& v : row) v = static_cast<float>(i);
                                                  }) |
              cy::shuffle(7) | cy::batch(16) | cy::parallel(2) | cy::prefetch(2);
  std::uint64_t rows = 0;
  double sum = 0;
  for (auto& b : pipe.epoch(0)) {
    rows += b.rows();
    for (float v : b.get<"x">().values()) sum += v;
  }
#ifdef CONVEYOR_TEST_HDF5
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return 1;
  std::printf("test_package: HDF5 %u.%u.%u\n", major, minor, release);
#endif
  std::printf("test_package: %llu rows, sum %.0f\n", static_cast<unsigned long long>(rows), sum);
  return rows == 100 && sum == 4 * 4950 ? 0 : 1;
}
