// The Backend's default batch norm + residual add + ReLU (training), the tail of a ResNet block: the plain
// batch-norm primitives with a separate Add and ReLU (forward) and ReLU mask (backward), so every backend has
// the pair; the cpu backend overrides both with fused loops.
#include "backends/backend.h"

namespace minidl {

namespace {

void check_same_shape(const char* op, const char* what, const Tensor& t, const Tensor& x) {
  MINIDL_CHECK(t.defined(), op, ": ", what, " is required");
  MINIDL_CHECK(t.sizes() == x.sizes(), op, ": ", what, " ", shape_str(t.sizes()), " does not match x ",
               shape_str(x.sizes()));
}

}  // namespace

void Backend::batch_norm_add_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                                   const Tensor& residual, const Tensor& weight, const Tensor& bias,
                                                   double eps, OpStatePtr& state) {
  const char* op = "batch_norm_add_relu_forward_training";
  MINIDL_CHECK(x.defined(), op, ": x is required");
  check_same_shape(op, "residual", residual, x);
  check_same_shape(op, "y", y, x);
  batch_norm_forward_training(y, save_mean, save_invstd, x, weight, bias, eps, state);
  binary(BinaryOp::Add, y, y, residual);
  unary(UnaryOp::Relu, y, y, UnaryParams{});
}

void Backend::batch_norm_add_relu_backward(Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias,
                                           const Tensor& gy, const Tensor& y, const Tensor& x, const Tensor& save_mean,
                                           const Tensor& save_invstd, const Tensor& weight, double eps,
                                           OpStatePtr& state) {
  const char* op = "batch_norm_add_relu_backward";
  MINIDL_CHECK(x.defined(), op, ": x is required");
  check_same_shape(op, "gy", gy, x);
  check_same_shape(op, "y", y, x);
  if (gresidual.defined()) check_same_shape(op, "gresidual", gresidual, x);
  // m = gy * (y > 0): the gradient of the residual, and of the batch norm's output
  Tensor masked =
      gresidual.defined() ? gresidual : empty(gy.sizes(), TensorOptions{}.dtype(gy.dtype()).device(gy.device()));
  binary(BinaryOp::ReluBackward, masked, gy, y);
  if (gx.defined() || gweight.defined() || gbias.defined())
    batch_norm_backward(gx, gweight, gbias, masked, x, save_mean, save_invstd, weight, eps, state);
}

}  // namespace minidl
