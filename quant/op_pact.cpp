// PACT activation quantizer (spec/quant.md section 3.4, minidl's decision: a real op with a learnable clip):
// y = clamp(round(x * k / (alpha + 1e-6)), 0, k) * alpha / k, k = 2^bits - 1 (the 1e-6 is the reference's).
// dL/dx = g * 1[0 < x < alpha]; dL/dalpha = sum g * 1[x > alpha]. The reference's in-backward update of alpha
// (lr 0.01, L2 1e-4) is left to the optimizer: give alpha its own parameter group.
#include "autograd/function.h"
#include "quant/ops.h"
#include "quant/op_utils.h"

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
    const double a = checked_alpha(kName, x, alpha);
    const double k = static_cast<double>(grid_max(kName, bits));
    const Tensor at = alpha_scalar(alpha);
    Tensor t = div_raw(unary_raw(UnaryOp::MulScalar, x, k), scalar_like(a + 1e-6, x));
    t = unary_raw(UnaryOp::Clamp, unary_raw(UnaryOp::Round, t), 0.0, k);
    Tensor y = div_raw(mul_raw(t, at), scalar_like(k, x));
    ctx.save(x, autograd::SaveKind::Activation);
    ctx.data["alpha"] = a;
    ctx.data["alpha_shape"] = alpha.sizes();
    return y;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const Tensor x = ctx.saved(0);
    const double a = ctx.get<double>("alpha");
    Tensor gx, ga;
    if (ctx.needs_input_grad(0)) {
      const Tensor inside = mul_raw(cmp_scalar(BinaryOp::Gt, x, 0.0, kName), cmp_scalar(BinaryOp::Lt, x, a, kName));
      gx = mul_raw(g[0], inside);
    }
    if (ctx.needs_input_grad(1))
      ga = sum_as(mul_raw(g[0], cmp_scalar(BinaryOp::Gt, x, a, kName)), ctx.get<Shape>("alpha_shape"), 1.0);
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

Tensor pact(const Tensor& x, const Tensor& alpha, int bits) { return PactFn::apply(x, alpha, bits); }

Tensor int_grid_activation(const Tensor& x, int bits) { return IntGridFn::apply(x, bits); }

}  // namespace minidl::quant
