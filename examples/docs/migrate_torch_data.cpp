// docs/migrating-from-torch-data.md: a torch::data::DataLoader loop and the
// same loop over a conveyor pipeline, side by side. Self-contained: the data
// is 1,000 records of 16 features and a label, in memory for torch::data and
// in two .npy files for conveyor.
#include <torch/torch.h>
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <conveyor/torch.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>

namespace cy = conveyor;

namespace {
// Before: a Dataset whose get(i) builds one example; Stack<> collates them.
struct TensorDataset : torch::data::datasets::Dataset<TensorDataset> {
  torch::Tensor x, y;
  TensorDataset(torch::Tensor features, torch::Tensor labels)
      : x(std::move(features)), y(std::move(labels)) {}
  torch::data::Example<> get(size_t i) override { return {x[i], y[i]}; }
  torch::optional<size_t> size() const override { return x.size(0); }
};

std::int64_t rows_seen = 0;
void train_step(const torch::Tensor& data, const torch::Tensor& target) {
  rows_seen += data.size(0);
  (void)target;
}
}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-migrate-torch-data-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  torch::Tensor x = torch::rand({1000, 16}), y = torch::randint(0, 2, {1000, 1}).to(torch::kFloat);
  const std::uint64_t x_shape[] = {1000, 16}, y_shape[] = {1000, 1};
  cy::write_npy(dir / "x.npy", cy::element_type::float32, x_shape,
                std::as_bytes(std::span(x.data_ptr<float>(), 1000 * 16)));
  cy::write_npy(dir / "y.npy", cy::element_type::float32, y_shape,
                std::as_bytes(std::span(y.data_ptr<float>(), 1000)));
  const int epochs = 2;

  // Laid out as docs/migrating-from-torch-data.md quotes it.
  // clang-format off
  {
    auto loader = torch::data::make_data_loader(            // RandomSampler by default
        TensorDataset(x, y).map(torch::data::transforms::Stack<>()),
        torch::data::DataLoaderOptions().batch_size(64).workers(2).drop_last(true));
    for (int epoch = 0; epoch < epochs; ++epoch)
      for (auto& batch : *loader) train_step(batch.data, batch.target);
  }
  {
    auto pipe = cy::npy_source<cy::dense<"x", float>, cy::dense<"y", float>>({dir / "x.npy", dir / "y.npy"})
              | cy::shuffle(/*seed=*/42)                 // RandomSampler, reproducible
              | cy::batch(64, /*drop_last=*/true)        // batch_size(64).drop_last(true)
              | cy::parallel(2)                          // workers(2)
              | cy::prefetch(2);                         // 2 batches ready ahead of the loop
    auto loader = cy::make_data_loader(pipe);            // ends it in to_torch()
    for (int epoch = 0; epoch < epochs; ++epoch)
      for (auto& batch : *loader) train_step(batch.data, batch.target);
  }
  // clang-format on
  std::filesystem::remove_all(dir);
  std::cout << rows_seen << " rows in " << 2 * epochs << " epochs\n";
  // 15 whole batches of 64 per epoch, from both loaders.
  return rows_seen == 2 * epochs * 15 * 64 ? 0 : 1;
}
