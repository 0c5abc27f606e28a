// to_cuda for a library built without CUDA (backends/cuda/cuda_transfer.cpp has the real one).
#ifndef MINIDL_HAVE_CUDA

#include "backends/cuda_transfer.h"

namespace minidl {

Tensor to_cuda(const Tensor&, Device d, bool) {
  MINIDL_FAIL("copy to ", d.str(), ": this minidl was built without CUDA");
}

}  // namespace minidl

#endif  // MINIDL_HAVE_CUDA
