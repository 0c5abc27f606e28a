// Host-to-GPU transfer for the data loader, callable with or without the CUDA build (no CUDA header here).
#pragma once

#include "tensor/tensor.h"

namespace minidl {

/// A copy of host tensor `t` on CUDA device `d`. With `pinned`, the bytes are staged in page-locked memory
/// from a reused pool and sent by cudaMemcpyAsync on the device's stream: the caller (a loader worker) does not
/// wait for the transfer, and kernels queued later on that stream see the data. Without, a plain (synchronous,
/// pageable) copy. Throws a clear error without the CUDA build or without a device.
Tensor to_cuda(const Tensor& t, Device d, bool pinned);

}  // namespace minidl
