// The fill kernel of the CUDA backend: one grid-stride loop per dtype, launched on the default stream.
#include <cuda_runtime.h>

#include <algorithm>

#include "backends/cuda/cuda_check.cuh"

namespace minidl::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T value) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = value;
}

}  // namespace

void launch_fill(void* p, int64_t n, DType dtype, double value) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  // Enough blocks to fill the device, capped: the grid-stride loop covers the rest.
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<static_cast<unsigned>(blocks), kThreads>>>(static_cast<T*>(p), n, static_cast<T>(value));
  });
  MINIDL_CUDA_CHECK(cudaGetLastError(), "cuda backend: fill kernel launch on ", n, " elements of ", dtype_name(dtype),
                    " failed");
}

}  // namespace minidl::cuda
