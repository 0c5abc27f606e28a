// Signed weight quantizer with the reparameterised clipping function (spec/quant.md sections 1.5, 1.6):
// x = w_hat / alpha, c = clamp(x, -1, 1), q = sign(c) * P_L(|c|) (or round(c * s) / s on the uniform and
// ternary paths), out = alpha * q. Straight-through: g * 1[|x| <= 1] (APoT-I, b >= 3) or g (APoT-C, and 2-bit
// "calibrated" weights everywhere); alpha gets sum g * (|x| > 1 ? sign(x) : q - x).
// Forward keeps two weight-sized tensors for backward: the input mask (clipped STE only) and the per-element
// alpha coefficient, so backward is one multiply and one sum. On the host, forward is one backend pass
// (Backend::quantize_weight_forward); elsewhere the chain of primitives it equals.
#include <cctype>

#include "autograd/function.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

const char* semantics_name(Semantics s) { return s == Semantics::APoT_I ? "APoT-I" : "APoT-C"; }

Semantics parse_semantics(const std::string& s) {
  std::string n;
  for (char ch : s) n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "apot-i" || n == "i" || n == "apot_i") return Semantics::APoT_I;
  if (n == "apot-c" || n == "c" || n == "apot_c") return Semantics::APoT_C;
  MINIDL_FAIL("quant: unknown APoT semantics '", s, "' (valid: APoT-I, APoT-C)");
}

namespace {

struct WeightQuantFn : autograd::Function<WeightQuantFn> {
  static constexpr const char* kName = "quant_weight";
  static Tensor forward(autograd::Context& ctx, const Tensor& w, const Tensor& alpha, const LevelSet& ls, bool clip_ste,
                        double grad_scale) {
    checked_alpha(kName, w, alpha);
    MINIDL_CHECK(ls.is_signed, kName, ": weights need a signed level set, got ", ls.str());
    const Tensor a = alpha_scalar(alpha);
    Tensor out, coef, inside;
    if (w.device().is_cpu()) {
      // one backend pass (the same values as the chain below, bit for bit)
      out = new_like(w.sizes(), w);
      if (ctx.recording()) {
        coef = new_like(w.sizes(), w);
        inside = new_like(w.sizes(), w);
      }
      backend_for(w).quantize_weight_forward(out, coef, inside, w, a, ls.rounding ? Tensor() : levels_like(ls, w),
                                             ls.steps);
    } else {
      const Tensor x = div_raw(w, a);
      const Tensor c = unary_raw(UnaryOp::Clamp, x, -1.0, 1.0);
      const Tensor q = project(c, ls);
      out = mul_raw(q, a);
      if (ctx.recording()) {
        // outside = 1[|x| > 1]; coefficient = outside ? sign(x) : q - x
        const Tensor outside = cmp_scalar(BinaryOp::Gt, unary_raw(UnaryOp::Abs, x), 1.0, kName);
        inside = unary_raw(UnaryOp::Affine, outside, -1.0, 1.0);
        coef = add_raw(mul_raw(unary_raw(UnaryOp::Sign, x), outside), mul_raw(sub_raw(q, x), inside));
      }
    }
    if (ctx.recording()) {
      ctx.save(coef, autograd::SaveKind::Parameter);
      if (clip_ste) ctx.save(inside, autograd::SaveKind::Mask);
      ctx.data["clip"] = clip_ste;
      ctx.data["grad_scale"] = grad_scale;
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return out;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const Tensor& go = g[0];
    const Tensor coef = ctx.saved(0);
    const bool clip = ctx.get<bool>("clip");
    {
      // one backend call where the backend has it (the cpu: the same bits), else the primitives below
      Tensor gw = ctx.needs_input_grad(0) && clip ? new_like(go.sizes(), go) : Tensor();
      Tensor ga = ctx.needs_input_grad(1) ? new_like(ctx.get<Shape>("alpha_shape"), go) : Tensor();
      if (backend_for(go).quantize_weight_backward(gw, ga, go, coef, clip ? ctx.saved(1) : Tensor(),
                                                   ctx.get<double>("grad_scale")))
        return {ctx.needs_input_grad(0) && !clip ? go : gw, ga};
    }
    Tensor gw;
    if (ctx.needs_input_grad(0)) gw = ctx.get<bool>("clip") ? mul_raw(go, ctx.saved(1)) : go;
    Tensor ga;
    if (ctx.needs_input_grad(1))
      ga = sum_as(mul_raw(go, coef), ctx.get<Shape>("alpha_shape"), ctx.get<double>("grad_scale"));
    return {gw, ga};
  }
};

}  // namespace

Tensor quantize_weight(const Tensor& w_hat, const Tensor& alpha, const LevelSet& levels, bool clip_ste,
                       double grad_scale) {
  return WeightQuantFn::apply(w_hat, alpha, levels, clip_ste, grad_scale);
}

Tensor quantize_weight(const Tensor& w_hat, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                       double grad_scale) {
  const bool clip = sem == Semantics::APoT_I && levels.bits >= 3;
  return WeightQuantFn::apply(w_hat, alpha, levels, clip, grad_scale);
}

}  // namespace minidl::quant
