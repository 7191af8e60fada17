// conveyor/gpu/to_device.hpp: to_device(options) / to_cuda(device, depth), the
// device stager: copies each batch's dense columns to a GPU on its own stream,
// `depth` batches ahead of the consumer.
//
// Call forms: `to_cuda(pipe, device, depth)`, `pipe | to_cuda(device, depth)`,
// `pipe | to_device()` and `pipe | to_device(device_options{...})`.
// Columns: every dense<"x", T> becomes dense<"x", T, memory_space::device>
// with the same name, width and dtype (device columns pass through); bytes and
// text columns are a compile error (decode them first). The index column and
// batch info stay on the host. A host stage (map, decode, cache) after it is
// a compile error naming that stage.
// Memory: device buffers from a device_pool (cudaMalloc, size classes, shared
// by copies of the stage and across epochs), or from options.device_memory;
// a host buffer goes back to its pool with release_after(copy stream) when
// that pool is stream-ordered (a pinned_pool given to with_pool(...)), so it
// is reused only after its copy completed; pageable buffers go back as soon as
// cudaMemcpyAsync returns (it has read them by then). At most depth + 1
// batches are on the device besides those the consumer holds.
// Thread and streams: it runs on the consumer's thread (decision: it only
// issues asynchronous calls, so it needs no thread of its own; put it after
// prefetch(n) so decoding runs ahead on the prefetch thread). Copies run on a
// non-blocking stream of its own (cudaMemcpyAsync), each batch records a ready
// event, and before a batch is delivered the consumer's stream
// (options.consumer_stream, default the legacy default stream) waits on that
// event with cudaStreamWaitEvent: the host thread never waits for a copy.
// Errors: building the stage checks the device (cudaGetDeviceCount,
// cudaSetDevice) and throws cuda_error naming the call and the runtime's
// message (on a machine without a GPU or driver: "cudaGetDeviceCount failed:
// CUDA driver version is insufficient..."); a failed copy or cudaMalloc (device
// out of memory) reaches the consumer as a stage_error naming to_device,
// after the batches staged before it; an allocation's error names the column
// and the bytes ("cudaMalloc(1048576 bytes on device 0) for column "x" (256 x
// 1024 x 4 = 1048576 bytes) failed: out of memory (cudaErrorMemoryAllocation)"). Early exit:
// stopping the epoch (break, exception, destroying the range) synchronizes the copy stream before
// any staged batch or host buffer is released, so nothing is freed or reused while a copy may still
// read or write it.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/gpu/cuda_error.hpp"
#include "conveyor/gpu/device_pool.hpp"
#include "conveyor/gpu/nvtx.hpp"
#include "conveyor/gpu/stream_ordered_pool.hpp"

