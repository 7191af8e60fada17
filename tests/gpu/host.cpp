// The CUDA component on the CPU: what runs on every machine with the toolkit,
// GPU or not. The per-value host/device functions against the CPU decoders,
// the pinned pool (a real cudaHostAlloc: without a driver it fails and the pool
// falls back to pageable memory with a note), DLPack export of host columns,
// and the cuda_error a stage gives where there is no GPU.
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decoder.hpp>
#include <conveyor/decode/packed_bits.hpp>
#include <conveyor/decode/two_gram.hpp>
#include <conveyor/decode/two_gram_indices.hpp>
#include <conveyor/gpu/cuda_sink.hpp>
#include <conveyor/gpu/device_pool.hpp>
#include <conveyor/gpu/dlpack.hpp>
#include <conveyor/gpu/pinned_pool.hpp>
#include <conveyor/gpu/to_device.hpp>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace cy = conveyor;

namespace {

bool gpu_present() {
  int count = 0;
  const bool present = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  (void)cudaGetLastError();
  return present;
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <cy::bit_element T>
void check_unpack_matches_cpu(cy::bit_order order) {
  constexpr std::size_t rows = 5, count = 1021;  // not a multiple of 8: the last byte has padding
  constexpr std::size_t row_bytes = (count + 7) / 8;
  std::mt19937 random(42);
  std::vector<std::uint8_t> packed(rows * row_bytes);
  for (auto& byte : packed) byte = static_cast<std::uint8_t>(random());
  for (std::size_t r = 0; r < rows; ++r)
    packed[r * row_bytes + row_bytes - 1] &= ~cy::detail::padding_mask(count, order);
  std::vector<T> cpu(rows * count), per_element(rows * count);
  cy::unpack_bit_rows<T>(packed, cpu, count, order);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < count; ++i)
      cy::detail::unpack_bit(packed.data() + r * row_bytes, per_element.data() + r * count, i,
                             order);
  for (std::size_t i = 0; i < cpu.size(); ++i) REQUIRE(same_bits(cpu[i], per_element[i]));
}

template <cy::bit_element T>
void check_multi_hot_matches_two_grams(std::string_view text) {
  const auto& alphabet = cy::gram_alphabet::dea();
  std::vector<T> expected(alphabet.size());
  REQUIRE(cy::try_encode_two_grams<T>(text, expected, alphabet));
  std::vector<std::uint8_t> labels(alphabet.size());
  REQUIRE(cy::try_encode_two_grams<std::uint8_t>(text, labels, alphabet));
  std::vector<std::int32_t> indices(64);
  const std::size_t count = cy::two_gram_index_decoder::compact(labels, indices);
  REQUIRE(count <= indices.size());
  std::vector<T> expanded(alphabet.size());
  for (std::size_t column = 0; column < alphabet.size(); ++column)
    cy::detail::expand_multi_hot_element(indices.data(), indices.size(), expanded.data(), column);
  for (std::size_t i = 0; i < expected.size(); ++i) REQUIRE(same_bits(expected[i], expanded[i]));
}

auto numbers(std::uint64_t n, std::size_t width) {
  return cy::generate<cy::dense<"x", float>>(n, width, [](std::uint64_t i, std::span<float> row) {
    for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>(i * 10 + c);
  });
}

}  // namespace

TEST_CASE("unpack_bit, the device kernels' per-value step, matches the CPU packed-bits decoder") {
  for (auto order : {cy::bit_order::big, cy::bit_order::little}) {
    check_unpack_matches_cpu<float>(order);
    check_unpack_matches_cpu<cy::float16>(order);
    check_unpack_matches_cpu<cy::bfloat16>(order);
    check_unpack_matches_cpu<std::uint8_t>(order);
  }
}

TEST_CASE("index lists expanded with expand_multi_hot_element equal two_grams()") {
  for (std::string_view text :
       {"JohnSmith1980-01-02", "  Ünïcödé Näme. 12/03/1999", "", "a", "x\"y.z/w"}) {
    check_multi_hot_matches_two_grams<float>(text);
    check_multi_hot_matches_two_grams<cy::float16>(text);
    check_multi_hot_matches_two_grams<cy::bfloat16>(text);
    check_multi_hot_matches_two_grams<std::uint8_t>(text);
  }
}

