// Helpers of the optimizers that update through the Backend primitives (sgd_update, adam_update,
// hysteresis_update), so parameters and their state stay on the parameters' device: the gradient in the
// primitive's form, and a contiguous stand-in for a strided parameter.
#pragma once

#include <type_traits>

#include "backends/backend.h"
#include "tensor/tensor.h"

namespace minidl::optim::detail {

/// p's gradient, detached, contiguous and on p's device (throws naming `op` if its dtype or shape differ).
inline Tensor device_grad(const Tensor& p, const char* op) {
  Tensor g = p.grad().detach();
  MINIDL_CHECK(g.dtype() == p.dtype(), op, ": gradient dtype ", dtype_name(g.dtype()), " differs from parameter dtype ",
               dtype_name(p.dtype()));
  MINIDL_CHECK(g.sizes() == p.sizes(), op, ": gradient shape ", shape_str(g.sizes()), " differs from parameter shape ",
               shape_str(p.sizes()));
  if (g.device() != p.device()) g = g.to(p.device());
  if (!g.is_contiguous()) g = g.contiguous();
  return g;
}

/// Calls fn(Tensor& w) with a contiguous tensor holding p's values on p's device: p itself (detached, same
/// storage) when it is contiguous, else a copy that is written back afterwards. Returns what fn returns.
template <typename F>
auto update_contiguous(const Tensor& p, F&& fn) {
  Tensor w = p.detach();
  if (w.is_contiguous()) return fn(w);
  Tensor c = w.contiguous();
  if constexpr (std::is_void_v<decltype(fn(c))>) {
    fn(c);
    w.copy_(c);
  } else {
    auto r = fn(c);
    w.copy_(c);
    return r;
  }
}

}  // namespace minidl::optim::detail
