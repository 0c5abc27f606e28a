// CUDA device discovery that any program may call, with or without the CUDA build: no CUDA header is included
// here, and a library built without CUDA answers 0 (backends/cuda_stub.cpp).
#pragma once

#include <string>

namespace minidl {

/// Number of usable CUDA devices; 0 when there is no driver, no device, or no CUDA in this build.
int cuda_device_count();
/// Why cuda_device_count() is what it is, for messages: "2 devices", "cudaGetDeviceCount: <error>", or
/// "this minidl was built without CUDA".
std::string cuda_device_status();

}  // namespace minidl
