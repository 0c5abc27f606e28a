// The Backend's default batch norm + ReLU (training): the plain batch-norm primitives with a separate ReLU
// (forward) and ReLU mask (backward), so every backend has the pair; the cpu backend overrides both with fused
// channels-last loops.
#include "backends/backend.h"

namespace minidl {

void Backend::batch_norm_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                               const Tensor& weight, const Tensor& bias, double eps,
                                               OpStatePtr& state) {
  batch_norm_forward_training(y, save_mean, save_invstd, x, weight, bias, eps, state);
  unary(UnaryOp::Relu, y, y, UnaryParams{});
}

void Backend::batch_norm_relu_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& y,
                                       const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                       const Tensor& weight, double eps, OpStatePtr& state) {
  MINIDL_CHECK(y.sizes() == gy.sizes(), "batch_norm_relu_backward: y ", shape_str(y.sizes()), " and gy ",
               shape_str(gy.sizes()), " differ");
  Tensor masked = empty(gy.sizes(), TensorOptions{}.dtype(gy.dtype()).device(gy.device()));
  binary(BinaryOp::ReluBackward, masked, gy, y);
  batch_norm_backward(gx, gweight, gbias, masked, x, save_mean, save_invstd, weight, eps, state);
}

bool Backend::batch_norm_relu_quantize_forward_training(Tensor&, Tensor&, Tensor&, Tensor&, Tensor&, Tensor&,
                                                        const Tensor&, const Tensor&, const Tensor&, double,
                                                        const ActQuantizer&, OpStatePtr&) {
  return false;
}

void Backend::batch_norm_relu_quantize_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, Tensor& galpha,
                                                const Tensor& g, const Tensor& y, const Tensor& x,
                                                const Tensor& save_mean, const Tensor& save_invstd,
                                                const Tensor& weight, double eps, const ActQuantizer& quantizer,
                                                double scale, const Tensor&, const Tensor&, const Tensor&,
                                                OpStatePtr& state) {
  MINIDL_CHECK(g.defined() && y.defined() && g.sizes() == y.sizes(), "batch_norm_relu_quantize_backward (backend ",
               name(), "): g ", g.defined() ? shape_str(g.sizes()) : "undefined", " and y ",
               y.defined() ? shape_str(y.sizes()) : "undefined (this backend cannot recompute it)",
               " must be defined with one shape");
  Tensor gq = empty(g.sizes(), TensorOptions{}.dtype(g.dtype()).device(g.device()), y.memory_format());
  const ActQuantizer& q = quantizer;
  if (q.is_pact())
    pact_backward_from_input(gq, galpha, g, y, q.alpha, q.pact_k, scale);
  else
    quantize_clip_backward_from_input(gq, galpha, g, y, q.alpha, q.levels, q.steps, q.lo, q.hi, scale);
  batch_norm_relu_backward(gx, gweight, gbias, gq, y, x, save_mean, save_invstd, weight, eps, state);
}

}  // namespace minidl
