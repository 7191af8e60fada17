// conveyor/gpu/cuda_error.hpp: a failed CUDA runtime call, as an exception
// that names the call and the runtime's own words.
//
// Every gpu/ header checks each CUDA call it makes with check_cuda(result,
// "cudaMemcpyAsync"); a failure throws cuda_error, whose what() reads
// "cudaSetDevice(0) failed: CUDA driver version is insufficient for CUDA
// runtime version (cudaErrorInsufficientDriver)". On a machine without a GPU
// or driver that is the error every device stage gives when it is built.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace conveyor {

/// A CUDA runtime call that failed: call() names it (with its arguments when
/// they help), code() is the runtime's error code.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(std::string call, cudaError_t code)
      : std::runtime_error(call + " failed: " + cudaGetErrorString(code) + " (" +
                           cudaGetErrorName(code) + ")"),
        call_(std::move(call)),
        code_(code) {}
  [[nodiscard]] const std::string& call() const noexcept { return call_; }
  [[nodiscard]] cudaError_t code() const noexcept { return code_; }

 private:
  std::string call_;
  cudaError_t code_;
};

/// Throws cuda_error(call, result) unless result is cudaSuccess. Clears the
/// runtime's sticky last error for non-sticky failures, so the next call does
/// not report this one again.
inline void check_cuda(cudaError_t result, const char* call) {
  if (result == cudaSuccess) return;
  (void)cudaGetLastError();
  throw cuda_error(call, result);
}
inline void check_cuda(cudaError_t result, const std::string& call) {
  check_cuda(result, call.c_str());
}

namespace detail {

/// Makes `device` current for a scope and restores the previous one (pools
/// and stagers may be used from threads whose current device is another).
class device_scope {
 public:
  explicit device_scope(int device) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device)
      check_cuda(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  }
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;
  ~device_scope() {
    int current = previous_;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_)
      (void)cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
};

}  // namespace detail
}  // namespace conveyor
