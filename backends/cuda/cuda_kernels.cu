// The cuda backend's own kernels: every launcher of kernels/launch.h instantiated for the device executor.
// One translation unit on purpose: nvcc compiles for two architectures (sm_80 and sm_90), so every .cu costs
// CI time; the bodies themselves live in kernels/*.h, shared with the cuda-host backend.
#include "backends/cuda/device_exec.cuh"
#include "backends/cuda/kernels/launch_impl.h"

namespace minidl::cuda::kern {

#define MINIDL_CUDA_EXEC DeviceExec
MINIDL_CUDA_LAUNCHERS(MINIDL_CUDA_INSTANTIATE_LAUNCHER)
#undef MINIDL_CUDA_EXEC

}  // namespace minidl::cuda::kern