TEST_CASE(
    "two_gram_indices: ascending indices, no_index padding, and the count past the row's width") {
  std::vector<std::uint8_t> multi_hot(10, 0);
  multi_hot[2] = multi_hot[7] = multi_hot[9] = 1;
  std::vector<std::int32_t> row(5);
  CHECK(cy::two_gram_index_decoder::compact(multi_hot, row) == 3);
  CHECK(row == std::vector<std::int32_t>{2, 7, 9, cy::no_index, cy::no_index});
  std::vector<std::int32_t> small(2);
  CHECK(cy::two_gram_index_decoder::compact(multi_hot, small) == 3);
  CHECK(small == std::vector<std::int32_t>{2, 7});
  static_assert(cy::text_decoder<cy::two_gram_index_decoder>);
  CHECK(cy::two_gram_indices({"a"}, 32).width() == 32);
  CHECK(cy::two_gram_indices({"a"}, 32).fingerprint() !=
        cy::two_gram_indices({"a"}, 33).fingerprint());
}

TEST_CASE(
    "pinned_pool calls cudaHostAlloc; without a driver it falls back to pageable memory and says "
    "so") {
  static_assert(cy::host_pool<cy::pinned_pool>);
  cy::pinned_pool pool(std::size_t{1} << 20);
  if (gpu_present()) {
    CHECK(pool.space() == cy::memory_space::pinned);
    CHECK(pool.note().empty());
  } else {
    MESSAGE("no GPU: checking the fallback; note: " << pool.note());
    CHECK(pool.space() == cy::memory_space::host);
    CHECK(std::string(pool.kind()) == "pageable");
    CHECK(pool.note().find("pinned pool: cudaHostAlloc failed (") == 0);
    CHECK(pool.note().find("): using pageable memory") != std::string_view::npos);
  }
  std::size_t capacity = 0;
  void* first = pool.acquire(3000, capacity);
  CHECK(capacity == 4096);
  CHECK(reinterpret_cast<std::uintptr_t>(first) % cy::buffer_pool::alignment == 0);
  std::memset(first, 1, 3000);  // host-accessible either way
  pool.release(first, capacity);
  CHECK(pool.acquire(4000, capacity) == first);  // recycled by size class
  pool.release_after(first, capacity, nullptr);  // no pending GPU work here: reusable once polled
  CHECK(pool.acquire(4000, capacity) == first);
  pool.release(first, capacity);
  CHECK(pool.usage().held_bytes == 4096);
  CHECK(pool.usage().cached_bytes == 4096);
}

TEST_CASE(
    "pinned_pool is bounded: past max_bytes it frees cached buffers, then throws pool_exhausted") {
  cy::pinned_pool pool(8192);
  std::size_t a_capacity = 0, b_capacity = 0;
  void* a = pool.acquire(4096, a_capacity);
  void* b = pool.acquire(4096, b_capacity);
  std::size_t capacity = 0;
  CHECK_THROWS_AS(pool.acquire(256, capacity), cy::pool_exhausted);
  try {
    (void)pool.acquire(256, capacity);
  } catch (const cy::pool_exhausted& e) {
    CHECK(std::string(e.what()).find("would pass max_bytes 8192") != std::string::npos);
  }
  pool.release(a, a_capacity);
  void* c = pool.acquire(8192 - 4096, capacity);  // the cached 4 KiB buffer is reused
  CHECK(c == a);
  pool.release(c, capacity);
  void* d = pool.acquire(256, capacity);  // frees the cached 4 KiB buffer to make room
  CHECK(pool.usage().held_bytes == 4096 + 256);
  pool.release(d, capacity);
  pool.release(b, b_capacity);
}

TEST_CASE(
    "a pinned pool (or its pageable fallback) serves with_pool: decoders write delivered columns "
    "there") {
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe = numbers(8, 3) | cy::batch(4) | cy::with_pool(pinned);
  for (auto& batch : pipe.epoch(0)) {
    CHECK(batch.get<"x">().buffer().pool() == std::static_pointer_cast<cy::buffer_pool>(pinned));
    CHECK(batch.get<"x">()(1, 2) == static_cast<float>((batch.number() * 4 + 1) * 10 + 2));
  }
}

