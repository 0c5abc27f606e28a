// cuBLAS matmul of the cuda backend (cublas_matmul.cpp); no CUDA header here, so cuda_backend.cpp forwards with
// one line. fp32 uses CUBLAS_COMPUTE_32F (no TF32, rounds like the CPU) unless cuda_allow_tf32()
// (backends/cuda_settings.h), then CUBLAS_COMPUTE_32F_FAST_TF32; fp64 uses DGEMM.
#pragma once

#include "tensor/tensor.h"

namespace minidl::cuda {

/// Backend::matmul's contract: out (M,N) = op(a) (M,K) @ op(b) (K,N), or batched (B,M,K) @ (B,K,N); out
/// contiguous; a and b may be any views (row-major or transposed views go straight to cuBLAS).
void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

}  // namespace minidl::cuda
