// The reference fused activation quantizers (Backend's default quantize_clip_forward / _backward and
// pact_forward, spec/quant.md
// section 1.7): x / alpha, clamp, nearest level (the midpoint search of project_to_levels, ties low) or the
// uniform rounding, times alpha, plus the straight-through mask and the alpha coefficient, in plain loops on
// host memory (inputs are read in row-major order through to_vector, any layout). It is the oracle the fast backends
// are compared with, so every step uses the same dtype arithmetic as the unfused chain of primitives it replaces (div,
// clamp, project, mul, eq, mul, sub).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/backend.h"

namespace minidl {
namespace {

// Writes `src` (contiguous) into `out`: directly when out is contiguous, else through the backend's copy.
void store(Backend& be, Tensor& out, const Tensor& src) {
  if (out.is_contiguous()) {
    std::copy_n(static_cast<const uint8_t*>(src.raw_data()), src.nbytes(), static_cast<uint8_t*>(out.raw_data()));
  } else {
    be.copy(out, src);
  }
}

void check_output(const char* op, const char* what, const Tensor& t, DType dt, const Shape& shape) {
  MINIDL_CHECK(t.device().is_cpu(), op, ": ", what, " lives on ", t.device().str(),
               ", the reference runs on host memory");
  MINIDL_CHECK(t.dtype() == dt && t.sizes() == shape, op, ": ", what, " must be ", dtype_name(dt), " ",
               shape_str(shape), ", got ", dtype_name(t.dtype()), " ", shape_str(t.sizes()));
}

}  // namespace

void Backend::quantize_clip_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha,
                                    const Tensor& levels, double steps, double lo, double hi) {
  const char* op = "quantize_clip_forward";
  MINIDL_CHECK(x.defined() && x.device().is_cpu(), op, ": backend ", name(), " has no kernel for this device");
  MINIDL_CHECK(is_floating(x.dtype()), op, ": x must be float32 or float64, got ", dtype_name(x.dtype()));
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && alpha.dtype() == x.dtype() && alpha.device().is_cpu(), op,
               ": alpha must be one host element of x's dtype");
  MINIDL_CHECK(lo <= hi, op, ": clip range [", lo, ", ", hi, "] is empty");
  check_output(op, "out", out, x.dtype(), x.sizes());
  if (mask.defined()) check_output(op, "mask", mask, DType::u8, x.sizes());
  if (coef.defined()) check_output(op, "coef", coef, x.dtype(), x.sizes());
  if (levels.defined()) {
    MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0 && levels.dtype() == x.dtype(), op,
                 ": levels must be a non-empty 1-D tensor of x's dtype, got ", dtype_name(levels.dtype()), " ",
                 shape_str(levels.sizes()));
  } else {
    MINIDL_CHECK(steps > 0.0 && std::isfinite(steps), op, ": the uniform path needs steps > 0, got ", steps);
  }
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> lv, mid;
    if (levels.defined()) {
      lv = levels.to_vector<T>();
      MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), op, ": levels must be sorted ascending");
      for (size_t k = 0; k + 1 < lv.size(); ++k) mid.push_back((lv[k] + lv[k + 1]) / T(2));
    }
    const T a = static_cast<T>(alpha.item<double>());
    const T tlo = static_cast<T>(lo), thi = static_cast<T>(hi), ts = static_cast<T>(steps);
    const std::vector<T> xv = x.to_vector<T>();
    const size_t n = xv.size();
    const TensorOptions host = TensorOptions{}.dtype(x.dtype());
    Tensor o = empty(x.sizes(), host), c = empty(x.sizes(), host);
    Tensor m = empty(x.sizes(), TensorOptions{}.dtype(DType::u8));
    T* op_ = o.data<T>();
    T* cp = c.data<T>();
    uint8_t* mp = m.data<uint8_t>();
    for (size_t i = 0; i < n; ++i) {
      const T v = xv[i] / a;
      const T cl = std::min(std::max(v, tlo), thi);  // NaN stays NaN, as the clamp primitive
      T q;
      if (levels.defined()) {
        q = lv[static_cast<size_t>(std::lower_bound(mid.begin(), mid.end(), cl) - mid.begin())];
      } else {
        q = static_cast<T>(std::nearbyint(cl * ts)) / ts;
      }
      op_[i] = q * a;
      const uint8_t inside = v == cl ? 1 : 0;
      mp[i] = inside;
      cp[i] = q - v * static_cast<T>(inside);
    }
    store(*this, out, o);
    if (mask.defined()) store(*this, mask, m);
    if (coef.defined()) store(*this, coef, c);
  });
}

