// Gradient clipping (see clip_grad.h). The norm is accumulated in double on the host.
#include "optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "optim/host_update.h"

namespace minidl::optim {
namespace {

// Calls fn(T* g, n) on a host image of p's gradient, writing it back to the gradient afterwards.
template <typename F>
void on_grad(const Tensor& p, F&& fn) {
  Tensor g = p.grad();
  detail::update_on_host(g, [&](auto* d) { fn(d, g.numel()); });
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  MINIDL_CHECK(norm_type >= 1.0, "optim::clip_grad_norm_: norm_type must be >= 1 or infinity, got ", norm_type);
  MINIDL_CHECK(max_norm >= 0.0, "optim::clip_grad_norm_: max_norm must be non-negative, got ", max_norm);
  const bool inf = std::isinf(norm_type);
  double acc = 0.0;
  for (const auto& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = detail::host_grad(p, "optim::clip_grad_norm_");
    dispatch_floating(g.dtype(), "optim::clip_grad_norm_", [&](auto tag) {
      using T = decltype(tag);
      const T* d = g.data<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) {
        const double a = std::abs(static_cast<double>(d[i]));
        acc = inf ? std::max(acc, a) : acc + std::pow(a, norm_type);
      }
    });
  }
  const double total = inf ? acc : std::pow(acc, 1.0 / norm_type);
  MINIDL_CHECK(!error_if_nonfinite || std::isfinite(total), "optim::clip_grad_norm_: the total norm of order ",
               norm_type, " of the gradients is non-finite (", total, "), so it cannot be clipped");
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const auto& p : params) {
      if (!p.defined() || !p.grad().defined()) continue;
      on_grad(p, [&](auto* d, int64_t n) {
        using T = std::remove_pointer_t<decltype(d)>;
        for (int64_t i = 0; i < n; ++i) d[i] *= static_cast<T>(coef);
      });
    }
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip) {
  MINIDL_CHECK(clip >= 0.0, "optim::clip_grad_value_: clip value must be non-negative, got ", clip);
  for (const auto& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    on_grad(p, [&](auto* d, int64_t n) {
      using T = std::remove_pointer_t<decltype(d)>;
      const T lo = static_cast<T>(-clip), hi = static_cast<T>(clip);
      for (int64_t i = 0; i < n; ++i) d[i] = std::clamp(d[i], lo, hi);
    });
  }
}

}  // namespace minidl::optim
