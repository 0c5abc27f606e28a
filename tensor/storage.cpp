// Storage: allocation through the device's allocator.
#include "tensor/storage.h"

namespace minidl {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  allocator_ = &allocator_for(device);
  data_ = allocator_->allocate(nbytes);
}

std::shared_ptr<Storage> Storage::take_over(Storage& from) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = from.data_;
  s->nbytes_ = from.nbytes_;
  s->device_ = from.device_;
  s->allocator_ = from.allocator_;
  from.data_ = nullptr;
  from.nbytes_ = 0;
  return s;
}

Storage::~Storage() {
  if (data_ != nullptr) allocator_->deallocate(data_, nbytes_);
}

}  // namespace minidl
