// The reference signed weight quantizer (Backend::quantize_weight_forward): plain loops on host memory, elements
// read in row-major order through to_vector (any layout), the arithmetic of quant_weight_math.h. It is the oracle
// the cpu backend's blocks are compared with.
#include <algorithm>
#include <vector>

#include "backends/backend.h"
#include "backends/quant_weight_math.h"

namespace minidl {

namespace {

void check_weight_args(const char* op, const std::string& be, const Tensor& out, const Tensor& coef,
                       const Tensor& inside, const Tensor& w, const Tensor& alpha, const Tensor& levels, double steps) {
  MINIDL_CHECK(w.defined() && w.device().is_cpu(), op, ": backend ", be, " has no kernel for this device");
  MINIDL_CHECK(is_floating(w.dtype()), op, ": w must be float32 or float64, got ", dtype_name(w.dtype()));
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && alpha.dtype() == w.dtype() && alpha.device().is_cpu(), op,
               ": alpha must be one host element of w's dtype");
  MINIDL_CHECK(coef.defined() == inside.defined(), op, ": give both coef and inside or neither");
  for (const Tensor* t : {&out, &coef, &inside}) {
    if (t == &out || t->defined()) {
      MINIDL_CHECK(t->defined() && t->dtype() == w.dtype() && t->sizes() == w.sizes() && t->device().is_cpu(), op,
                   ": outputs must be host tensors of w's dtype and shape ", shape_str(w.sizes()));
    }
  }
  if (levels.defined()) {
    MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0 && levels.dtype() == w.dtype() && levels.device().is_cpu(), op,
                 ": levels must be a non-empty 1-D host tensor of w's dtype");
  } else {
    MINIDL_CHECK(steps > 0.0 && std::isfinite(steps), op, ": the rounding path needs steps > 0, got ", steps);
  }
}

}  // namespace

void Backend::quantize_weight_forward(Tensor& out, Tensor& coef, Tensor& inside, const Tensor& w, const Tensor& alpha,
                                      const Tensor& levels, double steps) {
  const char* op = "quantize_weight_forward";
  check_weight_args(op, name(), out, coef, inside, w, alpha, levels, steps);
  dispatch_floating(w.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    namespace qm = quant_weight_math;
    std::vector<T> lv, mid;
    if (levels.defined()) {
      lv = levels.to_vector<T>();
      MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), op, ": levels must be sorted ascending");
      for (size_t k = 0; k + 1 < lv.size(); ++k) mid.push_back((lv[k] + lv[k + 1]) / T(2));
    }
    const T a = static_cast<T>(alpha.item<double>()), st = static_cast<T>(steps);
    const std::vector<T> wv = w.to_vector<T>();
    std::vector<T> ov(wv.size()), cv(wv.size()), iv(wv.size());
    for (size_t i = 0; i < wv.size(); ++i) {
      const T x = wv[i] / a;
      const T c = qm::clamp_unit(x);
      const T q =
          levels.defined() ? qm::project_signed(c, lv.data(), mid.data(), mid.size()) : qm::round_to_grid(c, st);
      ov[i] = q * a;
      qm::weight_coef(x, q, iv[i], cv[i]);
    }
    auto store = [&](Tensor& t, const std::vector<T>& v) {
      // row-major values into t's own layout (built flat: from_vector reads an empty shape as 1-D, and t may be
      // 0-dim)
      const Tensor src =
          from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(t.dtype())).reshape(t.sizes());
      copy(t, src);
    };
    store(out, ov);
    if (coef.defined()) {
      store(coef, cv);
      store(inside, iv);
    }
  });
}

}  // namespace minidl
