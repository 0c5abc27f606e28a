// Runs an elementwise loop on host memory (gradient clipping; the optimizers update through the Backend, see
// optim/device_update.h). A CPU parameter that is contiguous is updated in place
// through its data pointer; any other (a GPU tensor, a strided view) is copied to the host, updated, and copied
// back, so every rule is written once as a plain loop. The state tensors live on the host already.
#pragma once

#include "tensor/tensor.h"

namespace minidl::optim::detail {

/// The gradient of p as a contiguous host tensor of p's dtype (throws naming `op` if the dtypes differ).
inline Tensor host_grad(const Tensor& p, const char* op) {
  Tensor g = p.grad().detach();
  MINIDL_CHECK(g.dtype() == p.dtype(), op, ": gradient dtype ", dtype_name(g.dtype()), " differs from parameter dtype ",
               dtype_name(p.dtype()));
  MINIDL_CHECK(g.sizes() == p.sizes(), op, ": gradient shape ", shape_str(g.sizes()), " differs from parameter shape ",
               shape_str(p.sizes()));
  if (!g.device().is_cpu()) g = g.to(kCPU);
  if (!g.is_contiguous()) g = g.contiguous();
  return g;
}

/// Calls fn(T* data) on a host, contiguous image of p and writes it back when needed; bumps p's version.
template <typename F>
void update_on_host(const Tensor& p, F&& fn) {
  const bool direct = p.device().is_cpu() && p.is_contiguous();
  Tensor h = direct ? p.detach() : p.detach().to(kCPU).contiguous().clone();
  dispatch_floating(p.dtype(), "optim", [&](auto tag) {
    using T = decltype(tag);
    fn(h.data<T>());
  });
  if (direct) {
    p.bump_version();
  } else {
    Tensor dst = p.detach();
    dst.copy_(h.device() == p.device() ? h : h.to(p.device()));
  }
}

}  // namespace minidl::optim::detail
