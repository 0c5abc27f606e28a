// Device allocators. The CPU allocator caches freed blocks in size buckets (64-byte aligned) so a training step
// does not page-fault and zero its activations afresh every time; it reports live, peak and reserved bytes.
// Other devices (cuda) register their allocator at load time; tensor/ never includes a backend.
//
// Memory limit: an allocator may be capped (set_limit, set_memory_limit, or MINIDL_MEMORY_LIMIT=1G in the
// environment, read when the allocator is created and applied to every device's allocator). The cap bounds the
// bytes held from the system (live + cached, in the allocator's rounded block sizes): a request that would pass
// it first returns the cache, and if live bytes alone would still pass it, allocate() throws minidl::Error
// naming the request, the limit and the live bytes. So "the largest batch that fits under 1 GiB" is a question
// a program can ask by catching that error. Memory outside tensor storage (oneDNN scratchpads, std::vector
// buffers) is not counted.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/device.h"

namespace minidl {

struct AllocatorStats {
  size_t live_bytes = 0;      // handed out and not yet freed
  size_t peak_bytes = 0;      // max of live_bytes since the last reset_peak()
  size_t reserved_bytes = 0;  // live + cached (held from the system)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  /// Returns cached blocks to the system.
  virtual void empty_cache() = 0;
  /// Caps live + cached bytes at `bytes` (0 = no limit). A limit below what is live is allowed: the cache is
  /// returned and later allocations fail until enough is freed.
  virtual void set_limit(size_t bytes) = 0;
  /// The current cap in bytes, 0 when unlimited.
  virtual size_t limit() const = 0;
};

/// The limit every allocator starts with: MINIDL_MEMORY_LIMIT parsed as a byte count (K/M/G/T suffixes,
/// 1024-based), or 0 (unlimited) when unset. Throws minidl::Error on a malformed value.
size_t memory_limit_from_env();
/// Shorthands for allocator_for(d).set_limit / .limit.
void set_memory_limit(Device d, size_t bytes);
size_t memory_limit(Device d);

/// The allocator for a device; throws minidl::Error when none is registered (e.g. cuda without the CUDA build).
Allocator& allocator_for(Device d);
/// Called by a backend at static-init time to provide the allocator of a device type.
void register_allocator(DeviceType t, Allocator* a);

}  // namespace minidl
