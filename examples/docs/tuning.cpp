// docs/tuning.md: parallel(autotune), prefetch(autotune) and memory_budget(bytes).
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

namespace cy = conveyor;
using x_batch = cy::record_batch<cy::dense<"x", float>>;

namespace {
auto records() {
  return cy::generate<cy::dense<"x", float>>(32'768, 64, [](std::uint64_t i, std::span<float> row) {
    for (auto& v : row) v = static_cast<float>(i);
  });
}
// Stands in for a read from object storage: 2 ms of waiting per batch, little CPU.
auto fetch = cy::map("fetch", [](x_batch&& b) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return std::move(b);
});
}  // namespace

int main() {
  auto pipe = records() | cy::shuffle(42) | cy::batch(32) | fetch
            | cy::parallel(cy::autotune) | cy::prefetch(cy::autotune)
            | cy::memory_budget(64ull << 20);   // batches in flight + caches + threads <= 64 MiB
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch)
    for (auto& batch : pipe.epoch(epoch)) (void)batch;
  std::cout << pipe.stats();                    // ends with "autotune: parallel workers N (reason)"
  for (const auto& stage : pipe.stats().stages)
    if (stage.tuning != cy::tuning_state::fixed)
      std::cout << stage.name << ": " << (stage.workers != 0 ? stage.workers : stage.queue_capacity) << " ("
                << cy::to_string(stage.tuning) << ")\n";

  // The same batches, in the same order, as any fixed setting.
  auto fixed = records() | cy::shuffle(42) | cy::batch(32) | fetch | cy::parallel(3) | cy::prefetch(2);
  auto a = pipe.epoch(5), b = fixed.epoch(5);
  auto ia = a.begin(), ib = b.begin();
  for (; ia != a.end() && ib != b.end(); ++ia, ++ib)
    if (ia->indices()[0] != ib->indices()[0]) return 1;

  // A budget smaller than one batch (32 rows x 64 floats + 32 indices: 8,448 bytes used, 8,480
  // as allocated, each buffer with the heap's 16-byte header):
  auto tiny = records() | cy::batch(32) | cy::parallel(cy::autotune) | cy::memory_budget(5'000);
  try {
    for (auto& batch : tiny.epoch(0)) (void)batch;
  } catch (const std::invalid_argument& e) {
    std::cout << e.what() << "\n";  // memory_budget(5000 bytes) is smaller than one batch: a batch measures 8480 bytes
    return std::string(e.what()).find("8480") == std::string::npos;
  }
  return 1;
}
