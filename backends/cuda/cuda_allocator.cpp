// The CUDA device allocator: cudaMalloc/cudaFree behind a size-class free list, because cudaMalloc and
// especially cudaFree (which synchronises the device) are far too slow to call for every activation of every
// step. Registered for DeviceType::CUDA at load time. All work runs on the default stream, so a block freed
// and handed out again is ordered after every kernel that used it.
//
// Limitation: the Allocator interface carries no device index, so blocks come from the current device (0
// unless the program called cudaSetDevice); multi-GPU placement arrives with the multi-device work.
#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "backends/cuda/cuda_check.cuh"
#include "core/byte_size.h"
#include "tensor/allocator.h"

namespace minidl::cuda {
namespace {

// 512-byte classes below 1 MiB, 2 MiB classes above: small tensors waste little, big ones reuse well.
size_t round_size(size_t n) {
  constexpr size_t kSmall = 512, kLarge = 2 << 20, kThreshold = 1 << 20;
  if (n == 0) n = 1;
  const size_t q = n < kThreshold ? kSmall : kLarge;
  return (n + q - 1) / q * q;
}

class CachingCudaAllocator final : public Allocator {
 public:
  // The limit is read from MINIDL_MEMORY_LIMIT on first use, not here: this allocator is built during static
  // initialisation, where a malformed value would terminate the program instead of reaching main's handler.
  CachingCudaAllocator() = default;
  void* allocate(size_t nbytes) override {
    require_device("allocating on cuda");
    if (nbytes == 0) return nullptr;  // an empty tensor owns no device memory
    const size_t sz = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = nullptr;
    auto it = free_.find(sz);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= sz;
    } else {
      read_env_limit_locked();
      if (limit_ != 0 && live_ + cached_ + sz > limit_) {
        release_all_locked();  // cached blocks of other sizes count against the cap
        MINIDL_CHECK(live_ + sz <= limit_, "CUDA allocator: out of memory under the limit: allocating ",
                     format_bytes(nbytes), " would exceed the memory limit of ", format_bytes(limit_), " with ",
                     format_bytes(live_), " live (set by MINIDL_MEMORY_LIMIT or set_memory_limit)");
      }
      cudaError_t err = cudaMalloc(&p, sz);
      if (err == cudaErrorMemoryAllocation) {
        // Give the cached blocks back to the driver once, then retry.
        cudaGetLastError();
        release_all_locked();
        err = cudaMalloc(&p, sz);
      }
      if (err != cudaSuccess) {
        cudaGetLastError();
        MINIDL_FAIL("CUDA allocator: cudaMalloc of ", sz, " bytes failed: ", cudaGetErrorName(err), ": ",
                    cudaGetErrorString(err), " (live ", live_, " bytes)");
      }
    }
    live_ += sz;
    peak_ = std::max(peak_, live_);
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    if (p == nullptr) return;
    const size_t sz = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    live_ -= sz;
    free_[sz].push_back(p);
    cached_ += sz;
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {live_, peak_, live_ + cached_};
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = live_;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_all_locked();
  }

  void set_limit(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    limit_read_ = true;
    limit_ = bytes;
    if (limit_ != 0 && live_ + cached_ > limit_) release_all_locked();
  }

  size_t limit() const override {
    std::lock_guard<std::mutex> lock(mu_);
    read_env_limit_locked();
    return limit_;
  }

 private:
  void read_env_limit_locked() const {
    if (limit_read_) return;
    limit_ = memory_limit_from_env();  // throws minidl::Error on a malformed value; read again next time then
    limit_read_ = true;
  }

  void release_all_locked() {
    for (auto& [sz, list] : free_) {
      for (void* p : list) cudaFree(p);  // errors here (e.g. at driver shutdown) leave nothing to recover
      list.clear();
    }
    cudaGetLastError();
    cached_ = 0;
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t live_ = 0, peak_ = 0, cached_ = 0;
  mutable size_t limit_ = 0;  // 0 = unlimited
  mutable bool limit_read_ = false;
};

// Never destroyed: tensors with static lifetime may free device blocks after static destructors have run.
[[maybe_unused]] const bool registered = [] {
  register_allocator(DeviceType::CUDA, new CachingCudaAllocator());
  return true;
}();

}  // namespace
}  // namespace minidl::cuda
