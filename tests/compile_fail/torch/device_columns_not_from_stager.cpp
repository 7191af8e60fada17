// Device columns that do not come straight from to_cuda/to_device (here a
// user source declares them) before to_torch(torch::kCUDA): the sink needs the
// stager's ready event and stream, and the error says where to put it.
// first-error: conveyor: to_torch(torch::kCUDA) takes device columns from to_device(...) or
// to_cuda(...) max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/torch.hpp>

namespace cy = conveyor;

struct device_x {
  using batch_type = cy::record_batch<cy::dense<"x", float, cy::memory_space::device>>;
  std::uint64_t size() const noexcept { return 4; }
  std::string_view name() const noexcept { return "device_x"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    return batch_type(ctx.pool, ctx.info, indices);
  }
};

int main() {
  auto pipe = device_x{} | cy::batch(2) | cy::to_torch(torch::kCUDA);
  (void)pipe;
}
