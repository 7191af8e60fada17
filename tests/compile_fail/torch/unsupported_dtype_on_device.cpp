// A device column (what to_cuda delivers) of a value type LibTorch has no
// dtype for, before to_torch(torch::kCUDA): the same error as on the host,
// naming the column. A user source declares the device column, so that the
// case needs no CUDA header.
// first-error: conveyor: to_torch() has no LibTorch dtype for the value type of a column upstream
// delivers expect: check_torch_dtype<false, conveyor::dense<conveyor::fixed_string<4>{"ids"},
// unsigned int, conveyor::memory_space::device> max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/torch.hpp>

namespace cy = conveyor;

struct device_ids {
  using batch_type = cy::record_batch<cy::dense<"ids", std::uint32_t, cy::memory_space::device>>;
  std::uint64_t size() const noexcept { return 4; }
  std::string_view name() const noexcept { return "device_ids"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    return batch_type(ctx.pool, ctx.info, indices);
  }
};

int main() {
  auto pipe = device_ids{} | cy::batch(2) | cy::to_torch(torch::kCUDA);
  (void)pipe;
}
