// Device allocators. The CPU allocator caches freed blocks in size buckets (64-byte aligned) so a training step
// does not page-fault and zero its activations afresh every time; it reports live, peak and reserved bytes.
// Other devices (cuda) register their allocator at load time; tensor/ never includes a backend.
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
};

/// The allocator for a device; throws minidl::Error when none is registered (e.g. cuda without the CUDA build).
Allocator& allocator_for(Device d);
/// Called by a backend at static-init time to provide the allocator of a device type.
void register_allocator(DeviceType t, Allocator* a);

}  // namespace minidl
