// RefBackend: the oracle. Plain loops templated on float/double (fill/copy on every dtype), reading inputs
// through their strides, accumulating in double. It is never optimised: the cpu and cuda backends and
// gradcheck are checked against it. The kernels live one family per file in this folder.
#pragma once

#include "backends/backend.h"

namespace minidl {

class RefBackend final : public Backend {
 public:
  std::string name() const override { return "ref"; }
  bool supports(OpKind op, DType dtype) const override;

  // elementwise.cpp
  void fill(Tensor& out, double value) override;
  void copy(Tensor& dst, const Tensor& src) override;
  void unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) override;
  void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) override;

  // reduce.cpp
  void reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) override;

  // matmul.cpp
  void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;

  // conv.cpp
  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      OpStatePtr& state) override;
  void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                            OpStatePtr& state) override;
  void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x, const Conv2dParams& p,
                              OpStatePtr& state) override;

  // batch_norm.cpp
  void batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                   const Tensor& weight, const Tensor& bias, double eps,
                                   OpStatePtr& state) override;
  void batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean,
                                    const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                    double eps) override;
  void batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                           const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight, double eps,
                           OpStatePtr& state) override;

  // pool.cpp
  void max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) override;
  void max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) override;
  void avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) override;
  void avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) override;
  void adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) override;
  void adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) override;

  // softmax_xent.cpp
  void log_softmax_forward(Tensor& y, const Tensor& x) override;
  void log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) override;
  void nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double label_smoothing) override;
  void nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target,
                         double label_smoothing) override;
};

}  // namespace minidl
