// Shared-kernel convention of the CUDA backend. A kernel's arithmetic and indexing are written once, as MINIDL_HD
// functions in headers under backends/cuda/kernels/, over raw pointers and an element (or row / channel) index.
// nvcc compiles them into __global__ launchers for the cuda backend; the host C++ compiler compiles the same
// headers into the "cuda-host" backend, which loops over the indices on the CPU, so every kernel body runs in
// CI's conformance suite against ref on machines without a GPU.
//
// The launchers (launch_impl.h) hand the bodies to the executor as lambdas marked MINIDL_HD_LAMBDA: nvcc needs
// them __host__ __device__ (--extended-lambda) to run them inside a __global__ function.
#pragma once

#if defined(__CUDACC__)
#define MINIDL_HD __host__ __device__ inline
#define MINIDL_HD_LAMBDA __host__ __device__
#else
#define MINIDL_HD inline
#define MINIDL_HD_LAMBDA
#endif
