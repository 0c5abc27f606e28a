// The registry of pinned transfers (see device_transfer.h): one slot per device type, filled at static-init
// time, read afterwards.
#include "tensor/device_transfer.h"

#include <array>

namespace minidl {
namespace {

std::array<PinnedTransferFn, 2>& slots() {
  static std::array<PinnedTransferFn, 2> s{};  // indexed by DeviceType (CPU, CUDA)
  return s;
}

}  // namespace

void register_pinned_transfer(DeviceType t, PinnedTransferFn fn) { slots().at(static_cast<size_t>(t)) = fn; }

Tensor transfer_to(const Tensor& t, Device d, bool pinned) {
  if (!pinned || d.is_cpu()) return t.to(d);
  const PinnedTransferFn fn = slots().at(static_cast<size_t>(d.type));
  MINIDL_CHECK(fn != nullptr, "pinned copy to ", d.str(), ": no backend provides one (this minidl was built without ",
               "CUDA?)");
  return fn(t, d);
}

}  // namespace minidl
