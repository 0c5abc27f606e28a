// Storage: a ref-counted buffer owned by a device allocator, plus the version counter that every in-place write
// bumps. Views and detach() share the Storage, hence the counter.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/allocator.h"
#include "tensor/device.h"

namespace minidl {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  /// A new Storage that takes `from`'s buffer over (version 0); `from` is left without memory (nbytes 0). For an
  /// op that owns a buffer alone and writes its output over it (Tensor::take_buffer).
  static std::shared_ptr<Storage> take_over(Storage& from);
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::atomic<uint64_t> version_{0};
};

}  // namespace minidl
