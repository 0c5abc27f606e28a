// The device executor of the shared kernels (the "cuda" backend): for_each is a grid-stride __global__ loop,
// reduce_groups runs one block of kReduceLanes threads per group (lane t folds elements t, t + lanes, ...,
// then a fixed shared-memory tree; groups of at most kShortReduce elements one thread each): no atomics, so every run
// gives the same bits. All launches go to the default stream, in order, like the caching allocator assumes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backends/cuda/cuda_check.cuh"
#include "backends/cuda/kernels/reduce.h"

namespace minidl::cuda::kern {

template <class F>
__global__ void for_each_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

template <class Acc, class Load, class Combine, class Store>
__global__ void __launch_bounds__(kReduceLanes)
    reduce_groups_kernel(int64_t groups, int64_t len, Acc init, Load load, Combine combine, Store store) {
  __shared__ Acc part[kReduceLanes];
  const int t = static_cast<int>(threadIdx.x);
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    Acc a = init;
    for (int64_t r = t; r < len; r += kReduceLanes) a = combine(a, load(g, r));
    part[t] = a;
    __syncthreads();
    for (int s = kReduceLanes / 2; s > 0; s >>= 1) {
      if (t < s) part[t] = combine(part[t], part[t + s]);
      __syncthreads();
    }
    if (t == 0) store(g, part[0]);
    __syncthreads();  // part[] is reused by the next group of this block
  }
}

struct DeviceExec {
  static constexpr int kThreads = 256;

  template <class F>
  static void for_each(int64_t n, F f) {
    if (n <= 0) return;
    // enough blocks to fill any current GPU; the grid-stride loop covers the rest
    const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{1} << 16);
    for_each_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(n, f);
    MINIDL_CUDA_CHECK(cudaGetLastError(), "cuda backend: kernel launch over ", n, " elements failed");
  }

  template <class Acc, class Load, class Combine, class Store>
  static void reduce_groups(int64_t groups, int64_t len, Acc init, Load load, Combine combine, Store store) {
    if (groups <= 0) return;
    if (len <= kShortReduce) {  // one thread per group, left to right: a block of lanes would mostly idle
      for_each(groups, [=] __device__(int64_t g) {
        Acc a = init;
        for (int64_t r = 0; r < len; ++r) a = combine(a, load(g, r));
        store(g, a);
      });
      return;
    }
    const int64_t blocks = std::min<int64_t>(groups, int64_t{1} << 16);
    reduce_groups_kernel<<<static_cast<unsigned>(blocks), kReduceLanes>>>(groups, len, init, load, combine, store);
    MINIDL_CUDA_CHECK(cudaGetLastError(), "cuda backend: reduction launch over ", groups, " groups of ", len,
                      " elements failed");
  }
};

}  // namespace minidl::cuda::kern
