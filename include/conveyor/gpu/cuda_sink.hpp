// conveyor/gpu/cuda_sink.hpp: cuda_sink(), the raw CUDA sink: each batch as
// device pointers per column, the event that says its copies are done, and
// the stream the stager made wait on it; any column as a DLPack tensor.
//
//   auto pipe = ... | cy::prefetch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 3) |
//   cy::cuda_sink(); for (auto& batch : pipe.epoch(e)) {
//     my_kernel<<<grid, block, 0, batch.stream()>>>(batch.data<"x">(), batch.data<"y">(),
//     batch.rows()); DLManagedTensor* x = batch.to_dlpack<"x">();   // or hand columns to a
//     framework
//   }
//
// Call forms: `cuda_sink(pipe)` and `pipe | cuda_sink()`; it must follow
// to_device/to_cuda directly and be the last stage (compile errors
// otherwise). Columns: those of the stager's batches, on the device.
// Allocates nothing. Thread: the consumer's. Streams: work queued on
// stream() after next() returned sees the batch's data (the stager queued the
// wait); work on another stream must first cudaStreamWaitEvent(s,
// ready_event()). Memory: a column's buffer goes back to the device pool when
// the batch (or a DLPack tensor taken from it) is destroyed, and is reused only
// after the work queued on stream() by then has completed. Errors and early
// exit: the stager's (gpu/to_device.hpp).
#pragma once

#include <cuda_runtime_api.h>
#include <dlpack/dlpack.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/gpu/dlpack.hpp"
#include "conveyor/gpu/to_device.hpp"

namespace conveyor {

/// A batch whose dense columns are on a GPU, with its ready event and stream.
template <class Batch>
class cuda_batch {
 public:
  /// Delivers its record_batch's columns (the pipeline allocates them from the
  /// sink's pool: with_pool(...)).
  using delivered_batch = Batch;

  cuda_batch(Batch batch, detail::shared_event ready, cudaStream_t stream, int device)
      : batch_(std::move(batch)), ready_(std::move(ready)), stream_(stream), device_(device) {}

  /// The device pointer of column `Name` (rows() x width values).
  template <fixed_string Name>
  [[nodiscard]] auto* data() noexcept {
    return batch_.template get<Name>().data();
  }
  /// Column `Name` (dense_column<T, memory_space::device>).
  template <fixed_string Name>
  [[nodiscard]] auto& get() noexcept {
    return batch_.template get<Name>();
  }
  /// Moves column `Name` into a DLPack tensor (kDLCUDA on device()); the
  /// column is left empty.
  template <fixed_string Name>
  [[nodiscard]] DLManagedTensor* to_dlpack() {
    return conveyor::to_dlpack(std::move(batch_.template get<Name>()), device_);
  }

  /// Completed when the batch's copies are; wait on it from other streams.
  [[nodiscard]] cudaEvent_t ready_event() const noexcept { return ready_.get(); }
  /// The consumer's stream, already ordered after ready_event().
  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] std::size_t rows() const noexcept { return batch_.rows(); }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return batch_.size_bytes(); }
  [[nodiscard]] const batch_info& info() const noexcept { return batch_.info(); }
  /// The source record index of each row (host memory).
  [[nodiscard]] std::span<const std::uint64_t> indices() const noexcept { return batch_.indices(); }
  [[nodiscard]] Batch& batch() noexcept { return batch_; }

 private:
  Batch batch_;
  detail::shared_event ready_;
  cudaStream_t stream_;
  int device_;
};

namespace detail {

template <class Up>
class cuda_sink_stream {
 public:
  using batch_type = cuda_batch<typename Up::batch_type>;
  cuda_sink_stream(Up up, stage_counters& counters) : up_(std::move(up)), counters_(&counters) {}

  void start(const epoch_plan& plan, std::uint64_t first) { up_.start(plan, first); }
  std::optional<batch_type> next() {
    auto batch = up_.next();
    if (!batch) return std::nullopt;
    counters_->add_batch(batch->rows(), batch->size_bytes(), std::chrono::nanoseconds(0));
    return batch_type(std::move(*batch), up_.ready_event(), up_.options().consumer_stream,
                      up_.options().device);
  }
  void stop() noexcept { up_.stop(); }

 private:
  Up up_;
  stage_counters* counters_;
};

template <class Up>
concept device_staging_stream = requires(const Up& up) {
  up.ready_event();
  up.options();
};

struct cuda_sink_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{
      .needs_batches = true, .host_only = false, .must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("cuda_sink()")
  [[nodiscard]] std::string_view name() const noexcept { return "cuda_sink"; }
  template <class In>
  using output = cuda_batch<In>;

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    static_assert(
        device_staging_stream<std::remove_cvref_t<Up>>,
        "conveyor: cuda_sink() takes its batches from to_device(...) or to_cuda(...); put it right "
        "after that stage.");
    return cuda_sink_stream<std::remove_cvref_t<Up>>(std::forward<Up>(up),
                                                     env.counters_for("cuda_sink"));
  }
};

}  // namespace detail

struct cuda_sink_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream) const {
    return append_stage(std::forward<Upstream>(upstream), detail::cuda_sink_stage{});
  }
  auto operator()() const { return bound_closure<cuda_sink_fn>(); }
};
/// cuda_sink(): see the top of this header.
inline constexpr cuda_sink_fn cuda_sink{};

}  // namespace conveyor