TEST_CASE(
    "DLPack export of host columns: shape, dtype, kDLCPU, no copy, the deleter returns the "
    "buffer") {
  auto pool = std::make_shared<cy::pageable_pool>();
  auto pipe = numbers(6, 3) | cy::batch(6) | cy::with_pool(pool);
  for (auto& batch : pipe.epoch(0)) {
    auto& x = batch.get<"x">();
    const float* memory = x.data();
    DLManagedTensor* tensor = cy::to_dlpack(std::move(x));
    CHECK(x.rows() == 0);
    CHECK(tensor->dl_tensor.data == memory);
    CHECK(tensor->dl_tensor.device.device_type == kDLCPU);
    CHECK(tensor->dl_tensor.ndim == 2);
    CHECK(tensor->dl_tensor.shape[0] == 6);
    CHECK(tensor->dl_tensor.shape[1] == 3);
    CHECK(tensor->dl_tensor.strides == nullptr);
    CHECK(tensor->dl_tensor.dtype.code == kDLFloat);
    CHECK(tensor->dl_tensor.dtype.bits == 32);
    CHECK(tensor->dl_tensor.dtype.lanes == 1);
    CHECK(static_cast<const float*>(tensor->dl_tensor.data)[5 * 3 + 2] == 52.0f);
    // The pool does not hand the memory out while the tensor lives...
    std::size_t capacity = 0;
    void* other = pool->acquire(6 * 3 * sizeof(float), capacity);
    CHECK(other != memory);
    pool->release(other, capacity);
    // ...and gets it back from the deleter.
    tensor->deleter(tensor);
    void* again = pool->acquire(6 * 3 * sizeof(float), capacity);
    CHECK((again == memory || again == other));
    pool->release(again, capacity);
  }
}

TEST_CASE(
    "DLPack dtype codes, and a pinned pool's columns as kDLCUDAHost (kDLCPU after the fallback)") {
  auto pool = std::make_shared<cy::pageable_pool>();
  auto check = [&]<class T>(DLDataTypeCode code, int bits) {
    cy::dense_column<T> column(pool, 2, 2);
    auto tensor = cy::to_dlpack_ptr(std::move(column));
    CHECK(tensor->dl_tensor.dtype.code == code);
    CHECK(tensor->dl_tensor.dtype.bits == bits);
  };
  check.operator()<cy::float16>(kDLFloat, 16);
  check.operator()<cy::bfloat16>(kDLBfloat, 16);
  check.operator()<double>(kDLFloat, 64);
  check.operator()<std::uint8_t>(kDLUInt, 8);
  check.operator()<std::int64_t>(kDLInt, 64);
  check.operator()<std::int32_t>(kDLInt, 32);

  auto pinned = std::make_shared<cy::pinned_pool>();
  cy::dense_column<float> column(pinned, 2, 2);
  auto tensor = cy::to_dlpack_ptr(std::move(column));
  CHECK(tensor->dl_tensor.device.device_type ==
        (pinned->space() == cy::memory_space::pinned ? kDLCUDAHost : kDLCPU));
}

TEST_CASE(
    "without a GPU, to_cuda and device_pool throw a cuda_error naming the call and the runtime's "
    "message") {
  if (gpu_present()) {
    MESSAGE(
        "a GPU is present: the no-GPU errors are not exercised here (gpu_device_test covers the "
        "device)");
    return;
  }
  auto source = numbers(8, 2) | cy::batch(4);
  try {
    auto pipe = source | cy::to_cuda(0, 2);
    FAIL("to_cuda built a stager without a GPU");
  } catch (const cy::cuda_error& e) {
    MESSAGE("to_cuda: " << std::string(e.what()));
    CHECK(e.call() == "cudaGetDeviceCount");
    CHECK(e.code() != cudaSuccess);
    CHECK(std::string(e.what()).find("cudaGetDeviceCount failed: ") == 0);
    CHECK(std::string(e.what()).find(cudaGetErrorString(e.code())) != std::string::npos);
  }
  CHECK_THROWS_AS(cy::to_device(source, cy::device_options{.device = 0, .depth = 4}),
                  cy::cuda_error);
  CHECK_THROWS_AS(cy::device_pool(0), cy::cuda_error);
}

