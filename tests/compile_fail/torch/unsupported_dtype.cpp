// A column of a value type LibTorch has no dtype for (uint32_t) before
// to_torch(): the first error says which types work, the note names the column.
// Registered by tests/torch/torch.cmake (it needs LibTorch's headers).
// first-error: conveyor: to_torch() has no LibTorch dtype for the value type of a column upstream delivers
// expect: check_torch_dtype<false, conveyor::dense<conveyor::fixed_string<4>{"ids"}, unsigned int>
// max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/torch.hpp>

namespace cy = conveyor;

int main() {
  auto pipe = cy::generate<cy::dense<"ids", std::uint32_t>>(10, 1, [](auto, auto) {}) | cy::batch(2) | cy::to_torch();
  (void)pipe;
}
