// Unsigned activation quantizer with a learnable clip (spec/quant.md section 1.7): x = X / alpha;
// APoT-I: c = clamp(x, 0, 1), dL/dX = g * 1[0 <= x <= 1]; APoT-C: c = min(x, 1) (no lower clamp; the uniform
// path then keeps negative codes, as the reference), dL/dX = g * 1[x <= 1]. out = alpha * q with
// q = P_L(c) or round(c * s) / s. dL/dalpha = sum g * (1[x > 1] + (q - x) * mask).
// One fused backend pass each way (Backend::quantize_clip_forward / _backward); forward saves the u8 input mask
// and the per-element alpha coefficient.
#include <limits>

#include "autograd/function.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct ActQuantFn : autograd::Function<ActQuantFn> {
  static constexpr const char* kName = "quant_activation";
  static Tensor forward(autograd::Context& ctx, const Tensor& X, const Tensor& alpha, const LevelSet& ls, Semantics sem,
                        double grad_scale) {
    checked_alpha(kName, X, alpha);
    MINIDL_CHECK(!ls.is_signed, kName, ": activations need an unsigned level set, got ", ls.str());
    const bool api = sem == Semantics::APoT_I;
    const double lo = api ? 0.0 : -std::numeric_limits<double>::infinity();
    const MemoryFormat fmt = follow_format(X.sizes(), {X});
    Tensor out = new_like(X.sizes(), X, fmt);
    // The STE mask is exactly "the clamp left x unchanged" (0 <= x <= 1 for I, x <= 1 for C), and the alpha
    // coefficient 1[x > 1] + (q - x) * mask equals q - x * mask (above the clip q = 1; below it for APoT-I,
    // q = 0 and the mask is 0). The mask is stored as u8: a quarter of a float32 activation.
    Tensor mask, coef;
    if (ctx.recording()) {
      mask = empty(X.sizes(), TensorOptions().dtype(DType::u8).device(X.device()), fmt);
      coef = new_like(X.sizes(), X, fmt);
    }
    const Tensor levels = ls.rounding ? Tensor() : levels_like(ls, X);
    backend_for(X).quantize_clip_forward(out, mask, coef, X, alpha_scalar(alpha), levels, ls.steps, lo, 1.0);
    if (ctx.recording()) {
      ctx.save(mask, autograd::SaveKind::Mask);
      ctx.save(coef, autograd::SaveKind::Coefficient);
      ctx.data["grad_scale"] = grad_scale;
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return out;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    return clip_backward(ctx, g[0], ctx.get<Shape>("alpha_shape"), ctx.get<double>("grad_scale"));
  }
};

}  // namespace

Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale) {
  return ActQuantFn::apply(x, alpha, levels, sem, grad_scale);
}

}  // namespace minidl::quant
