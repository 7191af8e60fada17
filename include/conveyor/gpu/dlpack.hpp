// conveyor/gpu/dlpack.hpp: a dense column as a DLPack tensor, without a copy.
//
//   DLManagedTensor* x = cy::to_dlpack(std::move(batch.get<"x">()));
//   // hand x to any framework that speaks DLPack (torch.utils.dlpack.from_dlpack,
//   // CuPy, JAX, TVM); it calls x->deleter(x) when done.
//
// The tensor is 2-D (rows x width), row-major and compact (strides null), of
// dtype float32, float64, float16, bfloat16, uint8/16/32/64 or int8/16/32/64.
// Its device is kDLCPU for pageable host memory, kDLCUDAHost when the column's
// pool is pinned (a run-time property: a pinned pool that fell back answers
// host), kDLCUDA with the pool's device for a device column. The column's
// buffer moves into the tensor (the column is left empty); the deleter
// returns it to its pool, which for device memory waits, in stream order, for
// the work queued on the pool's reader stream (device_pool.hpp). Allocates:
// one small context per tensor (shape, the releaser). Thread: any; the
// deleter may run on any thread. Errors: none at run time; a column type
// DLPack has no code for is a compile error.
//
// Needs only <dlpack/dlpack.h> (Debian's libdlpack-dev, DLPack 0.6 and later):
// host columns export without the CUDA runtime.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/half.hpp"

namespace conveyor {

namespace detail {

template <class T>
inline constexpr bool dependent_false_dlpack = false;

template <class T>
constexpr DLDataType dlpack_type_of() {
  if constexpr (std::is_same_v<T, float>) {
    return {kDLFloat, 32, 1};
  } else if constexpr (std::is_same_v<T, double>) {
    return {kDLFloat, 64, 1};
  } else if constexpr (std::is_same_v<T, float16>) {
    return {kDLFloat, 16, 1};
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    return {kDLBfloat, 16, 1};
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return {static_cast<std::uint8_t>(std::is_signed_v<T> ? kDLInt : kDLUInt),
            static_cast<std::uint8_t>(sizeof(T) * 8), 1};
  } else {
    static_assert(dependent_false_dlpack<T>,
                  "conveyor: to_dlpack supports float, double, float16, bfloat16 and the integer "
                  "types; convert "
                  "the column to one of them first.");
    return {};
  }
}

/// What a DLManagedTensor made by to_dlpack owns.
struct dlpack_context {
  std::int64_t shape[2];
  buffer_release release;
  void* memory;
};

inline void delete_dlpack_tensor(DLManagedTensor* tensor) {
  if (tensor == nullptr) return;
  auto* context = static_cast<dlpack_context*>(tensor->manager_ctx);
  context->release(context->memory);
  delete context;
  delete tensor;
}

}  // namespace detail

/// Where memory from `pool` lives, as a DLPack device (device memory: on
/// `device_id`).
inline DLDevice dlpack_device_of(memory_space space, int device_id) noexcept {
  switch (space) {
    case memory_space::pinned:
      return {kDLCUDAHost, 0};
    case memory_space::device:
      return {kDLCUDA, device_id};
    case memory_space::host:
      break;
  }
  return {kDLCPU, 0};
}

/// Moves `column`'s buffer into a new DLManagedTensor (see the top of this
/// header). `device_id` names the GPU of a device column.
template <class T, memory_space Space>
[[nodiscard]] DLManagedTensor* to_dlpack(dense_column<T, Space>&& column, int device_id = 0) {
  constexpr DLDataType type = detail::dlpack_type_of<T>();
  const auto rows = static_cast<std::int64_t>(column.rows());
  const auto width = static_cast<std::int64_t>(column.width());
  pooled_buffer buffer = std::move(column).take_buffer();
  const memory_space space = Space == memory_space::device
                                 ? memory_space::device
                                 : (buffer.pool() ? buffer.pool()->space() : Space);
  auto tensor = std::make_unique<DLManagedTensor>();
  auto context = std::make_unique<detail::dlpack_context>();
  context->shape[0] = rows;
  context->shape[1] = width;
  context->memory = buffer.data();
  tensor->dl_tensor.data = buffer.data();
  tensor->dl_tensor.device = dlpack_device_of(space, device_id);
  tensor->dl_tensor.ndim = 2;
  tensor->dl_tensor.dtype = type;
  tensor->dl_tensor.shape = context->shape;
  tensor->dl_tensor.strides = nullptr;
  tensor->dl_tensor.byte_offset = 0;
  tensor->deleter = &detail::delete_dlpack_tensor;
  context->release = buffer.detach();
  tensor->manager_ctx = context.release();
  return tensor.release();
}

/// A DLManagedTensor that calls its deleter when destroyed, for code that
/// keeps the tensor itself. release() hands it on (to a framework).
using dlpack_tensor_ptr = std::unique_ptr<DLManagedTensor, decltype(&detail::delete_dlpack_tensor)>;

template <class T, memory_space Space>
[[nodiscard]] dlpack_tensor_ptr to_dlpack_ptr(dense_column<T, Space>&& column, int device_id = 0) {
  return {to_dlpack(std::move(column), device_id), &detail::delete_dlpack_tensor};
}

}  // namespace conveyor
