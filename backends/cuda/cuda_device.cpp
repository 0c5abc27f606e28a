// CUDA device discovery. cudaGetDeviceCount fails (and leaves its output untouched) on a machine with no
// driver or no GPU, so the count starts at 0 and the sticky error is cleared; the reason is kept for messages.
#include "backends/cuda/cuda_device.h"

#include <string>

#include "backends/cuda/cuda_check.cuh"

namespace minidl {
namespace {

struct Probe {
  int count = 0;
  std::string status;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      n = 0;
      r.status = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    } else {
      r.status = "cudaGetDeviceCount: " + std::to_string(n) + (n == 1 ? " device" : " devices");
    }
    r.count = n;
    return r;
  }();
  return p;
}

}  // namespace

int cuda_device_count() { return probe().count; }
std::string cuda_device_status() { return probe().status; }

namespace cuda {

void require_device(const char* what) {
  MINIDL_CHECK(probe().count > 0, "CUDA: no device present (", probe().status, "); ", what, " needs a GPU");
}

}  // namespace cuda
}  // namespace minidl
