// Internal helpers of the CUDA backend (not installed: it includes the CUDA runtime header).
// MINIDL_CUDA_CHECK turns a failed runtime call into a minidl::Error naming the call and CUDA's own explanation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/error.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

#define MINIDL_CUDA_CHECK(call, ...)                                                        \
  do {                                                                                      \
    const cudaError_t minidl_cuda_err_ = (call);                                            \
    if (minidl_cuda_err_ != cudaSuccess) {                                                  \
      cudaGetLastError(); /* clear the sticky error of a non-fatal failure */               \
      MINIDL_FAIL(__VA_ARGS__, " (", #call, ": ", cudaGetErrorName(minidl_cuda_err_), ": ", \
                  cudaGetErrorString(minidl_cuda_err_), ")");                               \
    }                                                                                       \
  } while (0)

namespace minidl::cuda {

/// Throws "CUDA: no device present (...)" when no device is usable; every entry point that touches device
/// memory calls it first so that a machine without a GPU gets one clear message.
void require_device(const char* what);

/// The device address of a tensor's first element (the storage pointer plus the view's offset).
inline void* device_ptr(const Tensor& t) {
  return static_cast<char*>(t.storage()->data()) + t.offset() * static_cast<int64_t>(t.element_size());
}

}  // namespace minidl::cuda
