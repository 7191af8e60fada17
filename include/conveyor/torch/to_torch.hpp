// conveyor/torch/to_torch.hpp: to_torch(), the sink that delivers batches as
// torch::Tensors (see docs/torch.md).
//
// Call forms: `to_torch(pipe)`, `to_torch(pipe, device)`, `pipe | to_torch()`
// and `pipe | to_torch(torch::kCUDA)` (any torch::Device). It must be the last
// stage (placement must_be_last) and follows batch(n).
// Columns in: dense columns of float, double, conveyor::float16,
// conveyor::bfloat16, uint8_t, int8_t, int16_t, int32_t or int64_t in host
// memory; a bytes or text column, another value type or a device column is a
// compile error naming the column. Out: a tensor_batch (tensor_batch.hpp): one
// tensor {rows, width} per column, in column order, plus the int64 record
// indices {rows} on the CPU.
// Allocates: on the CPU nothing but the tensors' small headers: each tensor
// wraps the column's pooled buffer (from with_pool's pool when the pipeline
// names one) and gives it back to the pool when the last tensor or view of it
// dies, so a tensor kept after the loop moves on stays valid and its memory is
// not reused meanwhile. On CUDA each column is copied to the device
// (Tensor::to, synchronous: the host buffer returns to its pool as soon as the
// copy is done) into memory from LibTorch's caching allocator.
// Thread: the consumer's, in the epoch loop's ++ (after prefetch(n), if any).
// Errors: to_torch(device) throws std::invalid_argument at once, when the
// pipeline is built, if the device is CUDA and CUDA is not available (no GPU,
// no driver, or a CPU-only LibTorch such as Debian's 1.13) or the device index
// is past the last GPU; a LibTorch error while wrapping or copying reaches the
// consumer as a stage_error naming "to_torch". Early exit: as every stage;
// tensors already delivered stay valid.
#pragma once

#include <torch/cuda.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/core/stage.hpp"
#include "conveyor/torch/tensor_batch.hpp"

namespace conveyor {

namespace detail {

/// The sink as it runs in one epoch: upstream's batches become tensor batches.
template <batch_stream Up>
struct tensor_stream {
  using batch_type = tensor_batch<typename Up::batch_type>;
  Up up;
  torch::Device device;
  stage_counters* counters;

  void start(const epoch_plan& plan, std::uint64_t first) { up.start(plan, first); }
  std::optional<batch_type> next() {
    auto in = up.next();
    if (!in) return std::nullopt;
    const auto begin = clock::now();
    const batch_info info = in->info();
    auto out =
        run_stage("to_torch", info, [&] { return batch_type::from(std::move(*in), device); });
    counters->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
    return std::optional<batch_type>(std::move(out));
  }
  void stop() noexcept { up.stop(); }
};

/// Throws std::invalid_argument unless tensors can be made on `device`.
inline void check_torch_device(const torch::Device& device) {
  if (device.is_cpu()) return;
  if (!device.is_cuda())
    throw std::invalid_argument(
        "to_torch: device " + device.str() +
        " is not supported; use to_torch() for CPU tensors or to_torch(torch::kCUDA)");
  if (!torch::cuda::is_available())
    throw std::invalid_argument("to_torch(" + device.str() +
                                "): CUDA is not available (no GPU or driver, or a CPU-only "
                                "LibTorch); use to_torch() for CPU tensors");
  // device_count() is size_t in LibTorch 1.13 and DeviceIndex in 2.x.
  if (device.has_index() &&
      static_cast<long long>(device.index()) >= static_cast<long long>(torch::cuda::device_count()))
    throw std::invalid_argument("to_torch(" + device.str() + "): there are only " +
                                std::to_string(torch::cuda::device_count()) + " CUDA devices");
}

struct torch_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{
      .needs_batches = true, .host_only = true, .must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("to_torch(...)")
  template <class In>
  using output = tensor_batch<In>;
  torch::Device device = torch::kCPU;

  [[nodiscard]] std::string_view name() const noexcept { return "to_torch"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("to_torch"); }

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    auto stream = as_stream(std::forward<Up>(up));
    return tensor_stream<decltype(stream)>{std::move(stream), device,
                                           &env.counters_for("to_torch")};
  }
};

}  // namespace detail

struct to_torch_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, torch::Device device = torch::kCPU) const {
    detail::check_torch_device(device);
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    using P = decltype(p);
    if constexpr (!std::same_as<P, invalid_pipeline> && P::batched && !P::sealed) {
      if constexpr (!detail::check_torch_columns<typename P::batch_type>())
        return invalid_pipeline{};
      else
        return append_stage(std::move(p), detail::torch_stage{device});
    } else {
      return append_stage(std::move(p), detail::torch_stage{device});
    }
  }
  auto operator()(torch::Device device = torch::kCPU) const {
    detail::check_torch_device(device);
    return bound_closure<to_torch_fn, torch::Device>(device);
  }
};
/// to_torch() / to_torch(device): see the top of this header.
inline constexpr to_torch_fn to_torch{};

}  // namespace conveyor
