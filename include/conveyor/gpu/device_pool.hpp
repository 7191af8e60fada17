// conveyor/gpu/device_pool.hpp: GPU memory (cudaMalloc) for device columns,
// recycled by size class in stream order.
//
// A device column's buffer goes back to this pool when the consumer drops the
// batch (or a DLPack/tensor deleter runs). Kernels the consumer queued on its
// stream may still be reading it then, so release() records an event on the
// pool's `reader_stream` (the consumer's stream, given to to_device/to_cuda)
// and the buffer is reused only once that event has completed (see
// stream_ordered_pool.hpp). A consumer that reads device columns on another
// stream must order that stream before the release itself (or synchronize).
//
// Construction checks the device (cudaSetDevice): without a GPU or driver it
// throws cuda_error naming the call and the runtime's message. acquire()
// throws cuda_error when cudaMalloc fails after freeing cached buffers (the
// device is out of memory), or pool_exhausted past max_bytes. Thread-safe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <limits>
#include <string>

#include "conveyor/gpu/cuda_error.hpp"
#include "conveyor/gpu/stream_ordered_pool.hpp"

namespace conveyor {

class device_pool final : public stream_ordered_pool {
 public:
  static constexpr memory_space static_space = memory_space::device;

  /// Memory on `device`; released buffers wait for `reader_stream` (null: the
  /// legacy default stream). Throws cuda_error when the device is unusable.
  explicit device_pool(int device = 0, cudaStream_t reader_stream = nullptr,
                       std::size_t max_bytes = std::numeric_limits<std::size_t>::max())
      : stream_ordered_pool(max_bytes, true), device_(device), reader_(reader_stream) {
    detail::device_scope on(device_);
    check_cuda(cudaFree(nullptr),
               "cudaFree(nullptr) (creating the context of device " + std::to_string(device) + ")");
  }
  ~device_pool() override { drain(); }

  /// Reused once the work queued on the reader stream so far has completed.
  void release(void* memory, std::size_t capacity) noexcept override {
    try {
      detail::device_scope on(device_);
      release_after(memory, capacity, reader_);
    } catch (...) {  // the device is gone: the memory went with its context
    }
  }

  [[nodiscard]] memory_space space() const noexcept override { return memory_space::device; }
  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] cudaStream_t reader_stream() const noexcept { return reader_; }

 protected:
  void* allocate_block(std::size_t bytes) override {
    detail::device_scope on(device_);
    void* memory = nullptr;
    check_cuda(cudaMalloc(&memory, bytes), "cudaMalloc(" + std::to_string(bytes) +
                                               " bytes on device " + std::to_string(device_) + ")");
    return memory;
  }
  void free_block(void* memory) noexcept override { (void)cudaFree(memory); }

 private:
  int device_;
  cudaStream_t reader_;
};

}  // namespace conveyor