namespace conveyor {

/// How to_device stages batches.
struct device_options {
  /// The GPU the columns go to.
  int device = 0;
  /// Batches whose copies are queued ahead of the consumer.
  std::size_t depth = 2;
  /// Waits on each batch's ready event; null: the legacy default stream.
  cudaStream_t consumer_stream = nullptr;
  /// The bound of the device pool.
  std::size_t max_device_bytes = std::numeric_limits<std::size_t>::max();
  /// Where device columns come from instead of a device_pool of the stage's
  /// own (a framework's caching allocator behind the buffer_pool interface,
  /// say). Its space() must be device; it must not reuse a released buffer
  /// before the work queued on consumer_stream has completed.
  std::shared_ptr<buffer_pool> device_memory = nullptr;
};

namespace detail {

template <class Column>
struct column_on_device {
  // READ THIS IF YOUR COMPILE BREAKS HERE: Column above is not a dense column.
  static_assert(
      dependent_false<Column>,
      "conveyor: to_device(...) copies dense columns only, and upstream delivers a bytes or text "
      "column "
      "(Column above); decode it into a dense column, or drop it with a map, before to_device.");
  using type = Column;
};
// Matched by the column's storage rather than as dense<Name, T, Space>: nvcc
// 13 does not deduce the fixed_string of a partial specialization.
template <class Column>
requires std::is_same_v<typename Column::storage,
                        dense_column<typename Column::value_type, Column::space>>
struct column_on_device<Column> {
  using type = dense<Column::name, typename Column::value_type, memory_space::device>;
};

template <class Batch>
struct batch_on_device;
template <class... Columns>
struct batch_on_device<record_batch<Columns...>> {
  using type = record_batch<typename column_on_device<Columns>::type...>;
};

/// A non-blocking CUDA stream owned by one epoch run; synchronized before it
/// is destroyed.
class owned_stream {
 public:
  owned_stream() = default;
  explicit owned_stream(int device) {
    device_scope on(device);
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
               "cudaStreamCreateWithFlags");
  }
  owned_stream(owned_stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  owned_stream& operator=(owned_stream&& other) noexcept {
    if (this != &other) {
      reset();
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  ~owned_stream() { reset(); }
  void reset() noexcept {
    if (stream_ == nullptr) return;
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
    (void)cudaGetLastError();
    stream_ = nullptr;
  }
  [[nodiscard]] cudaStream_t get() const noexcept { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// A batch's ready event, shared by the stager and whoever holds the batch.
using shared_event = std::shared_ptr<CUevent_st>;
inline shared_event make_event() {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return {event, [](cudaEvent_t e) { (void)cudaEventDestroy(e); }};
}

/// Checks that `device` exists and can be used; throws cuda_error otherwise.
inline void check_device(int device) {
  int count = 0;
  check_cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (device < 0 || device >= count)
    throw cuda_error(
        "cudaSetDevice(" + std::to_string(device) + ") [" + std::to_string(count) + " devices]",
        cudaErrorInvalidDevice);
  check_cuda(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
}

/// A device column of rows x width values of T from `pool`. When the memory
/// cannot be had (cudaMalloc failing: the device is out of memory; or the
/// pool's byte bound), the error names the column and the bytes asked for.
template <class T>
dense_column<T, memory_space::device> allocate_device_column(
    const std::shared_ptr<buffer_pool>& pool, std::string_view column, std::size_t rows,
    std::size_t width) {
  const auto where = [&] {
    return " for column \"" + std::string(column) + "\" (" + std::to_string(rows) + " x " +
           std::to_string(width) + " x " + std::to_string(sizeof(T)) + " = " +
           std::to_string(rows * width * sizeof(T)) + " bytes)";
  };
  try {
    return dense_column<T, memory_space::device>(pool, rows, width);
  } catch (const cuda_error& error) {
    throw cuda_error(error.call() + where(), error.code());
  } catch (const pool_exhausted& error) {
    throw pool_exhausted(error.what() + where());
  }
}

template <batch_stream Up>
class device_stager_stream {
 public:
  using host_batch = typename Up::batch_type;
  using batch_type = typename batch_on_device<host_batch>::type;

  device_stager_stream(Up up, device_options options, std::shared_ptr<buffer_pool> pool,
                       stage_counters& counters)
      : up_(std::move(up)), options_(options), pool_(std::move(pool)), counters_(&counters) {
    counters.queue_capacity.store(options.depth, std::memory_order_relaxed);
  }
  device_stager_stream(device_stager_stream&&) noexcept = default;
  ~device_stager_stream() { stop(); }

  void start(const epoch_plan& plan, std::uint64_t first) {
    up_.start(plan, first);
    started_ = true;
    stream_ = owned_stream(options_.device);
    while (staged_.size() < options_.depth && stage_next()) {
    }
  }

  std::optional<batch_type> next() {
    counters_->sample_queue(staged_.size());
    if (staged_.empty()) {
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return std::nullopt;
    }
    staged slot = std::move(staged_.front());
    staged_.pop_front();
    nvtx_range range("to_device: deliver", slot.batch.info().number);
    auto begin = clock::now();
    run_stage("to_device", slot.batch.info(), [&] {
      device_scope on(options_.device);
      check_cuda(cudaStreamWaitEvent(options_.consumer_stream, slot.ready.get(), 0),
                 "cudaStreamWaitEvent");
    });
    ready_ = std::move(slot.ready);
    stage_next();  // keep `depth` batches in flight while the consumer works on this one
    counters_->add_batch(slot.batch.rows(), slot.batch.size_bytes(),
                         slot.busy + (clock::now() - begin));
    return std::optional<batch_type>(std::move(slot.batch));
  }

  void stop() noexcept {
    if (!started_) return;
    started_ = false;
    up_.stop();
    stream_.reset();  // synchronizes: every copy has finished before its buffers go back
    staged_.clear();
  }

  /// The ready event of the batch next() returned last (the raw CUDA sink's).
  [[nodiscard]] const shared_event& ready_event() const noexcept { return ready_; }
  [[nodiscard]] const device_options& options() const noexcept { return options_; }
  /// The device pool its columns come from (device stages after it allocate there too).
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept { return pool_; }

 private:
  struct staged {
    batch_type batch;
    shared_event ready;
    std::chrono::nanoseconds busy{0};  // issuing its copies, on this thread
  };

  // Pulls one host batch and queues its copies; false at the end or after an error.
  bool stage_next() noexcept {
    if (error_ || finished_) return false;
    try {
      auto host = up_.next();
      if (!host) {
        finished_ = true;
        return false;
      }
      nvtx_range range("to_device: copy", host->info().number);
      trace_span span(counters_->trace, span_kind::call, host->info().epoch, host->info().number);
      auto begin = clock::now();
      staged_.push_back(
          run_stage("to_device", host->info(), [&] { return stage(std::move(*host)); }));
      staged_.back().busy = clock::now() - begin;
      return true;
    } catch (...) {
      error_ = std::current_exception();
      return false;
    }
  }

  // Allocates every device column first (cudaMalloc may fail: no copy is
  // queued yet), then queues the copies; if one fails, waits for those queued
  // before any buffer is released.
  staged stage(host_batch&& host) {
    device_scope on(options_.device);
    batch_type out(std::move(host).take_rows());  // leaves host's columns in place
    auto& from = host.columns();
    auto& to = out.columns();
    constexpr auto columns =
        std::make_index_sequence<std::tuple_size_v<std::remove_reference_t<decltype(from)>>>{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (allocate(column_names<host_batch>::span[I], std::get<I>(from), std::get<I>(to)), ...);
    }
    (columns);
    shared_event ready;
    try {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (copy(std::get<I>(from), std::get<I>(to)), ...);
      }
      (columns);
      ready = make_event();
      check_cuda(cudaEventRecord(ready.get(), stream_.get()), "cudaEventRecord");
    } catch (...) {
      (void)cudaStreamSynchronize(stream_.get());
      throw;
    }
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (give_back(std::get<I>(from)), ...);
    }
    (columns);
    return {std::move(out), std::move(ready), {}};
  }

  template <class T, memory_space Space>
  void allocate(std::string_view name, dense_column<T, Space>& in,
                dense_column<T, memory_space::device>& out) {
    if constexpr (Space == memory_space::device) {
      out = std::move(in);
    } else {
      out = allocate_device_column<T>(pool_, name, in.rows(), in.width());
    }
  }
  template <class T, memory_space Space>
  void copy(const dense_column<T, Space>& in, dense_column<T, memory_space::device>& out) {
    if constexpr (Space != memory_space::device) {
      if (in.size_bytes() == 0) return;
      check_cuda(cudaMemcpyAsync(out.data(), in.data(), in.size_bytes(), cudaMemcpyHostToDevice,
                                 stream_.get()),
                 "cudaMemcpyAsync(" + std::to_string(in.size_bytes()) + " bytes to device " +
                     std::to_string(options_.device) + ")");
    }
  }
  // The host buffer goes back once its copy has completed (see the top).
  template <class T, memory_space Space>
  void give_back(dense_column<T, Space>& in) noexcept {
    if constexpr (Space != memory_space::device)
      release_after_stream(std::move(in).take_buffer(), stream_.get());
  }

  Up up_;
  device_options options_;
  std::shared_ptr<buffer_pool> pool_;
  stage_counters* counters_;
  owned_stream stream_;
  std::deque<staged> staged_;
  shared_event ready_;
  std::exception_ptr error_;
  bool started_ = false;
  bool finished_ = false;
};

struct to_device_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{.needs_batches = true, .host_only = false};
  /// Its batches come with a ready event and the stager's options (what
  /// cuda_sink and to_torch(torch::kCUDA) read).
  static constexpr bool delivers_ready_event = true;
  CONVEYOR_STAGE_MESSAGES("to_device(...)")
  device_options options;
  std::shared_ptr<buffer_pool> pool;

  [[nodiscard]] std::string_view name() const noexcept { return "to_device"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return combine(hash_name("to_device"), static_cast<std::uint64_t>(options.device));
  }
  template <class In>
  using output = typename batch_on_device<In>::type;

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    auto stream = as_stream(std::forward<Up>(up));
    return device_stager_stream<decltype(stream)>(std::move(stream), options, pool,
                                                  env.counters_for("to_device"));
  }
};

inline to_device_stage make_to_device_stage(const device_options& options) {
  if (options.depth == 0) throw std::invalid_argument("to_device: depth must be at least 1");
  check_device(options.device);
  if (options.device_memory) {
    if (options.device_memory->space() != memory_space::device)
      throw std::invalid_argument(std::string("to_device: device_memory hands out ") +
                                  to_string(options.device_memory->space()) +
                                  " memory; it must be a pool of device memory");
    return {options, options.device_memory};
  }
  return {options, std::make_shared<device_pool>(options.device, options.consumer_stream,
                                                 options.max_device_bytes)};
}

}  // namespace detail

struct to_device_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, const device_options& options = {}) const {
    return append_stage(std::forward<Upstream>(upstream), detail::make_to_device_stage(options));
  }
  auto operator()(const device_options& options = {}) const {
    return bound_closure<to_device_fn, device_options>(options);
  }
};
/// to_device(options): see the top of this header.
inline constexpr to_device_fn to_device{};

struct to_cuda_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, int device = 0, std::size_t depth = 2) const {
    return to_device(std::forward<Upstream>(upstream),
                     device_options{.device = device, .depth = depth});
  }
  auto operator()(int device = 0, std::size_t depth = 2) const {
    return bound_closure<to_cuda_fn, int, std::size_t>(device, depth);
  }
};
/// to_cuda(device, depth): to_device with those two options.
inline constexpr to_cuda_fn to_cuda{};

}  // namespace conveyor
