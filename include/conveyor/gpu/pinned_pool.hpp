// conveyor/gpu/pinned_pool.hpp: page-locked host memory (cudaHostAlloc) for the
// columns a pipeline delivers, so their copies to the GPU are asynchronous DMA.
//
//   auto pinned = std::make_shared<cy::pinned_pool>(/*max_bytes=*/std::size_t{1} << 30);
//   auto pipe = ... | cy::prefetch(4) | cy::with_pool(pinned) | cy::to_cuda(0, 3);
//
// The stage that produces each delivered column allocates it here (with_pool),
// so a decoder writes straight into pinned memory and the stager copies from
// it without an intermediate copy. Recycling is stream-ordered (see
// stream_ordered_pool.hpp): the stager gives each buffer back with
// release_after(ptr, capacity, copy_stream), and the pool reuses it only once
// that copy has completed. release() (host code letting go, no GPU work
// pending) recycles at once.
//
// Without a GPU driver (or when cudaHostAlloc fails at construction for any
// reason) the pool falls back to pageable memory: space() answers host, and
// note() says why ("pinned pool: cudaHostAlloc failed (CUDA driver version is
// insufficient for CUDA runtime version): using pageable memory"), so stats
// and logs can show it. Everything else works the same, only copies are then
// synchronous. A cudaHostAlloc that fails after a successful construction
// (page-locked memory exhausted) throws cuda_error naming the call and size. Allocates: buffers, by
// size class, up to max_bytes. Thread-safe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "conveyor/gpu/cuda_error.hpp"
#include "conveyor/gpu/stream_ordered_pool.hpp"

namespace conveyor {

class pinned_pool final : public stream_ordered_pool {
 public:
  /// The memory space columns from this pool declare (host code may touch it).
  static constexpr memory_space static_space = memory_space::pinned;
  static constexpr std::size_t default_max_bytes = std::size_t{1} << 30;

  /// Probes cudaHostAlloc once; falls back to pageable memory if it fails.
  explicit pinned_pool(std::size_t max_bytes = default_max_bytes)
      : pinned_pool(max_bytes, probe_pinned()) {}
  ~pinned_pool() override { drain(); }

  void release(void* memory, std::size_t capacity) noexcept override { put_free(memory, capacity); }

  /// pinned, or host after the fallback to pageable memory.
  [[nodiscard]] memory_space space() const noexcept override {
    return pinned_ ? memory_space::pinned : memory_space::host;
  }
  /// Empty when the memory is pinned; else why it is not (for stats and logs).
  [[nodiscard]] std::string_view note() const noexcept { return note_; }

 protected:
  void* allocate_block(std::size_t bytes) override {
    if (!pinned_) return ::operator new (bytes, std::align_val_t{alignment});
    void* memory = nullptr;
    check_cuda(cudaHostAlloc(&memory, bytes, cudaHostAllocPortable),
               "cudaHostAlloc(" + std::to_string(bytes) + " bytes)");
    return memory;
  }
  void free_block(void* memory) noexcept override {
    if (pinned_) {
      (void)cudaFreeHost(memory);
    } else {
      ::operator delete (memory, std::align_val_t{alignment});
    }
  }

 private:
  struct probe_result {
    bool pinned;
    std::string note;
  };
  pinned_pool(std::size_t max_bytes, probe_result probe)
      : stream_ordered_pool(max_bytes, probe.pinned),
        note_(std::move(probe.note)),
        pinned_(probe.pinned) {}

  // Allocates and frees one small pinned buffer; on failure says why (the
  // pool then hands out pageable memory and records no events).
  static probe_result probe_pinned() {
    void* memory = nullptr;
    const cudaError_t result = cudaHostAlloc(&memory, 4096, cudaHostAllocPortable);
    if (result == cudaSuccess) {
      (void)cudaFreeHost(memory);
      return {true, {}};
    }
    (void)cudaGetLastError();
    return {false, std::string("pinned pool: cudaHostAlloc failed (") + cudaGetErrorString(result) +
                       "): using pageable memory"};
  }

  std::string note_;
  bool pinned_ = false;
};

}  // namespace conveyor
