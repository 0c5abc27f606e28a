// The fast CPU backend ("cpu"): oneDNN primitives for conv and avg pooling, dnnl_sgemm for f32 GEMM,
// and OpenMP + vectorisable loops for everything else. Registered at static init; compiled only when
// MINIDL_WITH_ONEDNN. The oneDNN primitives are f32 only (supports() says so, calls throw naming op and backend);
// everything else (data movement, elementwise, reductions, batch norm, max/adaptive pooling, softmax/loss,
// matmul) also takes f64.
#pragma once

#include "backends/backend.h"

namespace minidl {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  bool supports(OpKind op, DType dtype) const override;
  /// f32 activations stay channels-last (nhwc) from conv to conv, at every size (conv_output_format is the
  /// base class's: channels-last when this says so): no NCHW <-> blocked reorder around any call, and the
  /// Winograd F(4x4, 3x3) kernels, which read and write only nhwc, run every 3x3 stride-1 layer. Until commit
  /// 7435a50 ResNet-18's 64-512 channels at 56x56-7x7 were NCHW because oneDNN's nhwc direct kernels ran up to
  /// 50% slower there than its blocked ones; with Winograd (and its layer-wide stages at 256-512 channels) a
  /// ResNet-18 training step takes 1.7-1.8 s instead of 2.9-3.6 s and an eval step 0.56 s instead of 0.97-1.18 s
  /// (batch 32, 2 threads, Zen 3 host, interleaved runs, 2026-12-04).
  bool prefers_channels_last(DType dtype) const override { return dtype == DType::f32; }

  void fill(Tensor& out, double value) override;
  void copy(Tensor& dst, const Tensor& src) override;

  void unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) override;
  void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) override;
  void reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) override;

  void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;

  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      OpStatePtr& state) override;
  void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                            OpStatePtr& state) override;
  void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x, const Conv2dParams& p,
                              OpStatePtr& state) override;
  void conv2d_inference(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                        const Tensor& residual, bool relu) override;

  void batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                   const Tensor& weight, const Tensor& bias, double eps, OpStatePtr& state) override;
  void batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, double eps) override;
  void batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                           const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight, double eps,
                           OpStatePtr& state) override;
  void batch_norm_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                        const Tensor& weight, const Tensor& bias, double eps,
                                        OpStatePtr& state) override;
  void batch_norm_relu_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& y,
                                const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                const Tensor& weight, double eps, OpStatePtr& state) override;
  bool batch_norm_relu_backward_from_input(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                                           const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                           const Tensor& weight, double eps, OpStatePtr& state) override;
  void batch_norm_add_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                            const Tensor& residual, const Tensor& weight, const Tensor& bias,
                                            double eps, OpStatePtr& state) override;
  void batch_norm_add_relu_backward(Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                                    const Tensor& y, const Tensor& x, const Tensor& save_mean,
                                    const Tensor& save_invstd, const Tensor& weight, double eps,
                                    OpStatePtr& state) override;
  bool batch_norm_relu_quantize_forward_training(Tensor& q, Tensor& codes, Tensor& save_mean, Tensor& save_invstd,
                                                 Tensor& y_scale, Tensor& y_shift, const Tensor& x,
                                                 const Tensor& weight, const Tensor& bias, double eps,
                                                 const ActQuantizer& quantizer, OpStatePtr& state) override;
  void batch_norm_relu_quantize_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, Tensor& galpha, const Tensor& g,
                                         const Tensor& y, const Tensor& x, const Tensor& save_mean,
                                         const Tensor& save_invstd, const Tensor& weight, double eps,
                                         const ActQuantizer& quantizer, double scale, const Tensor& y_scale,
                                         const Tensor& y_shift, const Tensor& codes, OpStatePtr& state) override;

  void max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) override;
  void max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) override;
  void avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) override;
  void avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) override;
  void adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) override;
  void adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) override;

  void log_softmax_forward(Tensor& y, const Tensor& x) override;
  void log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) override;
  void nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double label_smoothing) override;
  void nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target, double label_smoothing) override;

  void project_to_levels(Tensor& out, const Tensor& x, const Tensor& levels, bool symmetric) override;
  void quantize_clip_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha,
                             const Tensor& levels, double steps, double lo, double hi) override;
  bool quantize_clip_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha,
                                   const Tensor& levels, double steps, double lo, double hi) override;
  void quantize_clip_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                         const Tensor& alpha, const Tensor& levels, double steps, double lo, double hi,
                                         double scale) override;
  bool quantize_clip_backward_from_codes(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                         const Tensor& codes, const Tensor& alpha, const Tensor& levels, double lo,
                                         double hi, double scale) override;
  void quantize_clip_backward(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& mask, const Tensor& coef,
                              double scale) override;
  void pact_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha, double k) override;
  void quantize_weight_forward(Tensor& out, Tensor& coef, Tensor& inside, const Tensor& w, const Tensor& alpha,
                               const Tensor& levels, double steps) override;
  bool weight_standardize_forward(Tensor& z, double& mean, double& stdv, const Tensor& w) override;
  bool weight_standardize_backward(Tensor& gw, const Tensor& gz, const Tensor& z, double stdv) override;
  bool quantize_weight_backward(Tensor& gw, Tensor& galpha, const Tensor& g, const Tensor& coef, const Tensor& inside,
                                double scale) override;
  bool pact_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha, double k) override;
  void pact_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x, const Tensor& alpha,
                                double k, double scale) override;
  void actnn_quantize(Tensor& codes, Tensor& meta, const Tensor& x, const ActnnCodec& c) override;
  void actnn_dequantize(Tensor& out, const Tensor& codes, const Tensor& meta, const ActnnCodec& c) override;
  void pack_mask_bits(Tensor& bits, const Tensor& x) override;
  void unpack_mask_bits(Tensor& out, const Tensor& bits) override;
  void mask_from_bits_(Tensor& g, const Tensor& bits) override;
  bool codebook_encode(Tensor& codes, const Tensor& x, const Tensor& codebook) override;
  void codebook_decode(Tensor& out, const Tensor& codes, const Tensor& codebook) override;
};

/// The registered instance (used by the cpu kernels to make strided inputs contiguous).
CpuBackend& cpu_backend();

}  // namespace minidl
