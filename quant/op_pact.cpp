// PACT activation quantizer (spec/quant.md section 3.4, minidl's decision: a real op with a learnable clip):
// y = clamp(round(x * k / (alpha + 1e-6)), 0, k) * alpha / k, k = 2^bits - 1 (the 1e-6 is the reference's).
// dL/dx = g * 1[0 < x < alpha]; dL/dalpha = sum g * 1[x > alpha]. The reference's in-backward update of alpha
// (lr 0.01, L2 1e-4) is left to the optimizer: give alpha its own parameter group. The forward is one backend
// pass (Backend::pact_forward), the backward another (quantize_clip_backward, shared with the APoT activation
// quantizer) on the u8 mask and the 0/1 alpha coefficient: saved by the forward under saved-tensor hooks (ActNN)
// or off the cpu, else made again in backward from the saved input x (which the ReLU before keeps anyway) by
// Backend::pact_backward_from_input.
#include "autograd/function.h"
#include "autograd/saved_tensor.h"
#include "backends/codebook.h"
#include "quant/coded_saves.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct PactFn : autograd::Function<PactFn> {
  static constexpr const char* kName = "quant_pact";
  static Tensor forward(autograd::Context& ctx, const Tensor& x, const Tensor& alpha, int bits, CodedTensor* coded) {
    checked_alpha(kName, x, alpha);
    const double k = static_cast<double>(grid_max(kName, bits));
    const MemoryFormat fmt = follow_format(x.sizes(), {x});
    Tensor y = new_like(x.sizes(), x, fmt);
    const Tensor a = alpha_scalar(alpha);
    // The straight-through rule: dL/dx = g * mask, dL/dalpha = sum g * coef. Both follow from x, which the
    // batch norm + ReLU before the quantizer saves anyway: without saved-tensor hooks on the cpu the op saves x
    // (no extra memory) and backward makes mask and coef again with this same kernel; under hooks (ActNN packs
    // what is saved) it saves them (1 bit and coef_bits packed), as the activation quantizer does.
    const bool derive = ctx.recording() && !autograd::SavedTensorHooksGuard::active() && x.device().is_cpu();
    Tensor mask, coef;
    if (ctx.recording() && !derive) {
      mask = empty(x.sizes(), TensorOptions().dtype(DType::u8).device(x.device()), fmt);
      coef = new_like(x.sizes(), x, fmt);
    }
    if (coded != nullptr) *coded = {};
    if (coded != nullptr && !mask.defined() && !autograd::SavedTensorHooksGuard::active() && x.device().is_cpu()) {
      // the codes of y in the same pass, for the layer's coded save of its input (coded_saves.h)
      Tensor codes = empty(x.sizes(), TensorOptions().dtype(DType::u8).device(x.device()), fmt);
      if (backend_for(x).pact_forward_coded(y, codes, x, a, k))
        *coded = CodedTensor{codes, pact_forward_codebook(a, k)};
    } else {
      backend_for(x).pact_forward(y, mask, coef, x, a, k);
    }
    if (derive) {
      ctx.save(x, autograd::SaveKind::Activation);
      ctx.save(a, autograd::SaveKind::Parameter);
      ctx.data["k"] = k;
    } else if (ctx.recording()) {
      ctx.save(mask, autograd::SaveKind::Mask);
      ctx.save(coef, autograd::SaveKind::Coefficient);
    }
    if (ctx.recording()) {
      ctx.data["derive"] = derive;
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return y;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const Shape& alpha_shape = ctx.get<Shape>("alpha_shape");
    if (!ctx.get<bool>("derive")) return clip_backward(ctx, g[0], alpha_shape, 1.0);
    // mask and coef as the forward would have made them, derived from the saved input in the backward's pass
    const Tensor x = in_forward_layout(ctx.saved(0)), a = ctx.saved(1);
    Tensor gx, ga;
    // gx over the incoming gradient when this backward owns it alone (as the activation quantizer's)
    if (ctx.needs_input_grad(0)) {
      const MemoryFormat fmt = follow_format(g[0].sizes(), {x});
      gx = reuse_or_new(g[0], g[0].sizes(), g[0], fmt);
    }
    if (ctx.needs_input_grad(1)) ga = new_like(alpha_shape, g[0]);
    if (gx.defined() || ga.defined())
      backend_for(g[0]).pact_backward_from_input(gx, ga, g[0], x, a, ctx.get<double>("k"), 1.0);
    return {gx, ga};
  }
};

struct IntGridFn : autograd::Function<IntGridFn> {
  static constexpr const char* kName = "quant_int_grid_activation";
  static Tensor forward(autograd::Context& ctx, const Tensor& x, int bits) {
    check_floating(kName, x);
    const double k = static_cast<double>(grid_max(kName, bits));
    ctx.save(x, autograd::SaveKind::Activation);
    ctx.data["k"] = k;
    return unary_raw(UnaryOp::Clamp, unary_raw(UnaryOp::Round, x), 0.0, k);
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const Tensor x = ctx.saved(0);
    const double k = ctx.get<double>("k");
    const Tensor inside = mul_raw(cmp_scalar(BinaryOp::Gt, x, 0.0, kName), cmp_scalar(BinaryOp::Lt, x, k, kName));
    return {mul_raw(g[0], inside)};
  }
};

}  // namespace

Tensor pact(const Tensor& x, const Tensor& alpha, int bits) {
  return PactFn::apply(x, alpha, bits, static_cast<CodedTensor*>(nullptr));
}

Tensor pact(const Tensor& x, const Tensor& alpha, int bits, CodedTensor* coded) {
  return PactFn::apply(x, alpha, bits, coded);
}

Tensor int_grid_activation(const Tensor& x, int bits) { return IntGridFn::apply(x, bits); }

}  // namespace minidl::quant
