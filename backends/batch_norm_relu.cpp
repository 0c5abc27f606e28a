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

}  // namespace minidl
