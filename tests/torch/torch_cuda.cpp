// to_torch(torch::kCUDA) after to_cuda: device columns become CUDA tensors
// without a copy (g++, LibTorch and the CUDA runtime's headers). Here (no GPU,
// CPU-only LibTorch) the types, the refusals without a GPU, and the buffer's
// return when LibTorch refuses to wrap device memory run; the cases that need a
// GPU and a CUDA LibTorch print SKIPPED and return.
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/gpu/to_device.hpp>
#include <conveyor/torch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/counting_pool.hpp"

namespace cy = conveyor;

namespace {

/// Records 0..count-1; x(r, c) = 10 r + c (float), y(r, 0) = r (int64).
struct xy_source {
  using batch_type = cy::record_batch<cy::dense<"x", float>, cy::dense<"y", std::int64_t>>;
  std::uint64_t count = 64;
  std::uint64_t size() const noexcept { return count; }
  std::string_view name() const noexcept { return "xy"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    cy::dense_column<float> x(ctx.pool_for("x"), indices.size(), 3);
    cy::dense_column<std::int64_t> y(ctx.pool_for("y"), indices.size(), 1);
    for (std::size_t r = 0; r < indices.size(); ++r) {
      for (std::size_t c = 0; c < 3; ++c) x(r, c) = static_cast<float>(10 * indices[r] + c);
      y(r, 0) = static_cast<std::int64_t>(indices[r]);
    }
    out.get<"x">() = std::move(x);
    out.get<"y">() = std::move(y);
    return out;
  }
};

using device_xy = cy::record_batch<cy::dense<"x", float, cy::memory_space::device>,
                                   cy::dense<"y", std::int64_t, cy::memory_space::device>>;

/// A batch with a device column, as a device stager delivers it: the wrap
/// test below builds one by hand over a fake device pool.
using device_x_batch = cy::record_batch<cy::dense<"x", float, cy::memory_space::device>>;

/// Host memory that says it is device memory: what a device column's pool
/// looks like to LibTorch's from_blob, without a GPU.
struct fake_device_pool final : cy::buffer_pool {
  static constexpr cy::memory_space static_space = cy::memory_space::device;
  cy::test::counting_pool host;
  void* acquire(std::size_t bytes, std::size_t& capacity) override {
    return host.acquire(bytes, capacity);
  }
  void release(void* memory, std::size_t capacity) noexcept override {
    host.release(memory, capacity);
  }
  [[nodiscard]] cy::memory_space space() const noexcept override { return static_space; }
};

bool gpu_skipped(const char* what) {
  int count = 0;
  const cudaError_t result = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  if (result == cudaSuccess && count > 0 && torch::cuda::is_available()) return false;
  MESSAGE("SKIPPED (no GPU with a CUDA LibTorch: cudaGetDeviceCount: "
          << std::string(cudaGetErrorString(result)) << ", torch::cuda::is_available: "
          << torch::cuda::is_available() << "): " << std::string(what));
  return true;
}

auto make_cuda_pipeline(std::uint64_t count = 64) {
  return xy_source{count} | cy::batch(8) | cy::prefetch(2) | cy::to_cuda(0, 2) |
         cy::to_torch(torch::kCUDA);
}

void check_batch(const cy::tensor_batch<device_xy>& batch) {
  const auto& x = batch.get<"x">();
  const auto& y = batch.get<"y">();
  REQUIRE(x.is_cuda());
  REQUIRE(y.is_cuda());
  CHECK(x.scalar_type() == torch::kFloat);
  CHECK(y.scalar_type() == torch::kLong);
  REQUIRE(x.size(1) == 3);
  CHECK(batch.indices_tensor().is_cpu());
  auto hx = x.to(torch::kCPU);
  auto hy = y.to(torch::kCPU);
  for (std::size_t r = 0; r < batch.rows(); ++r) {
    const auto record = batch.indices()[r];
    CHECK(hy[static_cast<std::int64_t>(r)][0].item<std::int64_t>() ==
          static_cast<std::int64_t>(record));
    for (std::int64_t c = 0; c < 3; ++c)
      CHECK(hx[static_cast<std::int64_t>(r)][c].item<float>() ==
            static_cast<float>(10 * record + c));
  }
}

}  // namespace

TEST_CASE("to_cuda | to_torch(torch::kCUDA): tensor batches of the device columns, by type") {
  using P = decltype(make_cuda_pipeline());
  static_assert(std::is_same_v<typename P::batch_type, cy::tensor_batch<device_xy>>);
  static_assert(cy::detail::has_device_columns<device_xy>);
  static_assert(!cy::detail::has_device_columns<xy_source::batch_type>);
}

