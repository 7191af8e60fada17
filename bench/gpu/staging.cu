// GPU staging benchmarks, each printed as a ratio to a baseline measured in
// the same run:
//
// 1. staging: the pipeline `generate | batch | with_pool(pinned) | to_cuda |
//    cuda_sink` moving rows x 4 KiB batches to the device, vs a bare loop of
//    cudaMemcpyAsync from one pinned buffer of the same size on one stream
//    (the ceiling: no pool, no events, no pipeline). Goal: >= 0.9.
// 2. packed vs float32: DEA-shaped samples sent as float32 (1024 filter values
//    + 1036 label values, 8240 B per sample) vs sent compact (128 packed bytes
//    + 64 int32 label indices, 384 B) and expanded on the device by
//    gpu::unpack_bits and gpu::expand_multi_hot: samples/s of each and the ratio.
//
// Usage: gpu_staging_bench [batches=400] [rows=256]. Without a GPU (no driver,
// cudaGetDeviceCount fails) it prints "SKIPPED" and the reason, and exits 0.
#include <cuda_runtime.h>

#include <chrono>
#include <conveyor/conveyor.hpp>
#include <conveyor/exec/prefetch.hpp>
#include <conveyor/gpu/cuda_sink.hpp>
#include <conveyor/gpu/decode_kernels.cuh>
#include <conveyor/gpu/pinned_pool.hpp>
#include <conveyor/gpu/to_device.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>

namespace cy = conveyor;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point begin) {
  return std::chrono::duration<double>(clock_type::now() - begin).count();
}

// A source of two columns whose rows are left as the pool gives them: the
// benchmark measures staging, not filling or decoding.
template <class X, class Y>
class unfilled_source {
 public:
  using batch_type = cy::record_batch<X, Y>;
  unfilled_source(std::uint64_t records, std::size_t x_width, std::size_t y_width)
      : records_(records), x_width_(x_width), y_width_(y_width) {}
  [[nodiscard]] std::uint64_t size() const noexcept { return records_; }
  [[nodiscard]] std::string_view name() const noexcept { return "unfilled"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    out.template get<X::name>() =
        typename X::storage(ctx.pool_for(X::name.view()), indices.size(), x_width_);
    out.template get<Y::name>() =
        typename Y::storage(ctx.pool_for(Y::name.view()), indices.size(), y_width_);
    return out;
  }

 private:
  std::uint64_t records_;
  std::size_t x_width_, y_width_;
};

double bare_copies(std::size_t bytes, std::size_t batches) {
  void* host = nullptr;
  void* device = nullptr;
  cudaStream_t stream = nullptr;
  cy::check_cuda(cudaHostAlloc(&host, bytes, cudaHostAllocDefault), "cudaHostAlloc");
  cy::check_cuda(cudaMalloc(&device, bytes), "cudaMalloc");
  cy::check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cy::check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream),
                 "warm-up copy");
  cy::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  auto begin = clock_type::now();
  for (std::size_t b = 0; b < batches; ++b)
    cy::check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream),
                   "cudaMemcpyAsync");
  cy::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  const double seconds = seconds_since(begin);
  (void)cudaStreamDestroy(stream);
  (void)cudaFree(device);
  (void)cudaFreeHost(host);
  return static_cast<double>(bytes) * static_cast<double>(batches) / seconds;
}

double pipeline_staging(std::size_t rows, std::size_t batches) {
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe =
      cy::generate<cy::dense<"x", float>>(rows * batches, 1024, [](std::uint64_t, auto) {}) |
      cy::batch(rows) | cy::prefetch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 4) |
      cy::cuda_sink();
  for (auto& batch : pipe.epoch(0)) (void)batch;  // warm-up: fills the pools
  auto begin = clock_type::now();
  for (auto& batch : pipe.epoch(1)) (void)batch;
  cy::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const double seconds = seconds_since(begin);
  return static_cast<double>(rows * 1024 * sizeof(float)) * static_cast<double>(batches) / seconds;
}

double float32_samples(std::size_t rows, std::size_t batches) {
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe =
      unfilled_source<cy::dense<"x", float>, cy::dense<"y", float>>(rows * batches, 1024, 1036) |
      cy::batch(rows) | cy::prefetch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 4) |
      cy::cuda_sink();
  for (auto& batch : pipe.epoch(0)) (void)batch;
  auto begin = clock_type::now();
  for (auto& batch : pipe.epoch(1)) (void)batch;
  cy::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  return static_cast<double>(rows * batches) / seconds_since(begin);
}

double packed_samples(std::size_t rows, std::size_t batches) {
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe = unfilled_source<cy::dense<"x", std::uint8_t>, cy::dense<"y", std::int32_t>>(
                  rows * batches, 128, 64) |
              cy::batch(rows) | cy::prefetch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 4) |
              cy::cuda_sink();
  float* x = nullptr;
  float* y = nullptr;
  cy::check_cuda(cudaMalloc(&x, rows * 1024 * sizeof(float)), "cudaMalloc");
  cy::check_cuda(cudaMalloc(&y, rows * 1036 * sizeof(float)), "cudaMalloc");
  cy::check_cuda(cudaMemset(x, 0, rows * 1024 * sizeof(float)), "cudaMemset");
  auto run = [&](std::uint64_t epoch) {
    for (auto& batch : pipe.epoch(epoch)) {
      cy::gpu::unpack_bits(batch.data<"x">(), batch.rows(), 1024, x, cy::bit_order::big,
                           batch.stream());
      // The unfilled indices are arbitrary int32: the kernel only compares them.
      cy::gpu::expand_multi_hot(batch.data<"y">(), batch.rows(), 64, y, 1036, batch.stream());
    }
  };
  run(0);
  auto begin = clock_type::now();
  run(1);
  cy::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const double seconds = seconds_since(begin);
  (void)cudaFree(x);
  (void)cudaFree(y);
  return static_cast<double>(rows * batches) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t batches = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 400;
  const std::size_t rows = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 256;
  int devices = 0;
  const cudaError_t result = cudaGetDeviceCount(&devices);
  if (result != cudaSuccess || devices == 0) {
    std::printf("gpu_staging_bench: SKIPPED (no GPU: cudaGetDeviceCount: %s)\n",
                cudaGetErrorString(result));
    return 0;
  }
  cudaDeviceProp properties{};
  cy::check_cuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  std::printf("device 0: %s; %zu batches of %zu rows\n", properties.name, batches, rows);

  const std::size_t bytes = rows * 1024 * sizeof(float);
  const double bare = bare_copies(bytes, batches);
  const double staged = pipeline_staging(rows, batches);
  std::printf(
      "staging %zu KiB batches: pipeline %.2f GB/s, bare cudaMemcpyAsync %.2f GB/s, ratio %.3f "
      "(goal >= 0.9)\n",
      bytes / 1024, staged / 1e9, bare / 1e9, staged / bare);

  const double as_float = float32_samples(rows, batches);
  const double as_packed = packed_samples(rows, batches);
  std::printf(
      "DEA samples to the device: float32 %.0f samples/s (8240 B each), packed + device expansion "
      "%.0f "
      "samples/s (384 B each), ratio %.2f\n",
      as_float, as_packed, as_packed / as_float);
  return 0;
}
