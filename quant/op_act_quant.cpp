// Unsigned activation quantizer with a learnable clip (spec/quant.md section 1.7): x = X / alpha;
// APoT-I: c = clamp(x, 0, 1), dL/dX = g * 1[0 <= x <= 1]; APoT-C: c = min(x, 1) (no lower clamp; the uniform
// path then keeps negative codes, as the reference), dL/dX = g * 1[x <= 1]. out = alpha * q with
// q = P_L(c) or round(c * s) / s. dL/dalpha = sum g * (1[x > 1] + (q - x) * mask).
// Forward saves the input mask and the per-element alpha coefficient (two activation-sized tensors).
#include <limits>

#include "autograd/function.h"
#include "quant/ops.h"
#include "quant/op_utils.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct ActQuantFn : autograd::Function<ActQuantFn> {
  static constexpr const char* kName = "quant_activation";
  static Tensor forward(autograd::Context& ctx, const Tensor& X, const Tensor& alpha, const LevelSet& ls,
                        Semantics sem, double grad_scale) {
    checked_alpha(kName, X, alpha);
    MINIDL_CHECK(!ls.is_signed, kName, ": activations need an unsigned level set, got ", ls.str());
    const Tensor a = alpha_scalar(alpha);
    const Tensor x = div_raw(X, a);
    const bool api = sem == Semantics::APoT_I;
    const double lo = api ? 0.0 : -std::numeric_limits<double>::infinity();
    const Tensor c = unary_raw(UnaryOp::Clamp, x, lo, 1.0);
    const Tensor q = project(c, ls);
    Tensor out = mul_raw(q, a);
    if (ctx.recording()) {
      // The STE mask is exactly "the clamp left x unchanged" (0 <= x <= 1 for I, x <= 1 for C), and the alpha
      // coefficient 1[x > 1] + (q - x) * mask equals q - x * mask (above the clip q = 1; below it for APoT-I,
      // q = 0 and the mask is 0).
      const Tensor mask = binary_raw(BinaryOp::Eq, x, c, kName);
      const Tensor coef = sub_raw(q, mul_raw(x, mask));
      ctx.save(mask, autograd::SaveKind::Mask);
      ctx.save(coef, autograd::SaveKind::Activation);
      ctx.data["grad_scale"] = grad_scale;
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return out;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const Tensor& go = g[0];
    Tensor gx, ga;
    if (ctx.needs_input_grad(0)) gx = mul_raw(go, ctx.saved(0));
    if (ctx.needs_input_grad(1))
      ga = sum_as(mul_raw(go, ctx.saved(1)), ctx.get<Shape>("alpha_shape"), ctx.get<double>("grad_scale"));
    return {gx, ga};
  }
};

}  // namespace

Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale) {
  return ActQuantFn::apply(x, alpha, levels, sem, grad_scale);
}

}  // namespace minidl::quant