TEST_CASE("to_torch() for CPU tensors after to_cuda is refused when the pipeline is built") {
  if (gpu_skipped("to_cuda | to_torch() refusal")) return;
  auto build = [] { return xy_source{} | cy::batch(8) | cy::to_cuda(0, 2) | cy::to_torch(); };
  CHECK_THROWS_WITH_AS(build(), doctest::Contains("use to_torch(torch::kCUDA)"),
                       std::invalid_argument);
}

TEST_CASE(
    "without a GPU, to_cuda | to_torch(torch::kCUDA) is refused when built, naming the cause") {
  int count = 0;
  const cudaError_t result = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  if (result == cudaSuccess && count > 0) {
    MESSAGE("SKIPPED (a GPU is present): the no-GPU refusal");
    return;
  }
  // Each half on its own: the stager checks the device, the sink LibTorch's CUDA.
  CHECK_THROWS_WITH_AS(xy_source{} | cy::batch(8) | cy::to_cuda(0, 2),
                       doctest::Contains("cudaGetDeviceCount failed"), cy::cuda_error);
  if (!torch::cuda::is_available())
    CHECK_THROWS_WITH_AS(cy::to_torch(torch::kCUDA), doctest::Contains("CUDA is not available"),
                         std::invalid_argument);
  CHECK_THROWS(make_cuda_pipeline());
}

TEST_CASE("a device column LibTorch cannot wrap goes back to its pool, and the error propagates") {
  if (torch::cuda::is_available()) {
    MESSAGE("SKIPPED (LibTorch has CUDA): wrapping host memory as a CUDA tensor is not refused");
    return;
  }
  auto pool = std::make_shared<fake_device_pool>();
  std::vector<std::uint64_t> indices{0, 1};
  device_x_batch batch(std::make_shared<cy::pageable_pool>(), cy::batch_info{}, indices);
  batch.get<"x">() = cy::dense_column<float, cy::memory_space::device>(pool, 2, 4);
  REQUIRE(pool->host.acquired == 1);
  using tensors = cy::tensor_batch<device_x_batch>;
  CHECK_THROWS(tensors::from(std::move(batch), torch::Device(torch::kCUDA, 0)));
  CHECK(pool->host.released == 1);
  CHECK(pool->host.live.empty());
}

TEST_CASE("to_torch(torch::kCUDA) after to_cuda: CUDA tensors over the staged buffers, every row") {
  if (gpu_skipped("to_cuda | to_torch(cuda) values")) return;
  auto pipe = make_cuda_pipeline();
  std::size_t rows = 0;
  for (auto& batch : pipe.epoch(0)) {
    check_batch(batch);
    rows += batch.rows();
  }
  CHECK(rows == 64);
}

TEST_CASE("to_torch(torch::kCUDA): a tensor kept past the epoch and the pipeline stays valid") {
  if (gpu_skipped("kept CUDA tensors")) return;
  std::vector<torch::Tensor> kept;
  std::vector<std::uint64_t> first_records;
  {
    auto pipe = make_cuda_pipeline();
    for (auto& batch : pipe.epoch(0)) {
      kept.push_back(batch.get<"x">());
      first_records.push_back(batch.indices()[0]);
    }
    // Two more epochs: the device pool would hand out a kept tensor's buffer
    // again if the tensor did not hold it.
    for (int epoch = 1; epoch < 3; ++epoch)
      for (auto& batch : pipe.epoch(static_cast<std::uint64_t>(epoch))) check_batch(batch);
  }  // the pipeline is destroyed here; the tensors hold the device pool
  for (std::size_t b = 0; b < kept.size(); ++b)
    CHECK(kept[b].to(torch::kCPU)[0][0].item<float>() == static_cast<float>(10 * first_records[b]));
}

TEST_CASE(
    "to_torch(torch::kCUDA) with LibTorch on another current stream than the stager's consumer "
    "stream is refused, naming the fix") {
  if (gpu_skipped("stream mismatch")) return;
  const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  const c10::Device device(c10::DeviceType::CUDA, 0);
  const c10::Stream previous = impl->exchangeStream(impl->getStreamFromGlobalPool(device));
  auto pipe = make_cuda_pipeline();
  CHECK_THROWS_WITH(
      [&] {
        for (auto& batch : pipe.epoch(0)) (void)batch;
      }(),
      doctest::Contains("consumer_stream"));
  impl->exchangeStream(previous);
}
