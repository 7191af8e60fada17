// docs/gpu.md: the compact DEA columns (1024 filter bits packed into 128
// bytes, up to 64 two-gram indices padded with -1) staged to the GPU from
// pinned memory by to_cuda, delivered by cuda_sink, and expanded there by
// gpu::unpack_bits and gpu::expand_multi_hot. Self-contained: 512 records of
// random packed bits and random index lists in two temporary .npy files. On a
// GPU it checks every expanded row against its record's bits and indices and
// exits 1 on a difference; without one it prints "skipped: no CUDA device"
// (ctest: skipped). Compiled by nvcc.
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <conveyor/gpu/decode_kernels.cuh>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

// Laid out as docs/gpu.md quotes it.
// clang-format off
#include <conveyor/conveyor.hpp>
#include <conveyor/exec/prefetch.hpp>
#include <conveyor/gpu/cuda_sink.hpp>     // link conveyor::cuda
#include <conveyor/gpu/pinned_pool.hpp>
namespace cy = conveyor;
// clang-format on

namespace {
constexpr std::size_t records_count = 512;
std::vector<std::uint8_t> packed(records_count * 128);  // each record's 1024 bits
std::vector<std::int32_t> indices(records_count * 64);  // each record's grams, -1 padded

void write_records(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937 random(7);
  for (auto& byte : packed) byte = static_cast<std::uint8_t>(random());
  for (std::size_t r = 0; r < records_count; ++r) {
    auto row = std::span(indices).subspan(r * 64, 64);
    std::fill(row.begin(), row.end(), cy::no_index);
    const std::size_t grams = 1 + random() % 64;
    for (std::size_t k = 0; k < grams; ++k) row[k] = static_cast<std::int32_t>(random() % 1036);
  }
  const std::uint64_t x_shape[] = {records_count, 128}, y_shape[] = {records_count, 64};
  cy::write_npy(dir / "x.npy", cy::element_type::uint8, x_shape, std::as_bytes(std::span(packed)));
  cy::write_npy(dir / "y.npy", cy::element_type::int32, y_shape, std::as_bytes(std::span(indices)));
}

bool ok = true;
std::uint64_t rows_checked = 0;
std::span<const std::uint64_t> records;  // the batch's record indices

// The "training step": copies the expanded rows back and checks them.
void train_step(const float* x_float, const float* y_float, cudaStream_t stream) {
  const std::size_t rows = records.size();
  std::vector<float> x(rows * 1024), y(rows * 1036);
  cy::check_cuda(cudaMemcpyAsync(x.data(), x_float, x.size() * 4, cudaMemcpyDeviceToHost, stream),
                 "copy x");
  cy::check_cuda(cudaMemcpyAsync(y.data(), y_float, y.size() * 4, cudaMemcpyDeviceToHost, stream),
                 "copy y");
  cy::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t record = records[r];
    for (std::size_t c = 0; c < 1024; ++c) {
      const bool bit = (packed[record * 128 + c / 8] >> (7 - c % 8)) & 1u;  // bit_order::big
      ok &= x[r * 1024 + c] == (bit ? 1.0f : 0.0f);
    }
    std::vector<float> expected(1036, 0.0f);
    for (std::size_t k = 0; k < 64; ++k)
      if (auto index = indices[record * 64 + k]; index >= 0)
        expected[static_cast<std::size_t>(index)] = 1.0f;
    ok &= std::equal(expected.begin(), expected.end(),
                     y.begin() + static_cast<std::ptrdiff_t>(r * 1036));
    ++rows_checked;
  }
}
}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  const auto dir =
      std::filesystem::temp_directory_path() / ("conveyor-docs-gpu-" + std::to_string(::getpid()));
  write_records(dir);
  float* x_float = nullptr;
  float* y_float = nullptr;
  cy::check_cuda(cudaMalloc(&x_float, 256 * 1024 * sizeof(float)), "cudaMalloc");
  cy::check_cuda(cudaMalloc(&y_float, 256 * 1036 * sizeof(float)), "cudaMalloc");
  {
    // clang-format off
    auto pinned = std::make_shared<cy::pinned_pool>(/*max_bytes=*/std::size_t{1} << 30);
    // "x": 1024 filter bits packed in 128 bytes; "y": 64 two-gram indices, -1 padded.
    auto pipe = cy::npy_source<cy::dense<"x", std::uint8_t>, cy::dense<"y", std::int32_t>>({dir / "x.npy", dir / "y.npy"})
              | cy::shuffle(42) | cy::batch(256)
              | cy::parallel(2) | cy::prefetch(4)
              | cy::with_pool(pinned)                 // delivered columns are allocated in pinned memory
              | cy::to_cuda(/*device=*/0, /*depth=*/3) // copies on its own stream, 3 batches ahead
              | cy::cuda_sink();                       // device pointers, ready event, stream
    for (std::uint64_t e = 0; e < 2; ++e)
    for (auto& batch : pipe.epoch(e)) {
      // or, as stages: | cy::to_cuda(0, 3) | cy::gpu::expand_bits<"x", float>(1024)
      //                 | cy::gpu::expand_labels<"y", float>(1036) | cy::cuda_sink()
      cy::gpu::unpack_bits(batch.data<"x">(), batch.rows(), 1024, x_float, cy::bit_order::big, batch.stream());
      cy::gpu::expand_multi_hot(batch.data<"y">(), batch.rows(), 64, y_float, 1036, batch.stream());
      records = batch.indices();
      train_step(x_float, y_float, batch.stream());
    }
    // clang-format on
  }
  (void)cudaFree(x_float);
  (void)cudaFree(y_float);
  std::filesystem::remove_all(dir);
  ok &= rows_checked == 2 * records_count;
  std::printf("gpu_pipeline: %llu rows checked, %s\n",
              static_cast<unsigned long long>(rows_checked), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
