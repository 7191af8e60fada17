// conveyor/core/host_device.hpp: CONVEYOR_HOST_DEVICE marks a function that a
// CUDA kernel may call as well as host code.
//
// Under nvcc (or clang in CUDA mode) it expands to `__host__ __device__`;
// elsewhere to nothing, so a header that uses it needs no CUDA toolkit. Write
// per-element logic once in such functions and call it from both the host
// kernels and the device kernels (gpu/), so the two cannot drift apart.
#pragma once

#if defined(__CUDACC__)
#define CONVEYOR_HOST_DEVICE __host__ __device__
#else
#define CONVEYOR_HOST_DEVICE
#endif
