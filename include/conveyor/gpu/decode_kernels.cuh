// conveyor/gpu/decode_kernels.cuh: device-side decoders, so only compact data
// crosses PCIe (nvcc only).
//
//   cy::gpu::unpack_bits(packed, rows, 1024, out, cy::bit_order::big, stream);   // 128 B -> 1024
//   values per row cy::gpu::expand_multi_hot(indices, rows, 64, out, 1036, stream);            //
//   index list -> multi-hot
//
// Host facades in the CUB manner: device pointers in and out, an explicit
// stream, asynchronous (nothing is waited for), one thread per output value.
// The per-value work is the CONVEYOR_HOST_DEVICE functions the CPU decoders
// and the CPU tests use (decode/detail/packed_bit_element.hpp,
// decode/detail/multi_hot_element.hpp), so host and device cannot drift.
// Output dtypes: float, float16, bfloat16, uint8. Allocates nothing. Errors:
// a failed launch throws cuda_error naming the kernel (cudaGetLastError right
// after the launch); faults inside the kernel surface at the next
// synchronizing call, as CUDA reports them.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "conveyor/decode/detail/multi_hot_element.hpp"
#include "conveyor/decode/detail/packed_bit_element.hpp"
#include "conveyor/gpu/cuda_error.hpp"

namespace conveyor::gpu {

namespace kernels {

template <bit_element T>
__global__ void unpack_bits(const std::uint8_t* packed, std::size_t rows, std::size_t count, T* out,
                            bit_order order) {
  const std::size_t row_bytes = (count + 7) / 8;
  const std::size_t total = rows * count;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::size_t row = i / count;
    detail::unpack_bit(packed + row * row_bytes, out + row * count, i - row * count, order);
  }
}

template <bit_element T>
__global__ void expand_multi_hot(const std::int32_t* indices, std::size_t rows,
                                 std::size_t indices_per_row, T* out, std::size_t width) {
  const std::size_t total = rows * width;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::size_t row = i / width;
    detail::expand_multi_hot_element(indices + row * indices_per_row, indices_per_row,
                                     out + row * width, i - row * width);
  }
}

}  // namespace kernels

namespace detail {
inline constexpr unsigned threads_per_block = 256;
inline unsigned blocks_for(std::size_t values) {
  const std::size_t blocks = (values + threads_per_block - 1) / threads_per_block;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks == 0 ? 1 : blocks) : 65535 * 8);
}
}  // namespace detail

/// Expands `rows` packed rows of `count` bits each ((count + 7) / 8 bytes per
/// row, numpy.packbits layout) into rows x count values of T at `out`.
template <bit_element T>
void unpack_bits(const std::uint8_t* packed, std::size_t rows, std::size_t count, T* out,
                 bit_order order, cudaStream_t stream) {
  if (rows == 0 || count == 0) return;
  kernels::unpack_bits<T>
      <<<detail::blocks_for(rows * count), detail::threads_per_block, 0, stream>>>(
          packed, rows, count, out, order);
  check_cuda(cudaGetLastError(), "unpack_bits kernel launch");
}

/// Expands `rows` index lists of `indices_per_row` int32 (no_index padding)
/// into rows x width multi-hot values of T at `out`.
template <bit_element T>
void expand_multi_hot(const std::int32_t* indices, std::size_t rows, std::size_t indices_per_row,
                      T* out, std::size_t width, cudaStream_t stream) {
  if (rows == 0 || width == 0) return;
  kernels::expand_multi_hot<T>
      <<<detail::blocks_for(rows * width), detail::threads_per_block, 0, stream>>>(
          indices, rows, indices_per_row, out, width);
  check_cuda(cudaGetLastError(), "expand_multi_hot kernel launch");
}

}  // namespace conveyor::gpu
