// Settings and statistics of the cuda backend that any program may use, with or without the CUDA build (no
// CUDA header here; backends/cuda_settings.cpp is always compiled).
//  - TF32: off by default, so fp32 convolutions and matmuls round like the CPU; MINIDL_CUDA_TF32=1 or
//    set_cuda_allow_tf32(true) lets cuDNN and cuBLAS use TF32 tensor cores (about 10 mantissa bits per product).
//  - Deterministic mode: MINIDL_CUDA_DETERMINISTIC=1 or set_cuda_deterministic(true) restricts cuDNN to
//    algorithms that give the same bits on every run (e.g. no atomics in backward-filter).
//  - Convolution algorithm search: cuDNN's heuristics by default; MINIDL_CUDNN_BENCHMARK=1 or
//    set_cudnn_benchmark(true) times the candidates on the first call of each shape (cudnnFind), like
//    torch.backends.cudnn.benchmark. Either way the choice is cached per shape.
//  - Workspace cap: MINIDL_CUDNN_WORKSPACE_MB (default 1024) or set_cudnn_workspace_limit(bytes); algorithms
//    needing more are skipped.
// The environment is read once, at the first query; the setters override it. Changing a setting affects only
// shapes that are not cached yet unless it is part of the cache key (TF32 and determinism are).
#pragma once

#include <cstddef>
#include <string>

#include "tensor/allocator.h"

namespace minidl {

bool cuda_allow_tf32();
void set_cuda_allow_tf32(bool on);
bool cuda_deterministic();
void set_cuda_deterministic(bool on);
bool cudnn_benchmark();
void set_cudnn_benchmark(bool on);
size_t cudnn_workspace_limit();
void set_cudnn_workspace_limit(size_t bytes);

/// Live / peak / reserved bytes of the CUDA caching allocator (throws without the CUDA build).
AllocatorStats cuda_memory_stats();
/// "live 12.3 MiB, peak 40.1 MiB, reserved 64.0 MiB", for logs.
std::string cuda_memory_summary();
void cuda_reset_peak_memory();
/// Returns the allocator's cached blocks to the driver.
void cuda_empty_cache();

}  // namespace minidl
