// The CUDA component on a GPU: the device decoders against the CPU ones, the
// stager (pinned staging, ready events, depth, early exit) and the raw sink
// with DLPack. Every case first asks cudaGetDeviceCount; where that fails (no
// GPU or driver, as on CI) it prints that it was skipped and passes.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/decode/packed_bits.hpp>
#include <conveyor/decode/two_gram.hpp>
#include <conveyor/decode/two_gram_indices.hpp>
#include <conveyor/exec/prefetch.hpp>
#include <conveyor/gpu/cuda_sink.hpp>
#include <conveyor/gpu/decode_kernels.cuh>
#include <conveyor/gpu/device_decode.cuh>
#include <conveyor/gpu/pinned_pool.hpp>
#include <conveyor/gpu/to_device.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {

bool skipped(const char* what) {
  int count = 0;
  const cudaError_t result = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  if (result == cudaSuccess && count > 0) return false;
  MESSAGE("SKIPPED (no GPU: cudaGetDeviceCount: " << std::string(cudaGetErrorString(result))
                                                  << "): " << std::string(what));
  return true;
}

template <class T>
std::vector<T> copy_back(const T* device, std::size_t count, cudaStream_t stream) {
  std::vector<T> host(count);
  cy::check_cuda(
      cudaMemcpyAsync(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost, stream),
      "cudaMemcpyAsync");
  cy::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return host;
}

template <class T>
struct device_buffer {
  T* data = nullptr;
  explicit device_buffer(std::size_t count) {
    cy::check_cuda(cudaMalloc(&data, count * sizeof(T)), "cudaMalloc");
  }
  ~device_buffer() { (void)cudaFree(data); }
};

template <cy::bit_element T>
void check_unpack_on_device() {
  constexpr std::size_t rows = 300, count = 1024, row_bytes = count / 8;
  std::mt19937 random(7);
  std::vector<std::uint8_t> packed(rows * row_bytes);
  for (auto& byte : packed) byte = static_cast<std::uint8_t>(random());
  std::vector<T> expected(rows * count);
  cy::unpack_bit_rows<T>(packed, expected, count);
  device_buffer<std::uint8_t> in(packed.size());
  device_buffer<T> out(expected.size());
  cy::check_cuda(cudaMemcpy(in.data, packed.data(), packed.size(), cudaMemcpyHostToDevice),
                 "cudaMemcpy");
  cy::gpu::unpack_bits(in.data, rows, count, out.data, cy::bit_order::big, nullptr);
  auto got = copy_back(out.data, expected.size(), nullptr);
  CHECK(std::memcmp(got.data(), expected.data(), expected.size() * sizeof(T)) == 0);
}

template <cy::bit_element T>
void check_multi_hot_on_device() {
  const auto& alphabet = cy::gram_alphabet::dea();
  const std::vector<std::string> names = {"JohnSmith1980-01-02", "MaryJones1975-12-31", "",
                                          "Ünïcödé Näme"};
  constexpr std::size_t per_row = 64;
  std::vector<std::int32_t> indices(names.size() * per_row);
  std::vector<T> expected(names.size() * alphabet.size());
  std::vector<std::uint8_t> labels(alphabet.size());
  for (std::size_t r = 0; r < names.size(); ++r) {
    REQUIRE(cy::try_encode_two_grams<T>(
        names[r], std::span<T>(expected).subspan(r * alphabet.size(), alphabet.size())));
    REQUIRE(cy::try_encode_two_grams<std::uint8_t>(names[r], labels));
    cy::two_gram_index_decoder::compact(labels, std::span(indices).subspan(r * per_row, per_row));
  }
  device_buffer<std::int32_t> in(indices.size());
  device_buffer<T> out(expected.size());
  cy::check_cuda(cudaMemcpy(in.data, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice),
                 "cudaMemcpy");
  cy::gpu::expand_multi_hot(in.data, names.size(), per_row, out.data, alphabet.size(), nullptr);
  auto got = copy_back(out.data, expected.size(), nullptr);
  CHECK(std::memcmp(got.data(), expected.data(), expected.size() * sizeof(T)) == 0);
}

auto numbers(std::uint64_t n, std::size_t width) {
  return cy::generate<cy::dense<"x", float>>(n, width, [](std::uint64_t i, std::span<float> row) {
    for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>(i * 1000 + c);
  });
}

}  // namespace

TEST_CASE("gpu::unpack_bits equals the CPU packed-bits decoder") {
  if (skipped("gpu::unpack_bits")) return;
  check_unpack_on_device<float>();
  check_unpack_on_device<cy::float16>();
  check_unpack_on_device<cy::bfloat16>();
  check_unpack_on_device<std::uint8_t>();
}

TEST_CASE("gpu::expand_multi_hot of two_gram index lists equals two_grams()") {
  if (skipped("gpu::expand_multi_hot")) return;
  check_multi_hot_on_device<float>();
  check_multi_hot_on_device<cy::float16>();
  check_multi_hot_on_device<cy::bfloat16>();
}

