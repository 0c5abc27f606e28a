// Every launcher of kernels/launch.h instantiated for the host executor: the CUDA kernel bodies compiled by
// the host compiler, for the cuda-host backend (built in every configuration, with or without nvcc).
#include "backends/cuda/kernels/host_exec.h"
#include "backends/cuda/kernels/launch_impl.h"

namespace minidl::cuda::kern {

#define MINIDL_CUDA_EXEC HostExec
MINIDL_CUDA_LAUNCHERS(MINIDL_CUDA_INSTANTIATE_LAUNCHER)
#undef MINIDL_CUDA_EXEC

}  // namespace minidl::cuda::kern
