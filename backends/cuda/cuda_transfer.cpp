// Pinned, asynchronous host-to-device copies, registered as CUDA's pinned transfer (tensor/device_transfer.h). The
// staging pool keeps page-locked blocks (cudaHostAlloc is slow, like cudaMalloc); each block carries an event recorded
// after its copy, and is handed out again only once that event has completed, so a block is never overwritten while the
// DMA reads it.
#include <cstring>
#include <mutex>
#include <vector>

#include "backends/cuda/cuda_handles.cuh"
#include "tensor/device_transfer.h"

namespace minidl {
namespace {

struct PinnedBlock {
  void* p = nullptr;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
};

class PinnedPool {
 public:
  PinnedBlock take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].bytes >= bytes && cudaEventQuery(blocks_[i].done) == cudaSuccess) {
        PinnedBlock b = blocks_[i];
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
        return b;
      }
    }
    cudaGetLastError();  // cudaEventQuery's cudaErrorNotReady is not sticky, but clear it anyway
    PinnedBlock b;
    b.bytes = bytes;
    MINIDL_CUDA_CHECK(cudaHostAlloc(&b.p, bytes, cudaHostAllocDefault), "to_cuda: pinned staging buffer of ", bytes,
                      " bytes");
    MINIDL_CUDA_CHECK(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming), "to_cuda: staging event");
    return b;
  }
  void give_back(const PinnedBlock& b) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.push_back(b);
  }

 private:
  std::mutex mu_;
  std::vector<PinnedBlock> blocks_;  // never freed: the pool lives as long as the process
};

PinnedPool& pool() {
  static PinnedPool* p = new PinnedPool();  // leaked on purpose: blocks may be in flight at exit
  return *p;
}

}  // namespace

static Tensor to_cuda_pinned(const Tensor& t, Device d) {
  MINIDL_CHECK(d.is_cuda(), "to_cuda: target device ", d.str(), " is not a CUDA device");
  MINIDL_CHECK(t.device().is_cpu(), "to_cuda: source lives on ", t.device().str(), ", not on the host");
  cuda::require_device("copying a batch to the GPU");
  const Tensor h = t.contiguous();
  Tensor out = empty(h.sizes(), TensorOptions{}.dtype(h.dtype()).device(d));
  const size_t n = h.nbytes();
  if (n == 0) return out;
  PinnedBlock b = pool().take(n);
  std::memcpy(b.p, h.raw_data(), n);
  MINIDL_CUDA_CHECK(cudaMemcpyAsync(cuda::device_ptr(out), b.p, n, cudaMemcpyHostToDevice, cuda::current_stream()),
                    "to_cuda: copy of ", n, " bytes to ", d.str());
  MINIDL_CUDA_CHECK(cudaEventRecord(b.done, cuda::current_stream()), "to_cuda: recording the copy's event");
  pool().give_back(b);
  return out;
}

[[maybe_unused]] static const bool registered = [] {
  register_pinned_transfer(DeviceType::CUDA, &to_cuda_pinned);
  return true;
}();

}  // namespace minidl
