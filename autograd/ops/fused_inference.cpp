// conv2d_bn_inference: the eval-time conv -> batch norm -> (+ residual) -> ReLU chain of a ResNet as one
// backend call (Backend::conv2d_inference). Batch norm with running statistics is an affine map per output
// channel, so it folds into the convolution: w' = w * s, b' = (conv_bias - mean) * s + beta with
// s = gamma / sqrt(var + eps). The folding runs on the (small) parameter tensors at every call, so a model
// whose BN statistics or weights change between calls never serves stale folded weights.
#include <chrono>

#include "autograd/grad_mode.h"
#include "autograd/ops/op_utils.h"
#include "autograd/profiler.h"

namespace minidl {

using namespace ops_detail;

Tensor conv2d_bn_inference(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& bn_weight, const Tensor& bn_bias, double eps,
                           const Conv2dParams& p, const Tensor& residual, bool relu) {
  const char* op = "conv2d_bn_inference";
  // not a Function (nothing to record), so it reports to the profiler itself
  const bool profiling = autograd::Profiler::enabled();
  const auto t0 = profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  if (autograd::GradMode::is_enabled()) {
    for (const Tensor* t : {&x, &w, &conv_bias, &bn_weight, &bn_bias, &residual}) {
      MINIDL_CHECK(!t->defined() || !t->requires_grad(), op,
                   ": inference only (not differentiable), but an input requires grad; run it under NoGradGuard "
                   "or use conv2d and batch_norm");
    }
  }
  const Shape y_shape = checked_conv_output(x, w, conv_bias, p);
  const int64_t K = w.size(0);
  for (const Tensor* t : {&running_mean, &running_var}) {
    MINIDL_CHECK(t->defined() && t->dim() == 1 && t->size(0) == K, op, ": running statistics must be (", K,
                 ") for weight ", shape_str(w.sizes()));
  }
  for (const Tensor* t : {&bn_weight, &bn_bias}) {
    MINIDL_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == K), op, ": affine tensors must be (", K,
                 ") for weight ", shape_str(w.sizes()), ", got ", shape_str(t->sizes()));
  }
  // s = gamma / sqrt(var + eps)
  Tensor s = unary_raw(UnaryOp::Rsqrt, unary_raw(UnaryOp::AddScalar, running_var, eps));
  if (bn_weight.defined()) s = binary_raw(BinaryOp::Mul, s, bn_weight, op);
  const Tensor w_folded =
      binary_raw(BinaryOp::Mul, w, s.as_strided({K, 1, 1, 1}, {s.stride(0), 0, 0, 0}, s.offset()), op);
  Tensor shift = conv_bias.defined() ? binary_raw(BinaryOp::Sub, conv_bias, running_mean, op)
                                     : unary_raw(UnaryOp::Neg, running_mean);
  Tensor b_folded = binary_raw(BinaryOp::Mul, shift, s, op);
  if (bn_bias.defined()) b_folded = binary_raw(BinaryOp::Add, b_folded, bn_bias, op);

  Backend& be = backend_for(x);
  if (residual.defined()) {
    check_compatible(op, x, residual);
    MINIDL_CHECK(residual.sizes() == y_shape, op, ": residual ", shape_str(residual.sizes()),
                 " does not match the conv output ", shape_str(y_shape));
  }
  Tensor y = new_like(y_shape, x, be.conv_output_format(y_shape, x.dtype()));
  be.conv2d_inference(y, x, w_folded, b_folded, p, residual, relu);
  if (profiling)
    autograd::Profiler::record(op, false, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return y;
}

}  // namespace minidl
