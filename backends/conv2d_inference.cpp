// The Backend's default inference-only fused convolution: conv2d_forward, then the residual add and the ReLU
// as separate primitives, written into y. Every backend (ref, cuda) gets the op from this; the cpu backend
// overrides it with one oneDNN convolution carrying sum and ReLU post-ops.
#include "backends/backend.h"

namespace minidl {

void Backend::conv2d_inference(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                               const Tensor& residual, bool relu) {
  if (residual.defined()) {
    MINIDL_CHECK(residual.sizes() == y.sizes(), "conv2d_inference: residual ", shape_str(residual.sizes()),
                 " does not match the output ", shape_str(y.sizes()));
  }
  OpStatePtr state;
  conv2d_forward(y, x, w, bias, p, state);
  if (residual.defined()) binary(BinaryOp::Add, y, y, residual);
  if (relu) unary(UnaryOp::Relu, y, y, UnaryParams{});
}

}  // namespace minidl
