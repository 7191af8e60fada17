// docs/migrating-from-pytorch-dataloader.md: PyTorch DataLoader settings as a
// conveyor pipeline. Self-contained: it writes two small .npy files (features
// and labels), then reads them as one rank of two would.
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {
// x.npy: float32 (1000, 16); y.npy: float32 (1000, 1).
std::filesystem::path write_arrays() {
  auto dir = std::filesystem::temp_directory_path() /
             ("conveyor-migrate-pytorch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<float> x(1000 * 16), y(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 16);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i % 2);
  const std::uint64_t x_shape[] = {1000, 16}, y_shape[] = {1000, 1};
  cy::write_npy(dir / "x.npy", cy::element_type::float32, x_shape, std::as_bytes(std::span(x)));
  cy::write_npy(dir / "y.npy", cy::element_type::float32, y_shape, std::as_bytes(std::span(y)));
  return dir;
}
}  // namespace

int main() {
  const auto dir = write_arrays();
  const std::uint32_t rank = 1, world = 2;  // from your launcher (torchrun's RANK, WORLD_SIZE)
  const std::uint64_t epochs = 3;
  // Laid out as docs/migrating-from-pytorch-dataloader.md quotes it.
  // clang-format off
  auto pipe = cy::npy_source<cy::dense<"x", float>, cy::dense<"y", float>>({dir / "x.npy", dir / "y.npy"})
            | cy::shuffle(/*seed=*/0)                           // DistributedSampler(shuffle=True, seed=0)
            | cy::shard(rank, world, cy::shard_remainder::pad)  // DistributedSampler(num_replicas=world, rank=rank)
            | cy::batch(64, /*drop_last=*/true)                 // batch_size=64, drop_last=True
            | cy::parallel(4)                                   // num_workers=4 (threads; 2 batches each in flight)
            | cy::prefetch(8);                                  // prefetch_factor=2: 2 x 4 batches ready ahead

  for (std::uint64_t epoch = 0; epoch < epochs; ++epoch) {     // sampler.set_epoch(epoch): the argument below
    for (auto& batch : pipe.epoch(epoch)) {
      const auto& x = batch.get<"x">();                         // batch["x"]: 64 x 16 float32, contiguous
      const auto& y = batch.get<"y">();                         // 64 x 1
      // ...
      // clang-format on
      if (x.rows() != 64 || y.width() != 1) return 1;
    }
  }
  // The same (seed, epoch, rank, world) gives the same batches in any process.
  std::set<std::uint64_t> seen;
  for (auto& batch : pipe.epoch(0)) seen.insert(batch.indices().begin(), batch.indices().end());
  std::cout << "rank " << rank << " of " << world << ": " << seen.size() << " records per epoch, "
            << pipe.plan_of(0).batch_count() << " batches\n";
  std::filesystem::remove_all(dir);
  return seen.size() == 448 ? 0 : 1;  // 500 records, 7 whole batches of 64
}
