// Unsigned activation quantizer with a learnable clip (spec/quant.md section 1.7): x = X / alpha;
// APoT-I: c = clamp(x, 0, 1), dL/dX = g * 1[0 <= x <= 1]; APoT-C: c = min(x, 1) (no lower clamp; the uniform
// path then keeps negative codes, as the reference), dL/dX = g * 1[x <= 1]. out = alpha * q with
// q = P_L(c) or round(c * s) / s. dL/dalpha = sum g * (1[x > 1] + (q - x) * mask).
// One fused backend pass each way (Backend::quantize_clip_forward / _backward_from_input); forward saves X (kept
// by the op before anyway) and backward derives the mask and coefficient (from the forward's codes, when it wrote
// them for a level set: _backward_from_codes, no level search); under saved-tensor hooks (ActNN) it
// saves the u8 mask and the per-element alpha coefficient instead (quantize_clip_backward).
#include <limits>

#include "autograd/function.h"
#include "autograd/saved_tensor.h"
#include "backends/codebook.h"
#include "quant/coded_saves.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct ActQuantFn : autograd::Function<ActQuantFn> {
  static constexpr const char* kName = "quant_activation";
  static Tensor forward(autograd::Context& ctx, const Tensor& X, const Tensor& alpha, const LevelSet& ls, Semantics sem,
                        double grad_scale, CodedTensor* coded) {
    checked_alpha(kName, X, alpha);
    MINIDL_CHECK(!ls.is_signed, kName, ": activations need an unsigned level set, got ", ls.str());
    const bool api = sem == Semantics::APoT_I;
    const double lo = api ? 0.0 : -std::numeric_limits<double>::infinity();
    const MemoryFormat fmt = follow_format(X.sizes(), {X});
    Tensor out = new_like(X.sizes(), X, fmt);
    const Tensor a = alpha_scalar(alpha);
    const Tensor levels = ls.rounding ? Tensor() : levels_like(ls, X);
    // What backward needs: the straight-through mask 1[lo <= x <= 1] and the alpha coefficient q - x * mask. Both
    // follow from X, which the batch norm + ReLU before the quantizer saves anyway: without saved-tensor hooks the
    // op saves X (no extra memory) and backward derives them in its one pass (quantize_clip_backward_from_input).
    // Under hooks (ActNN packs what is saved) it saves the u8 mask and the coefficient, which pack to 1 and 8 bits,
    // where X would be kept exact.
    // (cpu tensors: the cpu backend fuses the derivation into its backward pass; a GPU keeps the saved path it
    // was measured with until its own fused kernel exists)
    const bool derive = ctx.recording() && !autograd::SavedTensorHooksGuard::active() && X.device().is_cpu();
    Tensor mask, coef;
    if (ctx.recording() && !derive) {
      mask = empty(X.sizes(), TensorOptions().dtype(DType::u8).device(X.device()), fmt);
      coef = new_like(X.sizes(), X, fmt);
    }
    Tensor codes;
    if (coded != nullptr && !mask.defined() && !autograd::SavedTensorHooksGuard::active() && X.device().is_cpu()) {
      // the codes of out in the same pass (their code book lists alpha times each level / grid point)
      codes = empty(X.sizes(), TensorOptions().dtype(DType::u8).device(X.device()), fmt);
      *coded = {};
      if (backend_for(X).quantize_clip_forward_coded(out, codes, X, a, levels, ls.steps, lo, 1.0))
        *coded = CodedTensor{codes, quantize_clip_codebook(a, levels, ls.steps)};
      else
        codes = Tensor();
    } else {
      if (coded != nullptr) *coded = {};
      backend_for(X).quantize_clip_forward(out, mask, coef, X, a, levels, ls.steps, lo, 1.0);
    }
    if (derive) {
      ctx.save(X, autograd::SaveKind::Activation);
      ctx.save(a, autograd::SaveKind::Parameter);
      ctx.save(levels, autograd::SaveKind::Parameter);
      // a level set's codes are its level indices: backward reads them instead of searching the levels again (the
      // same tensor the conv after this op saves, so no memory more)
      ctx.save(levels.defined() ? codes : Tensor(), autograd::SaveKind::Index);
      ctx.data["steps"] = static_cast<double>(ls.steps);
      ctx.data["lo"] = lo;
    } else if (ctx.recording()) {
      ctx.save(mask, autograd::SaveKind::Mask);
      ctx.save(coef, autograd::SaveKind::Coefficient);
    }
    if (ctx.recording()) {
      ctx.data["derive"] = derive;
      ctx.data["grad_scale"] = grad_scale;
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return out;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const double scale = ctx.get<double>("grad_scale");
    if (!ctx.get<bool>("derive")) return clip_backward(ctx, g[0], ctx.get<Shape>("alpha_shape"), scale);
    const Tensor X = in_forward_layout(ctx.saved(0));
    const Tensor a = ctx.saved(1), levels = ctx.saved(2);
    Tensor gx, ga;
    // gx over the incoming gradient when this backward owns it alone (the kernels read each element before
    // writing it): no fresh activation-sized buffer, whose first write would also read it into the cache
    if (ctx.needs_input_grad(0)) {
      const MemoryFormat fmt = follow_format(g[0].sizes(), {X});
      gx = reuse_or_new(g[0], g[0].sizes(), g[0], fmt);
    }
    if (ctx.needs_input_grad(1)) ga = new_like(ctx.get<Shape>("alpha_shape"), g[0]);
    const Tensor codes = ctx.saved(3);
    Backend& be = backend_for(g[0]);
    if ((gx.defined() || ga.defined()) &&
        !(codes.defined() &&
          be.quantize_clip_backward_from_codes(gx, ga, g[0], X, codes, a, levels, ctx.get<double>("lo"), 1.0, scale)))
      be.quantize_clip_backward_from_input(gx, ga, g[0], X, a, levels, ctx.get<double>("steps"), ctx.get<double>("lo"),
                                           1.0, scale);
    return {gx, ga};
  }
};

}  // namespace

Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale) {
  return ActQuantFn::apply(x, alpha, levels, sem, grad_scale, static_cast<CodedTensor*>(nullptr));
}

Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale, CodedTensor* coded) {
  return ActQuantFn::apply(x, alpha, levels, sem, grad_scale, coded);
}

}  // namespace minidl::quant
