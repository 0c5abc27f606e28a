// The CUDA device queries for a library built without CUDA: no device, and a message that says why.
// (With CUDA, backends/cuda/cuda_device.cpp defines them instead.)
#ifndef MINIDL_HAVE_CUDA

#include "backends/cuda/cuda_device.h"

namespace minidl {

int cuda_device_count() { return 0; }
std::string cuda_device_status() { return "this minidl was built without CUDA"; }

}  // namespace minidl

#endif  // MINIDL_HAVE_CUDA
