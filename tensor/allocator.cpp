// The caching CPU allocator (size-bucketed free lists, 64-byte aligned) and the per-device allocator registry.
#include "tensor/allocator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/byte_size.h"
#include "core/env.h"
#include "core/error.h"
#include "tensor/alloc_trace.h"

namespace minidl {
namespace {

// Blocks are rounded up to a size class: 64-byte multiples below 1 MiB, 256 KiB multiples above (powers of two
// would waste up to half of a big activation). A freed block goes to its class's free list and is handed out
// again for the same class, so a training step reuses last step's activation buffers.
size_t round_size(size_t n) {
  if (n == 0) n = 1;
  constexpr size_t kSmall = 64, kLarge = 256 * 1024, kThreshold = 1 << 20;
  const size_t q = n < kThreshold ? kSmall : kLarge;
  return (n + q - 1) / q * q;
}

// A small number per thread, for the free lists below: which thread freed a block.
uint32_t this_thread_tag() {
  static std::atomic<uint32_t> next{0};
  thread_local const uint32_t tag = next.fetch_add(1, std::memory_order_relaxed);
  return tag;
}

// How far back a free list is searched for a block the calling thread freed itself.
constexpr size_t kOwnBlockSearch = 8;

class CachingCpuAllocator final : public Allocator {
 public:
  // The limit is read from MINIDL_MEMORY_LIMIT on first use, not here: the registry may build this allocator
  // during static initialisation (another device registering), where a malformed value would terminate the
  // program instead of reaching main's error handler.
  CachingCpuAllocator() = default;
  void* allocate(size_t nbytes) override {
    const size_t sz = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = nullptr;
    auto it = free_.find(sz);
    if (it != free_.end() && !it->second.empty()) {
      // Prefer the most recent block this thread freed: its lines are likely still in this core's caches. Taken
      // from another core, every line moves over first (threads running independent work, such as the packed
      // model's per-thread passes, would otherwise trade their buffers at each allocation), which costs most when
      // the two cores share no cache.
      auto& list = it->second;
      const uint32_t tag = this_thread_tag();
      size_t pick = list.size() - 1;
      for (size_t i = 0; i < std::min(list.size(), kOwnBlockSearch); ++i) {
        if (list[list.size() - 1 - i].tag == tag) {
          pick = list.size() - 1 - i;
          break;
        }
      }
      p = list[pick].p;
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(pick));
      cached_ -= sz;
    } else {
      read_env_limit_locked();
      if (limit_ != 0 && live_ + cached_ + sz > limit_) {
        // Cached blocks of other sizes count against the cap: give them back before giving up.
        release_all_locked();
        MINIDL_CHECK(live_ + sz <= limit_, "cpu allocator: out of memory under the limit: allocating ",
                     format_bytes(nbytes), " would exceed the memory limit of ", format_bytes(limit_), " with ",
                     format_bytes(live_), " live (set by MINIDL_MEMORY_LIMIT or set_memory_limit)");
      }
      p = std::aligned_alloc(64, sz);
      if (p == nullptr) {
        // Give the cache back to the system once, then retry.
        release_all_locked();
        p = std::aligned_alloc(64, sz);
      }
      MINIDL_CHECK(p != nullptr, "cpu allocator: out of memory allocating ", sz, " bytes (live ", live_, " bytes)");
    }
    live_ += sz;
    peak_ = std::max(peak_, live_);
    if (detail::cpu_alloc_trace_on()) detail::trace_alloc(p, sz, live_);
    return p;
  }
  void deallocate(void* p, size_t nbytes) override {
    if (p == nullptr) return;
    const size_t sz = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (detail::cpu_alloc_trace_on()) detail::trace_free(p);
    live_ -= sz;
    free_[sz].push_back({p, this_thread_tag()});
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
  ~CachingCpuAllocator() override { release_all_locked(); }

 private:
  void release_all_locked() {
    for (auto& [sz, list] : free_) {
      for (const FreeBlock& b : list) std::free(b.p);
      list.clear();
    }
    cached_ = 0;
  }
  struct FreeBlock {
    void* p;
    uint32_t tag;  // this_thread_tag() of the thread that freed it
  };
  mutable std::mutex mu_;
  std::map<size_t, std::vector<FreeBlock>> free_;
  size_t live_ = 0, peak_ = 0, cached_ = 0;
  void read_env_limit_locked() const {
    if (limit_read_) return;
    limit_ = memory_limit_from_env();  // throws minidl::Error on a malformed value; read again next time then
    limit_read_ = true;
  }
  mutable size_t limit_ = 0;  // 0 = unlimited
  mutable bool limit_read_ = false;
};

std::array<Allocator*, 2>& registry() {
  static CachingCpuAllocator* cpu = new CachingCpuAllocator();  // leaked on purpose: outlives static tensors
  static std::array<Allocator*, 2> r{cpu, nullptr};
  return r;
}

}  // namespace

Allocator& allocator_for(Device d) {
  Allocator* a = registry()[static_cast<size_t>(d.type)];
  MINIDL_CHECK(a != nullptr, "no allocator for device ", d.str(),
               d.is_cuda() ? " (this minidl was built without the CUDA backend)" : "");
  return *a;
}

void register_allocator(DeviceType t, Allocator* a) { registry()[static_cast<size_t>(t)] = a; }

size_t memory_limit_from_env() {
  const auto v = env_string("MINIDL_MEMORY_LIMIT");
  return v ? static_cast<size_t>(parse_byte_size(*v, "MINIDL_MEMORY_LIMIT")) : 0;
}

void set_memory_limit(Device d, size_t bytes) { allocator_for(d).set_limit(bytes); }

size_t memory_limit(Device d) { return allocator_for(d).limit(); }

}  // namespace minidl