void Backend::quantize_clip_backward(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& mask,
                                     const Tensor& coef, double scale) {
  const char* op = "quantize_clip_backward";
  MINIDL_CHECK(gy.defined() && gy.device().is_cpu(), op, ": backend ", name(), " has no kernel for this device");
  MINIDL_CHECK(is_floating(gy.dtype()), op, ": gy must be float32 or float64, got ", dtype_name(gy.dtype()));
  if (gx.defined()) {
    check_output(op, "gx", gx, gy.dtype(), gy.sizes());
    check_output(op, "mask", mask, DType::u8, gy.sizes());
  }
  if (galpha.defined()) {
    MINIDL_CHECK(galpha.numel() == 1 && galpha.dtype() == gy.dtype() && galpha.device().is_cpu(), op,
                 ": galpha must be one host element of gy's dtype, got ", dtype_name(galpha.dtype()), " ",
                 shape_str(galpha.sizes()));
    check_output(op, "coef", coef, gy.dtype(), gy.sizes());
  }
  dispatch_floating(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const std::vector<T> g = gy.to_vector<T>();
    if (gx.defined()) {
      const std::vector<uint8_t> m = mask.to_vector<uint8_t>();
      Tensor o = empty(gy.sizes(), TensorOptions{}.dtype(gy.dtype()));
      T* p = o.data<T>();
      for (size_t i = 0; i < g.size(); ++i) p[i] = g[i] * static_cast<T>(m[i]);
      store(*this, gx, o);
    }
    if (galpha.defined()) {
      const std::vector<T> c = coef.to_vector<T>();
      double acc = 0.0;
      for (size_t i = 0; i < g.size(); ++i) acc += static_cast<double>(g[i] * c[i]);
      T s = static_cast<T>(acc);
      s = s * static_cast<T>(scale);
      galpha.data<T>()[0] = s;
    }
  });
}

namespace {
// The base class's backward from the input: out, mask and coef in x's layout and device, as the forward would have
// saved them.
struct ForwardTemporaries {
  Tensor out, mask, coef;
  explicit ForwardTemporaries(const Tensor& x) {
    const MemoryFormat fmt = x.is_channels_last() ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    const TensorOptions on = TensorOptions{}.device(x.device());
    out = empty(x.sizes(), on.dtype(x.dtype()), fmt);
    mask = empty(x.sizes(), on.dtype(DType::u8), fmt);
    coef = empty(x.sizes(), on.dtype(x.dtype()), fmt);
  }
};
}  // namespace

void Backend::quantize_clip_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                                const Tensor& alpha, const Tensor& levels, double steps, double lo,
                                                double hi, double scale) {
  MINIDL_CHECK(x.defined() && gy.defined() && x.sizes() == gy.sizes(),
               "quantize_clip_backward_from_input: x and gy must have one shape");
  if (!gx.defined() && !galpha.defined()) return;
  ForwardTemporaries t(x);
  quantize_clip_forward(t.out, t.mask, t.coef, x, alpha, levels, steps, lo, hi);
  quantize_clip_backward(gx, galpha, gy, t.mask, t.coef, scale);
}

void Backend::pact_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                       const Tensor& alpha, double k, double scale) {
  MINIDL_CHECK(x.defined() && gy.defined() && x.sizes() == gy.sizes(),
               "pact_backward_from_input: x and gy must have one shape");
  if (!gx.defined() && !galpha.defined()) return;
  ForwardTemporaries t(x);
  pact_forward(t.out, t.mask, t.coef, x, alpha, k);
  quantize_clip_backward(gx, galpha, gy, t.mask, t.coef, scale);
}

void Backend::pact_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha, double k) {
  const char* op = "pact_forward";
  MINIDL_CHECK(x.defined() && x.device().is_cpu(), op, ": backend ", name(), " has no kernel for this device");
  MINIDL_CHECK(is_floating(x.dtype()), op, ": x must be float32 or float64, got ", dtype_name(x.dtype()));
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && alpha.dtype() == x.dtype() && alpha.device().is_cpu(), op,
               ": alpha must be one host element of x's dtype");
  MINIDL_CHECK(k >= 1.0 && k == std::floor(k), op, ": the grid maximum k must be an integer >= 1, got ", k);
  check_output(op, "out", out, x.dtype(), x.sizes());
  if (mask.defined()) check_output(op, "mask", mask, DType::u8, x.sizes());
  if (coef.defined()) check_output(op, "coef", coef, x.dtype(), x.sizes());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const double ad = alpha.item<double>();
    const T a = static_cast<T>(ad), den = static_cast<T>(ad + 1e-6), tk = static_cast<T>(k);
    const std::vector<T> xv = x.to_vector<T>();
    const TensorOptions host = TensorOptions{}.dtype(x.dtype());
    Tensor o = empty(x.sizes(), host), c = empty(x.sizes(), host);
    Tensor m = empty(x.sizes(), TensorOptions{}.dtype(DType::u8));
    T* op_ = o.data<T>();
    T* cp = c.data<T>();
    uint8_t* mp = m.data<uint8_t>();
    for (size_t i = 0; i < xv.size(); ++i) {
      const T v = xv[i];
      // the unfused chain's steps: * k, / (a + 1e-6), round, clamp to [0, k], * a, / k
      const T r = static_cast<T>(std::nearbyint(v * tk / den));
      const T t = std::isnan(r) ? r : std::min(std::max(r, T(0)), tk);
      op_[i] = t * a / tk;
      mp[i] = (v > T(0) && v < a) ? 1 : 0;
      cp[i] = v > a ? T(1) : T(0);
    }
    store(*this, out, o);
    if (mask.defined()) store(*this, mask, m);
    if (coef.defined()) store(*this, coef, c);
  });
}

}  // namespace minidl
