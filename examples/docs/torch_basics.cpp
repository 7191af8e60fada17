// docs/torch.md: a pipeline feeding LibTorch: to_torch() and structured
// bindings, a tensor_batch's accessors, a tensor kept past the loop, and a
// torch::data loop that takes a pipeline by changing its loader's line.
// Self-contained: 512 DEA-like records (names, a birthday, a 1024-bit filter)
// written to a temporary TSV. Checks shapes, dtypes, row counts and that every
// loader sees the same data; exits 1 otherwise. Uses CUDA only when LibTorch
// says it is there.
#include <torch/torch.h>
#include <unistd.h>

// Laid out as docs/torch.md quotes it.
// clang-format off
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <conveyor/torch.hpp>      // link conveyor::torch
namespace cy = conveyor;
// clang-format on

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "dea_like_records.hpp"

namespace {
bool ok = true;
void check(bool condition, const char* what) {
  if (!condition) {
    std::printf("FAILED: %s\n", what);
    ok = false;
  }
}

// What a training step sees: counts rows and adds up the filter bits, so that
// the loaders below can be compared.
std::int64_t rows_seen = 0;
double x_sum = 0;
void train_step(const torch::Tensor& x, const torch::Tensor& y) {
  check(x.dim() == 2 && x.size(1) == 1024 && x.scalar_type() == torch::kFloat,
        "x: {rows, 1024} float");
  check(y.dim() == 2 && y.size(1) == 1036 && y.scalar_type() == torch::kFloat,
        "y: {rows, 1036} float");
  check(x.size(0) == y.size(0), "x and y: as many rows");
  rows_seen += x.size(0);
  x_sum += x.sum().item<double>();
}

// LibTorch's own dataset over the same records, for the torch::data loop.
struct TensorDataset : torch::data::datasets::Dataset<TensorDataset> {
  torch::Tensor x, y;
  TensorDataset(torch::Tensor features, torch::Tensor labels)
      : x(std::move(features)), y(std::move(labels)) {}
  torch::data::Example<> get(size_t i) override {
    return {x[static_cast<std::int64_t>(i)], y[static_cast<std::int64_t>(i)]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x.size(0)); }
};

}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-docs-torch-" + std::to_string(::getpid()));
  const auto path = docs_example::write_records(dir, 512);
  const std::int64_t records = 512;

  // 1. The sink: each column a tensor over the decoder's own buffer.
  // clang-format off
  auto pipe = cy::tsv_file(path) | cy::shuffle(42) | cy::batch(256)
            | cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                         cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">)
            | cy::parallel(2) | cy::prefetch(4)
            | cy::to_torch();                       // or cy::to_torch(torch::kCUDA)
  for (int epoch = 0; epoch < 20; ++epoch)
    for (auto&& [x, y] : pipe.epoch(epoch))        // x: {256, 1024} float, y: {256, 1036} float
      train_step(x, y);
  // clang-format on
  check(rows_seen == 20 * records, "to_torch: 20 epochs of every record");
  const double epoch_sum = x_sum / 20;

  // 2. A tensor_batch: by position, by name, at run time; a kept tensor.
  const std::uint64_t e = 1;
  torch::Tensor kept, all_x = torch::zeros({records, 1024}), all_y = torch::zeros({records, 1036});
  // clang-format off
  for (auto& batch : pipe.epoch(e)) {
    auto&& [x, y] = batch;                           // column order
    torch::Tensor& x1 = batch.get<"x">();            // by name: a wrong name is a compile error
    torch::Tensor& x2 = batch[cy::column<"x">];
    const torch::Tensor& x3 = batch.at("x");         // by name at run time: std::out_of_range
    torch::Tensor& x4 = batch.get<0>();              // by position
    // also batch.rows(), info(), epoch(), number(), names(), indices_tensor()
    // (int64 {rows}), indices() (std::span<const std::uint64_t>), tensors()
    // (std::array<torch::Tensor, N>)
    // clang-format on
    check(x1.data_ptr() == x.data_ptr() && x2.data_ptr() == x.data_ptr() &&
              x3.data_ptr() == x.data_ptr() && x4.data_ptr() == x.data_ptr() &&
              batch.tensors()[1].data_ptr() == y.data_ptr(),
          "get<\"x\">, [column<\"x\">], at(\"x\"), get<0>: the same tensor");
    check(batch.rows() == 256 && batch.epoch() == e && batch.info().epoch == e &&
              batch.number() < 2 && batch.names()[0] == "x" && batch.names()[1] == "y",
          "rows, epoch, info, number, names");
    const torch::Tensor& rows = batch.indices_tensor();
    check(rows.scalar_type() == torch::kLong && rows.size(0) == x.size(0) &&
              batch.indices().size() == 256 &&
              static_cast<std::uint64_t>(rows[0].item<std::int64_t>()) == batch.indices()[0],
          "indices_tensor and indices: the record of each row");
    bool threw = false;
    try {
      (void)batch.at("z");
    } catch (const std::out_of_range&) {
      threw = true;
    }
    check(threw, "at(\"z\"): std::out_of_range");
    all_x.index_copy_(0, rows, x);
    all_y.index_copy_(0, rows, y);
    if (!kept.defined()) kept = y;  // stays valid after the loop moves on
  }
  check(kept.defined() && kept.size(0) == 256 && kept.sum().item<float>() > 0,
        "a kept tensor stays valid");
  check(all_x.sum().item<double>() == epoch_sum, "every record once per epoch");

  // 3. On the GPU when there is one (a copy per column per batch).
  if (torch::cuda::is_available()) {
    auto on_gpu =
        cy::tsv_file(path) | cy::batch(256) |
        cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                   cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
        cy::to_torch(torch::kCUDA);
    for (auto&& [x, y] : on_gpu.epoch(0))
      check(x.is_cuda() && y.is_cuda(), "to_torch(kCUDA): CUDA tensors");
  }

  // 4. A torch::data loop, then the same loop over the pipeline: only the
  //    loader's line changes. Both see every record once per epoch.
  auto dataset = TensorDataset(all_x, all_y);
  rows_seen = 0;
  x_sum = 0;
  {
    // clang-format off
    auto loader = torch::data::make_data_loader(
        dataset.map(torch::data::transforms::Stack<>()),
        torch::data::DataLoaderOptions().batch_size(256).workers(2));
    for (int epoch = 0; epoch < 20; ++epoch)
      for (auto& batch : *loader) train_step(batch.data, batch.target);
    // clang-format on
  }
  check(rows_seen == 20 * records && x_sum == 20 * epoch_sum, "torch::data: the same records");
  rows_seen = 0;
  x_sum = 0;
  {
    // clang-format off
    auto loader = cy::make_data_loader(pipe);   // pipe: two columns, data then target
    for (int epoch = 0; epoch < 20; ++epoch)
      for (auto& batch : *loader) train_step(batch.data, batch.target);
    // clang-format on
    check(loader->epoch() == 19, "make_data_loader: each loop over *loader is the next epoch");
  }
  check(rows_seen == 20 * records && x_sum == 20 * epoch_sum, "make_data_loader: the same records");

  std::filesystem::remove_all(dir);
  std::printf("torch_basics: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
