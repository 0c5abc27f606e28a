// PACT activation quantizer (spec/quant.md section 3.4, minidl's decision: a real op with a learnable clip):
// y = clamp(round(x * k / (alpha + 1e-6)), 0, k) * alpha / k, k = 2^bits - 1 (the 1e-6 is the reference's).
// dL/dx = g * 1[0 < x < alpha]; dL/dalpha = sum g * 1[x > alpha]. The reference's in-backward update of alpha
// (lr 0.01, L2 1e-4) is left to the optimizer: give alpha its own parameter group. The forward is one backend
// pass (Backend::pact_forward, saving a u8 mask and the 0/1 alpha coefficient), the backward another
// (quantize_clip_backward, shared with the APoT activation quantizer).
#include "autograd/function.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

int64_t grid_max(const char* op, int bits) {
  MINIDL_CHECK(bits >= 1 && bits <= 16, op, ": bit width ", bits, " is not supported (valid: 1..16)");
  return (int64_t{1} << bits) - 1;
}

struct PactFn : autograd::Function<PactFn> {
  static constexpr const char* kName = "quant_pact";
  static Tensor forward(autograd::Context& ctx, const Tensor& x, const Tensor& alpha, int bits) {
    checked_alpha(kName, x, alpha);
    const double k = static_cast<double>(grid_max(kName, bits));
    const MemoryFormat fmt = follow_format(x.sizes(), {x});
    Tensor y = new_like(x.sizes(), x, fmt);
    Tensor mask, coef;  // the straight-through rule: dL/dx = g * mask, dL/dalpha = sum g * coef
    if (ctx.recording()) {
      mask = empty(x.sizes(), TensorOptions().dtype(DType::u8).device(x.device()), fmt);
      coef = new_like(x.sizes(), x, fmt);
    }
    backend_for(x).pact_forward(y, mask, coef, x, alpha_scalar(alpha), k);
    if (ctx.recording()) {
      ctx.save(mask, autograd::SaveKind::Mask);
      ctx.save(coef, autograd::SaveKind::Coefficient);
      ctx.data["alpha_shape"] = alpha.sizes();
    }
    return y;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    return clip_backward(ctx, g[0], ctx.get<Shape>("alpha_shape"), 1.0);
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

Tensor pact(const Tensor& x, const Tensor& alpha, int bits) { return PactFn::apply(x, alpha, bits); }

Tensor int_grid_activation(const Tensor& x, int bits) { return IntGridFn::apply(x, bits); }

}  // namespace minidl::quant
