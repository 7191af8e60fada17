// README.md: the pipeline on the first screen. Self-contained: the records are
// generated, the "training step" sums what it receives.
#include <conveyor/conveyor.hpp>
#include <cstdint>
#include <iostream>
#include <span>

namespace cy = conveyor;

namespace {
void fill_row(std::uint64_t record, std::span<float> row) {  // record i's 1024 features
  for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>((record + c) % 7);
}
auto augment(cy::record_batch<cy::dense<"x", float>>&& batch) {  // any batch -> batch function
  for (float& v : batch.get<"x">().values()) v *= 0.5f;
  return std::move(batch);
}
double total = 0;
void train_step(const cy::dense_column<float>& x) {
  total += x(0, 0);
}
}  // namespace

int main() {
  // This process's rank among `world` processes.
  const std::uint32_t rank = 0, world = 2;
  // Laid out as README.md quotes it.
  // clang-format off
  auto pipe = cy::generate<cy::dense<"x", float>>(100'000, 1024, fill_row)  // any record source
            | cy::shuffle(/*seed=*/42) | cy::shard(rank, world) | cy::batch(256)
            | cy::map("augment", augment)          // batch -> batch, typed
            | cy::parallel(2) | cy::prefetch(4);   // 2 workers, 4 batches ahead

  for (std::uint64_t epoch = 0; epoch < 3; ++epoch)
    for (auto& batch : pipe.epoch(epoch))
      train_step(batch.get<"x">());                // rows x 1024 floats, contiguous
  std::cout << pipe.stats();                       // per-stage throughput, waits, p50/p95/p99
  // clang-format on
  return total > 0 ? 0 : 1;
}
