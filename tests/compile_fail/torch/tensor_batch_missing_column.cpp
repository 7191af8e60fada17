// `batch[column<"z">]` on a tensor batch that has no column "z": the subscript
// takes any column_name_type (as record_batch's does, so nvcc 13.0 need not
// deduce column_name<Name>) and reports the missing name as get<"z">() does.
// Registered by tests/torch/torch.cmake (it needs LibTorch's headers).
// first-error: conveyor: the tensor batch has no column with this name
// expect: tensor_column_is_missing<conveyor::column_name<conveyor::fixed_string<2>{"z"}>
// max-lines: 30
#include <conveyor/conveyor.hpp>
#include <conveyor/torch.hpp>

namespace cy = conveyor;

int main() {
  auto pipe =
      cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}) | cy::batch(2) | cy::to_torch();
  for (auto& batch : pipe.epoch(0)) {
    torch::Tensor& x = batch[cy::column<"x">];  // a column it has: fine
    torch::Tensor& z = batch[cy::column<"z">];
    (void)x;
    (void)z;
  }
}