TEST_CASE(
    "the stager's and sink's types: dense columns go to device memory, the sink gives cuda_batch") {
  using host = cy::record_batch<cy::dense<"x", float>, cy::dense<"y", std::int32_t>>;
  using device = cy::detail::to_device_stage::output<host>;
  static_assert(
      std::is_same_v<device,
                     cy::record_batch<cy::dense<"x", float, cy::memory_space::device>,
                                      cy::dense<"y", std::int32_t, cy::memory_space::device>>>);
  static_assert(
      std::is_same_v<cy::detail::cuda_sink_stage::output<device>, cy::cuda_batch<device>>);
  static_assert(cy::detail::to_device_stage::placement.needs_batches);
  static_assert(!cy::detail::to_device_stage::placement.host_only);
  static_assert(cy::detail::cuda_sink_stage::placement.must_be_last);
}

TEST_CASE("to_cuda and cuda_sink built by g++ deliver every row (runs only with a GPU)") {
  if (!gpu_present()) {
    MESSAGE("SKIPPED (no GPU): the stager's run-time path; gpu_device_test covers it under nvcc");
    return;
  }
  auto pinned = std::make_shared<cy::pinned_pool>();
  auto pipe =
      numbers(10, 3) | cy::batch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 2) | cy::cuda_sink();
  std::size_t rows = 0;
  for (auto& batch : pipe.epoch(0)) {
    CHECK(batch.data<"x">() != nullptr);
    rows += batch.rows();
  }
  CHECK(rows == 10);
}

TEST_CASE(
    "to_device(device_memory = a pool that is not device memory) is refused (runs only with a "
    "GPU)") {
  if (!gpu_present()) {
    MESSAGE("SKIPPED (no GPU): building the stager checks the device first");
    return;
  }
  auto source = numbers(8, 2) | cy::batch(4);
  CHECK_THROWS_AS(
      cy::to_device(source,
                    cy::device_options{.device_memory = std::make_shared<cy::pageable_pool>()}),
      std::invalid_argument);
}

namespace {
/// A device pool that is always out of memory, as cudaMalloc reports it, or at its bound.
struct out_of_memory_pool final : cy::buffer_pool {
  bool bounded = false;
  void* acquire(std::size_t bytes, std::size_t&) override {
    if (bounded)
      throw cy::pool_exhausted("device pool: " + std::to_string(bytes) + " bytes past max_bytes");
    throw cy::cuda_error("cudaMalloc(" + std::to_string(bytes) + " bytes on device 0)",
                         cudaErrorMemoryAllocation);
  }
  void release(void*, std::size_t) noexcept override {}
  [[nodiscard]] cy::memory_space space() const noexcept override {
    return cy::memory_space::device;
  }
};
}  // namespace

TEST_CASE("device out of memory: the stager's error names the column and the bytes") {
  auto pool = std::make_shared<out_of_memory_pool>();
  try {
    (void)cy::detail::allocate_device_column<float>(pool, "x", 256, 1024);
    FAIL("no error");
  } catch (const cy::cuda_error& error) {
    CHECK(error.code() == cudaErrorMemoryAllocation);
    const std::string what = error.what();
    CHECK(what.find("cudaMalloc(1048576 bytes on device 0)") != std::string::npos);
    CHECK(what.find("for column \"x\" (256 x 1024 x 4 = 1048576 bytes)") != std::string::npos);
    CHECK(what.find("cudaErrorMemoryAllocation") != std::string::npos);
  }
  pool->bounded = true;
  try {
    (void)cy::detail::allocate_device_column<std::int32_t>(pool, "y", 2, 3);
    FAIL("no error");
  } catch (const cy::pool_exhausted& error) {
    const std::string what = error.what();
    CHECK(what.find("past max_bytes") != std::string::npos);
    CHECK(what.find("for column \"y\" (2 x 3 x 4 = 24 bytes)") != std::string::npos);
  }
}
