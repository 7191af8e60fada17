// conveyor/torch/to_torch.hpp: to_torch(), the sink that delivers batches as
// torch::Tensors (see docs/torch.md).
//
// Call forms: `to_torch(pipe)`, `to_torch(pipe, device)`, `pipe | to_torch()`
// and `pipe | to_torch(torch::kCUDA)` (any torch::Device). It must be the last
// stage (placement must_be_last) and follows batch(n).
// Columns in: dense columns of float, double, conveyor::float16,
// conveyor::bfloat16, uint8_t, int8_t, int16_t, int32_t or int64_t, in host
// memory, or in device memory right after to_cuda/to_device (or a gpu::
// decoding stage after them); a bytes or text column or another value type is
// a compile error naming the column. Out: a tensor_batch (tensor_batch.hpp):
// one tensor {rows, width} per column, in column order, plus the int64 record
// indices {rows} on the CPU.
// Allocates: nothing but the tensors' small headers, for host columns on the
// CPU and for device columns: each tensor wraps the column's pooled buffer
// (from with_pool's pool when the pipeline names one, or the stager's device
// pool) and gives it back to the pool when the last tensor or view of it
// dies, so a tensor kept after the loop moves on stays valid and its memory is
// not reused meanwhile (a device buffer only after the work queued on the
// stager's consumer stream by then). Host columns with to_torch(torch::kCUDA)
// are copied to the device (Tensor::to, synchronous: the host buffer returns
// to its pool as soon as the copy is done) into LibTorch's caching allocator.
// Streams (device columns): before a batch is delivered, LibTorch's current
// stream waits on the batch's ready event (no host wait). LibTorch must work on
// the stager's consumer stream: with the default one, a current stream other
// than LibTorch's default is refused (std::logic_error in a stage_error).
// Thread: the consumer's, in the epoch loop's ++ (after prefetch(n), if any).
// Errors: to_torch(device) throws std::invalid_argument at once, when the
// pipeline is built, if the device is CUDA and CUDA is not available (no GPU,
// no driver, or a CPU-only LibTorch such as Debian's 1.13), the device index
// is past the last GPU, or upstream delivers device columns and the device is
// not CUDA; when an epoch starts, if the index differs from to_cuda's device.
// A LibTorch error while wrapping or copying reaches the consumer as a
// stage_error naming "to_torch" (the buffer it was wrapping goes back to its
// pool). Early exit: as every stage; tensors already delivered stay valid,
// and keep their pool (a device pool waits for its pending events before it
// frees anything) alive after the pipeline is destroyed.
#pragma once

#include <c10/core/impl/DeviceGuardImplInterface.h>
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

/// Does Batch hold a column in device memory (to_torch after to_cuda)?
template <class Batch>
inline constexpr bool has_device_columns =
    !std::is_void_v<typename first_device_column<Batch>::type>;

/// What to_torch needs of the device stager right before it (to_device /
/// to_cuda, or a device decoding stage after them): the batch's ready event
/// and the stager's options (device, consumer stream). Spelled without CUDA
/// types so that this header needs none.
template <class Up>
concept torch_device_upstream = requires(const Up& up) {
  up.ready_event().get();
  up.options().device;
  up.options().consumer_stream;
};

/// Does Stage's stream deliver a ready event and the stager's options
/// (to_device / to_cuda, gpu::expand_*)? False for void (no stage).
template <class Stage>
consteval bool stage_delivers_ready_event() {
  if constexpr (requires { Stage::delivers_ready_event; })
    return Stage::delivers_ready_event;
  else
    return false;
}

// READ THIS IF YOUR COMPILE BREAKS HERE: the pipeline delivers columns in
// device memory (Batch above), but not from the device stager right before
// to_torch.
template <bool Ok, class Batch>
struct check_torch_device_upstream {
  static_assert(Ok,
                "conveyor: to_torch(torch::kCUDA) takes device columns from to_device(...) or "
                "to_cuda(...) (or a gpu:: decoding stage after them); put it right after that "
                "stage.");
};

/// Orders LibTorch's current stream on `device` after a batch's ready event
/// (cudaStreamWaitEvent through c10's device-guard interface, so no CUDA
/// header is needed here). The device buffers go back to the stager's device
/// pool in stream order on the stager's consumer stream, so LibTorch must work
/// on that stream: with the default consumer stream (the legacy default
/// stream) a current stream of LibTorch's other than its default is refused
/// with std::logic_error naming the fix.
inline void torch_stream_wait(void* ready_event, int device, bool default_consumer_stream) {
  const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  const c10::Device on(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device));
  const c10::Stream current = impl->getStream(on);
  if (default_consumer_stream && current != impl->getDefaultStream(on))
    throw std::logic_error(
        "to_torch(cuda): LibTorch's current CUDA stream is not its default stream, but the "
        "device stager's consumer stream is the default one, so device buffers could be reused "
        "before LibTorch's work on them ends; pass device_options{.consumer_stream = "
        "at::cuda::getCurrentCUDAStream().stream()} to to_device(...)");
  impl->block(ready_event, current);
}

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
    auto out = run_stage("to_torch", info, [&] {
      if constexpr (has_device_columns<typename Up::batch_type>) {
        torch_stream_wait(static_cast<void*>(up.ready_event().get()), device.index(),
                          up.options().consumer_stream == nullptr);
      }
      return batch_type::from(std::move(*in), device);
    });
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
      .needs_batches = true, .host_only = false, .must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("to_torch(...)")
  template <class In>
  using output = tensor_batch<In>;
  torch::Device device = torch::kCPU;

  [[nodiscard]] std::string_view name() const noexcept { return "to_torch"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return hash_name("to_torch"); }

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    auto stream = as_stream(std::forward<Up>(up));
    using stream_type = decltype(stream);
    if constexpr (has_device_columns<typename stream_type::batch_type>) {
      (void)sizeof(check_torch_device_upstream<torch_device_upstream<stream_type>,
                                               typename stream_type::batch_type>);
      // The tensors are on the stager's GPU.
      const int on = stream.options().device;
      if (device.has_index() && device.index() != on)
        throw std::invalid_argument("to_torch(" + device.str() + "): the columns are on cuda:" +
                                    std::to_string(on) + " (to_cuda's device); use to_torch(" +
                                    "torch::Device(torch::kCUDA, " + std::to_string(on) + "))");
      return tensor_stream<stream_type>{
          std::move(stream), torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(on)),
          &env.counters_for("to_torch")};
    } else {
      return tensor_stream<stream_type>{std::move(stream), device, &env.counters_for("to_torch")};
    }
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
      using batch_type = typename P::batch_type;
      using last_stage = typename detail::last_stage_of<P>::type;
      if constexpr (!detail::check_torch_columns<batch_type>()) {
        return invalid_pipeline{};
      } else if constexpr (detail::has_device_columns<batch_type> &&
                           !detail::stage_delivers_ready_event<last_stage>()) {
        (void)sizeof(detail::check_torch_device_upstream<false, batch_type>);
        return invalid_pipeline{};
      } else {
        if (detail::has_device_columns<batch_type> && !device.is_cuda())
          throw std::invalid_argument(
              "to_torch(" + device.str() +
              "): upstream delivers columns in device memory (after to_cuda or to_device); use "
              "to_torch(torch::kCUDA), or to_torch() before moving columns to the GPU");
        return append_stage(std::move(p), detail::torch_stage{device});
      }
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