TEST_CASE(
    "to_cuda stages every batch, in order, from a pinned pool, behind prefetch; cuda_sink gives "
    "pointers") {
  if (skipped("to_cuda / cuda_sink")) return;
  auto pinned = std::make_shared<cy::pinned_pool>();
  CHECK(pinned->space() == cy::memory_space::pinned);
  cudaStream_t consumer = nullptr;
  cy::check_cuda(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking), "cudaStreamCreate");
  {
    auto pipe =
        numbers(1000, 37) | cy::shuffle(3) | cy::batch(64) | cy::prefetch(3) |
        cy::with_pool(pinned) |
        cy::to_device(cy::device_options{.device = 0, .depth = 3, .consumer_stream = consumer}) |
        cy::cuda_sink();
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
      std::uint64_t batches = 0;
      for (auto& batch : pipe.epoch(epoch)) {
        CHECK(batch.stream() == consumer);
        CHECK(cudaStreamWaitEvent(nullptr, batch.ready_event(), 0) == cudaSuccess);
        auto got = copy_back(batch.data<"x">(), batch.rows() * 37, consumer);
        for (std::size_t r = 0; r < batch.rows(); ++r)
          REQUIRE(got[r * 37 + 36] == static_cast<float>(batch.indices()[r] * 1000 + 36));
        ++batches;
      }
      CHECK(batches == pipe.plan_of(epoch).batch_count());
    }
    auto stats = pipe.stats();
    CHECK(stats.stages.size() >= 3);
  }
  CHECK(pinned->usage().waiting_buffers <= pinned->usage().held_bytes);
  cy::check_cuda(cudaStreamDestroy(consumer), "cudaStreamDestroy");
}

TEST_CASE("leaving the loop while batches are in flight frees nothing the GPU may still use") {
  if (skipped("to_cuda early exit")) return;
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe = numbers(4096, 1024) | cy::batch(256) | cy::prefetch(2) | cy::with_pool(pinned) |
              cy::to_cuda(0, 4);
  int seen = 0;
  for (auto& batch : pipe.epoch(0)) {
    (void)batch;
    if (++seen == 2)
      break;  // four batches' copies are queued: stop() synchronizes before releasing them
  }
  CHECK(seen == 2);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
}

TEST_CASE(
    "a device column as a DLPack tensor: kDLCUDA, and the deleter returns it to the device pool") {
  if (skipped("DLPack of device columns")) return;
  auto pipe = numbers(16, 4) | cy::batch(8) | cy::to_cuda(0, 2) | cy::cuda_sink();
  for (auto& batch : pipe.epoch(0)) {
    void* pointer = batch.data<"x">();
    DLManagedTensor* tensor = batch.to_dlpack<"x">();
    CHECK(tensor->dl_tensor.data == pointer);
    CHECK(tensor->dl_tensor.device.device_type == kDLCUDA);
    CHECK(tensor->dl_tensor.device.device_id == 0);
    CHECK(tensor->dl_tensor.shape[0] == 8);
    CHECK(tensor->dl_tensor.shape[1] == 4);
    tensor->deleter(tensor);
  }
}

namespace {
// Packed filters and label index lists, as a source would publish them.
class compact_source {
 public:
  using batch_type = cy::record_batch<cy::dense<"x", std::uint8_t>, cy::dense<"y", std::int32_t>>;
  std::uint64_t size() const noexcept { return 200; }
  std::string_view name() const noexcept { return "compact"; }
  static std::uint8_t byte(std::uint64_t record, std::size_t b) {
    return static_cast<std::uint8_t>(record * 31 + b * 7);
  }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    cy::dense_column<std::uint8_t> x(ctx.pool_for("x"), indices.size(), 128);
    cy::dense_column<std::int32_t> y(ctx.pool_for("y"), indices.size(), 4);
    for (std::size_t r = 0; r < indices.size(); ++r) {
      for (std::size_t b = 0; b < 128; ++b) x(r, b) = byte(indices[r], b);
      const std::int32_t labels[4] = {static_cast<std::int32_t>(indices[r] % 1036), 5, 1035,
                                      cy::no_index};
      for (std::size_t k = 0; k < 4; ++k) y(r, k) = labels[k];
    }
    out.get<"x">() = std::move(x);
    out.get<"y">() = std::move(y);
    return out;
  }
};
}  // namespace

TEST_CASE(
    "gpu::expand_bits and gpu::expand_labels as stages after to_cuda equal the CPU decoders") {
  using expanded = cy::record_batch<cy::dense<"x", float, cy::memory_space::device>,
                                    cy::dense<"y", cy::bfloat16, cy::memory_space::device>>;
  auto make = [] {
    return compact_source{} | cy::batch(64) | cy::to_cuda(0, 2) |
           cy::gpu::expand_bits<"x", float>(1024) |
           cy::gpu::expand_labels<"y", cy::bfloat16>(1036) | cy::cuda_sink();
  };
  static_assert(std::is_same_v<typename decltype(make())::batch_type, cy::cuda_batch<expanded>>);
  if (skipped("gpu::expand_bits / gpu::expand_labels stages")) return;
  auto pipe = make();
  for (auto& batch : pipe.epoch(0)) {
    auto x = copy_back(batch.data<"x">(), batch.rows() * 1024, batch.stream());
    auto y = copy_back(batch.data<"y">(), batch.rows() * 1036, batch.stream());
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      std::vector<std::uint8_t> packed(128);
      for (std::size_t b = 0; b < 128; ++b) packed[b] = compact_source::byte(batch.indices()[r], b);
      std::vector<float> bits(1024);
      cy::unpack_bits<float>(packed, bits);
      REQUIRE(std::memcmp(bits.data(), x.data() + r * 1024, 1024 * sizeof(float)) == 0);
      for (std::size_t c = 0; c < 1036; ++c) {
        const bool hot = c == batch.indices()[r] % 1036 || c == 5 || c == 1035;
        REQUIRE(y[r * 1036 + c].bits == (hot ? cy::detail::bit_one<cy::bfloat16>().bits : 0));
      }
    }
  }
}
