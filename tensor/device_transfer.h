// Host-to-device transfers for the data loader (data/ may not include backends/): a device backend registers
// its pinned, asynchronous copy at load time (the cuda backend: backends/cuda/cuda_transfer.cpp).
#pragma once

#include "tensor/tensor.h"

namespace minidl {

/// A pinned host-to-device copy: the result on `d`, the caller not waiting for the transfer.
using PinnedTransferFn = Tensor (*)(const Tensor& host, Device d);
void register_pinned_transfer(DeviceType t, PinnedTransferFn fn);

/// Host tensor t on device d: with `pinned` through the device type's registered pinned transfer (throws when
/// there is none, e.g. without the CUDA build), else t.to(d).
Tensor transfer_to(const Tensor& t, Device d, bool pinned);

}  // namespace minidl
