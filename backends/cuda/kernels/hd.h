// Shared-kernel convention of the CUDA backend. A kernel's arithmetic and indexing are written once, as MINIDL_HD
// functions in headers under backends/cuda/kernels/, over raw pointers and an element (or row / channel) index.
// nvcc compiles them into __global__ launchers for the cuda backend; the host C++ compiler compiles the same
// headers into the "cuda-host" backend, which loops over the indices on the CPU, so every kernel body runs in
// CI's conformance suite against ref on machines without a GPU.
#pragma once

#if defined(__CUDACC__)
#define MINIDL_HD __host__ __device__ inline
#else
#define MINIDL_HD inline
#endif
