// Per-device cuDNN and cuBLAS handles (see cuda_handles.cuh). Handles are never destroyed: tensors and handles
// may outlive static destructors, and destroying them after the driver unloads crashes.
#include "backends/cuda/cuda_handles.cuh"

#include <mutex>
#include <vector>

namespace minidl::cuda {
namespace {

int current_device() {
  int d = 0;
  MINIDL_CUDA_CHECK(cudaGetDevice(&d), "cuda backend: cudaGetDevice failed");
  return d;
}

template <typename H, typename Make>
H per_device(std::vector<H>& slots, std::mutex& mu, Make make) {
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mu);
  if (slots.size() <= static_cast<size_t>(d)) slots.resize(static_cast<size_t>(d) + 1, nullptr);
  H& h = slots[static_cast<size_t>(d)];
  if (!h) h = make();
  return h;
}

}  // namespace

cudaStream_t current_stream() { return cudaStreamLegacy; }

cudnnHandle_t cudnn_handle() {
  static std::mutex mu;
  static std::vector<cudnnHandle_t> slots;
  return per_device(slots, mu, [] {
    require_device("creating a cuDNN handle");
    cudnnHandle_t h = nullptr;
    MINIDL_CUDNN_CHECK(cudnnCreate(&h), "cuda backend: cudnnCreate failed");
    MINIDL_CUDNN_CHECK(cudnnSetStream(h, current_stream()), "cuda backend: cudnnSetStream failed");
    return h;
  });
}

cublasHandle_t cublas_handle() {
  static std::mutex mu;
  static std::vector<cublasHandle_t> slots;
  return per_device(slots, mu, [] {
    require_device("creating a cuBLAS handle");
    cublasHandle_t h = nullptr;
    MINIDL_CUBLAS_CHECK(cublasCreate(&h), "cuda backend: cublasCreate failed");
    MINIDL_CUBLAS_CHECK(cublasSetStream(h, current_stream()), "cuda backend: cublasSetStream failed");
    return h;
  });
}

}  // namespace minidl::cuda
