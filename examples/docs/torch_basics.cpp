// docs/torch.md: a pipeline feeding LibTorch: to_torch(), structured
// bindings, a tensor kept past the loop, and the torch::data-style loader.
// Runs from the repository root on the DEA file when ../shared/data has it,
// else on generated records. Uses CUDA only when LibTorch says it is there.
#include <torch/torch.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <conveyor/torch.hpp>
#include <filesystem>
#include <iostream>

namespace cy = conveyor;

// A training step written against torch::data's loop, unchanged.
template <class Loader>
double train_epoch(Loader& loader, torch::nn::Linear& model, torch::optim::Optimizer& optimizer) {
  double loss_sum = 0;
  for (auto& batch : *loader) {
    optimizer.zero_grad();
    auto loss = torch::binary_cross_entropy_with_logits(model(batch.data), batch.target);
    loss.backward();
    optimizer.step();
    loss_sum += loss.item().toDouble();
  }
  return loss_sum;
}

int main() {
  std::filesystem::path path = "../shared/data/fakename_1k_bf_encoded.tsv";
  if (!std::filesystem::exists(path)) {
    std::cout << "no " << path << ", nothing to do\n";
    return 0;
  }
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;  // keep the data directory untouched
  auto pipe = cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256) |
              cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                         cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
              cy::parallel(2) | cy::prefetch(4);

  // 1. The sink: each column a tensor over the decoder's own buffer.
  auto tensors = pipe | cy::to_torch();
  torch::Tensor kept;
  for (auto&& [x, y] : tensors.epoch(0)) {  // x: {rows, 1024} float, y: {rows, 1036} float
    if (!kept.defined()) kept = y;          // stays valid after the loop moves on
  }
  std::cout << "kept labels " << kept.sizes() << ", " << kept.sum().item<float>() << " two-grams\n";
  for (auto& batch : tensors.epoch(1)) {
    const torch::Tensor& x = batch.get<"x">();              // by name
    const torch::Tensor& records = batch.indices_tensor();  // int64 {rows}
    if (x.size(0) != records.size(0)) return 1;
  }

  // 2. On the GPU when there is one (a copy per column per batch).
  if (torch::cuda::is_available()) {
    auto on_gpu = pipe | cy::to_torch(torch::kCUDA);
    for (auto&& [x, y] : on_gpu.epoch(0)) (void)x.sum().item<float>();
  }

  // 3. A torch::data-style loop: only the loader's line changes.
  //    auto loader = torch::data::make_data_loader(dataset.map(Stack<>()), options);
  auto loader = cy::make_data_loader(pipe);
  torch::nn::Linear model(1024, 1036);
  torch::optim::Adam optimizer(model->parameters(), 1e-3);
  for (int epoch = 0; epoch < 2; ++epoch) {
    double loss =
        train_epoch(loader, model, optimizer);  // each loop over *loader is the next epoch
    std::cout << "epoch " << loader->epoch() << " loss " << loss << "\n";
  }
  std::cout << loader->pipeline().stats();
}
