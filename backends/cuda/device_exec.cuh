// The device executor of the shared kernels (the "cuda" backend): for_each is a grid-stride __global__ loop,
// reduce_groups runs one block of kReduceLanes threads per chunk of kReduceChunk elements of a group (lane t
// folds elements t, t + lanes, ..., then a fixed shared-memory tree; a group's chunks then left to right; groups of at
// most kShortReduce elements one thread each): no atomics, so every run gives the same bits. All launches go to the
// default stream, in order, like the caching allocator assumes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backends/cuda/cuda_check.cuh"
#include "backends/cuda/kernels/reduce.h"
#include "tensor/allocator.h"

namespace minidl::cuda::kern {

template <class F>
__global__ void for_each_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

// Task q = (group q / chunks, chunk q % chunks): the lanes fold the chunk, the tree combines them; the result
// goes to partial[q] when the group has several chunks, else straight to store.
template <class Acc, class Load, class Combine, class Store>
__global__ void __launch_bounds__(kReduceLanes)
    reduce_chunks_kernel(int64_t tasks, int64_t chunks, int64_t len, Acc init, Load load, Combine combine, Acc* partial,
                         Store store) {
  __shared__ Acc part[kReduceLanes];
  const int t = static_cast<int>(threadIdx.x);
  for (int64_t q = blockIdx.x; q < tasks; q += gridDim.x) {
    const int64_t g = q / chunks, c = q - g * chunks;
    const int64_t begin = c * kReduceChunk, end = begin + kReduceChunk < len ? begin + kReduceChunk : len;
    Acc a = init;
    for (int64_t r = begin + t; r < end; r += kReduceLanes) a = combine(a, load(g, r));
    part[t] = a;
    __syncthreads();
    for (int s = kReduceLanes / 2; s > 0; s >>= 1) {
      if (t < s) part[t] = combine(part[t], part[t + s]);
      __syncthreads();
    }
    if (t == 0) {
      if (partial) {
        partial[q] = part[0];
      } else {
        store(g, part[0]);
      }
    }
    __syncthreads();  // part[] is reused by the block's next task
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
    const int64_t chunks = reduce_chunks(len), tasks = groups * chunks;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(tasks, int64_t{1} << 16));
    if (chunks == 1) {
      reduce_chunks_kernel<<<blocks, kReduceLanes>>>(tasks, chunks, len, init, load, combine,
                                                     static_cast<Acc*>(nullptr), store);
      MINIDL_CUDA_CHECK(cudaGetLastError(), "cuda backend: reduction launch over ", groups, " groups of ", len,
                        " elements failed");
      return;
    }
    // Scratch for the chunks' results from the caching allocator: freed right after the launches, which is safe
    // because every kernel runs on the default stream in order (see cuda_allocator.cpp).
    Allocator& alloc = allocator_for(Device::cuda(0));
    const size_t bytes = static_cast<size_t>(tasks) * sizeof(Acc);
    Acc* partial = static_cast<Acc*>(alloc.allocate(bytes));
    reduce_chunks_kernel<<<blocks, kReduceLanes>>>(tasks, chunks, len, init, load, combine, partial, store);
    const cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) {
      for_each(groups, [=] __device__(int64_t g) {
        Acc a = partial[g * chunks];
        for (int64_t c = 1; c < chunks; ++c) a = combine(a, partial[g * chunks + c]);
        store(g, a);
      });
    }
    alloc.deallocate(partial, bytes);
    MINIDL_CUDA_CHECK(err, "cuda backend: reduction launch over ", groups, " groups of ", len, " elements failed");
  }
};

}  // namespace minidl::cuda::kern
