// The cuda backend's per-device execution context (internal; includes cuDNN and cuBLAS headers). One stream per
// device: minidl's kernels, cudaMemcpy, cuDNN and cuBLAS all run on the device's legacy default stream, so every
// operation is ordered after the ones before it and the caching allocator may hand a freed block out again at
// once (cuda_allocator.cpp relies on that). cuDNN and cuBLAS handles are made lazily, one per device, bound to
// that stream.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include "backends/cuda/cuda_check.cuh"

#define MINIDL_CUDNN_CHECK(call, ...)                                                          \
  do {                                                                                         \
    const cudnnStatus_t minidl_cudnn_st_ = (call);                                             \
    if (minidl_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                              \
      MINIDL_FAIL(__VA_ARGS__, " (", #call, ": ", cudnnGetErrorString(minidl_cudnn_st_), ")"); \
  } while (0)

#define MINIDL_CUBLAS_CHECK(call, ...)                                                          \
  do {                                                                                          \
    const cublasStatus_t minidl_cublas_st_ = (call);                                            \
    if (minidl_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                             \
      MINIDL_FAIL(__VA_ARGS__, " (", #call, ": ", cublasGetStatusName(minidl_cublas_st_), ": ", \
                  cublasGetStatusString(minidl_cublas_st_), ")");                               \
  } while (0)

namespace minidl::cuda {

/// The stream of the current device (the legacy default stream; see above).
cudaStream_t current_stream();
/// The current device's cuDNN / cuBLAS handle, created on first use and bound to current_stream().
cudnnHandle_t cudnn_handle();
cublasHandle_t cublas_handle();

}  // namespace minidl::cuda
