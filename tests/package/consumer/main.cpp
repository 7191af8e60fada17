#include <conveyor/conveyor.hpp>
#include <cstdio>

int main() {
  namespace cy = conveyor;
  auto pipe = cy::generate<cy::dense<"x", float>>(100, 4, [](std::uint64_t i, std::span<float> row) {
                for (auto& v : row) v = static_cast<float>(i);
              }) |
              cy::shuffle(1) | cy::batch(10) | cy::parallel(2) | cy::prefetch(2);
  std::uint64_t rows = 0;
  double sum = 0;
  for (auto& b : pipe.epoch(0)) {
    rows += b.rows();
    for (float v : b.get<"x">().values()) sum += v;
  }
  std::printf("consumer: %llu rows, sum %.0f\n", static_cast<unsigned long long>(rows), sum);
  return rows == 100 && sum == 4 * 4950 ? 0 : 1;
}
