// docs/pipeline.md, "A first pipeline".
#include <conveyor/conveyor.hpp>
#include <iostream>

namespace cy = conveyor;

int main() {
  // 10,000 records of 8 floats; record i is filled by the function.
  auto source = cy::generate<cy::dense<"x", float>>(10'000, 8, [](std::uint64_t i, std::span<float> row) {
    for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>(i + c);
  });

  auto pipe = std::move(source)
            | cy::shuffle(/*seed=*/42) | cy::shard(/*rank=*/0, /*world=*/2) | cy::batch(256)
            | cy::map("scale", [](cy::record_batch<cy::dense<"x", float>>&& b) {
                for (float& v : b.get<"x">().values()) v *= 0.5f;
                return std::move(b);
              })
            | cy::parallel(2) | cy::prefetch(4);

  std::uint64_t rows = 0;
  for (std::uint64_t epoch = 0; epoch < 2; ++epoch)
    for (auto& batch : pipe.epoch(epoch)) {
      const auto& x = batch.get<"x">();  // dense_column<float>: rows x 8, contiguous
      rows += x.rows();
    }
  std::cout << pipe.stats();
  return rows == 2 * 5'000 ? 0 : 1;
}
