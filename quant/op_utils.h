// Helpers shared by the quantizer ops in quant/op_*.cpp (internal): alpha checks, scalar comparisons and the
// alpha-gradient reduction, on top of autograd/ops/op_utils.h's unrecorded primitive calls. Every step is a
// backend primitive, so the ops run on any device whose backend implements them.
#pragma once

#include <cmath>

#include "autograd/ops/op_utils.h"
#include "quant/levels.h"

namespace minidl::quant::detail {

using namespace ::minidl::ops_detail;

/// Checks that alpha is a floating one-element tensor > 0 matching x's dtype and device; returns its value.
inline double checked_alpha(const char* op, const Tensor& x, const Tensor& alpha) {
  check_floating(op, x);
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1, op, ": alpha must hold one value, got shape ",
               alpha.defined() ? shape_str(alpha.sizes()) : std::string("undefined"));
  check_compatible(op, x, alpha);
  const double a = alpha.item<double>();
  MINIDL_CHECK(a > 0.0 && std::isfinite(a), op, ": clipping alpha must be a finite value > 0, got ", a);
  return a;
}

/// The largest point 2^bits - 1 of a b-bit integer grid (PACT, the integer-grid activation); bits must be 1..16.
inline int64_t grid_max(const char* op, int bits) {
  MINIDL_CHECK(bits >= 1 && bits <= 16, op, ": bit width ", bits, " is not supported (valid: 1..16)");
  return (int64_t{1} << bits) - 1;
}

/// alpha as a 0-dim view (alpha may be stored as shape [1]).
inline Tensor alpha_scalar(const Tensor& alpha) { return alpha.as_strided({}, {}, alpha.offset()); }

/// x op scalar (comparison ops give 1/0 in x's dtype).
inline Tensor cmp_scalar(BinaryOp op, const Tensor& x, double s, const char* name) {
  return binary_raw(op, x, scalar_like(s, x), name);
}

inline Tensor mul_raw(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Mul, a, b, "quant"); }
inline Tensor sub_raw(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Sub, a, b, "quant"); }
inline Tensor add_raw(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Add, a, b, "quant"); }
inline Tensor div_raw(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Div, a, b, "quant"); }

/// sum(t) * scale with the given shape (that of the alpha the gradient is for).
inline Tensor sum_as(const Tensor& t, const Shape& shape, double scale) {
  Tensor s = reduce_raw(ReduceOp::Sum, t, normalize_dims({}, t.dim(), "quant"));
  s = reshaped_contiguous(s, shape);
  if (scale != 1.0) s = unary_raw(UnaryOp::MulScalar, s, scale);
  return s;
}

/// round(c * s) / s with half-to-even rounding (the uniform path), computed in c's dtype.
inline Tensor round_to_steps(const Tensor& c, double steps) {
  Tensor r = unary_raw(UnaryOp::Round, unary_raw(UnaryOp::MulScalar, c, steps));
  return div_raw(r, scalar_like(steps, c));
}

/// The level set's magnitudes in like's dtype and on its device (rebuilt when they differ; not for rounding).
inline Tensor levels_like(const LevelSet& ls, const Tensor& like) {
  Tensor lv = ls.magnitudes;
  MINIDL_CHECK(lv.defined(), "quant: level set ", ls.str(), " has no level tensor");
  if (lv.dtype() != like.dtype() || lv.device() != like.device()) {
    lv = LevelSet::make(ls.scheme, ls.bits, ls.is_signed, like.dtype(), like.device()).magnitudes;
  }
  return lv;
}

/// q = the quantized value of c in [-1, 1] (signed) or (-inf, 1] (unsigned) on the level set.
inline Tensor project(const Tensor& c, const LevelSet& ls) {
  if (ls.rounding) return round_to_steps(c, ls.steps);
  const Tensor lv = levels_like(ls, c);
  Tensor q = new_like(c.sizes(), c);
  backend_for(c).project_to_levels(q, c, lv, ls.is_signed);
  return q;
}

/// x in the layout a fused quantizer's forward computed in (its output's, follow_format): a backward that derives
/// the mask and coefficient from the saved input then walks the elements in the saved path's order, so the alpha
/// sum adds the same partials. A copy only where a backend keeps a layout apart (float64 channels-last on the cpu).
inline Tensor in_forward_layout(const Tensor& x) {
  const MemoryFormat fmt = follow_format(x.sizes(), {x});
  if (x.memory_format() == fmt) return x;
  Tensor in_fmt = new_like(x.sizes(), x, fmt);
  backend_for(x).copy(in_fmt, x);
  return in_fmt;
}

/// The backward of the fused clip quantizers (activation quantizer and PACT) from their saved u8 mask (saved 0)
/// and alpha coefficient (saved 1): gx = g * mask in the saved tensors' layout (that of x, so the kernel walks
/// mask, coef and gx in step) and galpha = scale * sum(g * coef) shaped like alpha.
inline std::vector<Tensor> clip_backward(autograd::Context& ctx, const Tensor& go, const Shape& alpha_shape,
                                         double scale) {
  const Tensor mask = ctx.saved(0), coef = ctx.saved(1);
  Tensor gx, ga;
  if (ctx.needs_input_grad(0)) gx = new_like(go.sizes(), go, follow_format(go.sizes(), {coef}));
  if (ctx.needs_input_grad(1)) ga = new_like(alpha_shape, go);
  if (gx.defined() || ga.defined()) backend_for(go).quantize_clip_backward(gx, ga, go, mask, coef, scale);
  return {gx, ga};
}

}  // namespace minidl::quant::detail
