// KernelBackend<Exec>: the Backend primitives that run on the shared kernels (kernels/*.h), written once for
// both executors. It checks arguments the way ref does (clear one-line errors that start with the backend's
// name), builds the launch arguments and calls kern::launch_*<Exec>. Subclasses say where tensors must live
// (check_memory) and add what the kernels do not cover: the cuda backend (cuda_backend.cpp) host<->device
// copies and cuDNN / cuBLAS; the cuda-host backend (host/cuda_host_backend.cpp) conv and matmul through ref.
// No CUDA header here: the cuda-host backend is built in every configuration.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/kernel_args.h"
#include "backends/cuda/kernels/launch.h"
#include "tensor/device_transfer.h"

namespace minidl::cuda {

template <class Exec>
class KernelBackend : public Backend {
 public:
  /// What the shared kernels cover: fill / copy for every dtype, the rest for float32 / float64.
  bool kernel_supports(OpKind op, DType dtype) const {
    switch (op) {
      case OpKind::Fill:
      case OpKind::Copy: return true;
      case OpKind::Matmul:
      case OpKind::Conv2d:
      case OpKind::kCount: return false;
      default: return is_floating(dtype);
    }
  }

  void fill(Tensor& out, double value) override {
    check(out, "fill", "out");
    kern::FillArgs a;
    a.out = elem_ptr(out);
    a.dtype = out.dtype();
    a.value = value;
    a.n = out.numel();
    a.walk = make_walk<1>(out.sizes(), {&out.strides()}, who("fill"));
    kern::launch_fill<Exec>(a);
  }

  void copy(Tensor& dst, const Tensor& src) override {
    check(dst, "copy", "dst");
    check(src, "copy", "src");
    same_shape(src, dst.sizes(), "copy", "src");
    copy_same_memory(dst, src);
  }

  void unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) override {
    const std::string w = who(op_name(op));
    MINIDL_CHECK(op < UnaryOp::kCount, w, ": unknown unary op");
    check(out, op_name(op), "out");
    check(in, op_name(op), "in");
    same_shape(in, out.sizes(), op_name(op), "input");
    same_dtype(out, in.dtype(), op_name(op), "out");
    floating(in.dtype(), op_name(op));
    kern::UnaryArgs a;
    a.op = op;
    a.out = elem_ptr(out);
    a.in = elem_ptr(in);
    a.dtype = in.dtype();
    a.a = p.a;
    a.b = p.b;
    a.n = out.numel();
    a.walk = make_walk<2>(out.sizes(), {&out.strides(), &in.strides()}, w);
    kern::launch_unary<Exec>(a);
  }

  void binary(BinaryOp op, Tensor& out, const Tensor& x, const Tensor& y) override {
    const char* nm = op_name(op);
    MINIDL_CHECK(op < BinaryOp::kCount, who(nm), ": unknown binary op");
    check(out, nm, "out");
    check(x, nm, "a");
    check(y, nm, "b");
    same_shape(x, out.sizes(), nm, "a");
    same_shape(y, out.sizes(), nm, "b");
    same_dtype(y, x.dtype(), nm, "b");
    floating(x.dtype(), nm);
    // comparisons may write their 1/0 into any output dtype; everything else keeps the input dtype
    if (!(op == BinaryOp::Eq || op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::Lt || op == BinaryOp::Le))
      same_dtype(out, x.dtype(), nm, "out");
    kern::BinaryArgs a;
    a.op = op;
    a.out = elem_ptr(out);
    a.a = elem_ptr(x);
    a.b = elem_ptr(y);
    a.dtype = x.dtype();
    a.out_dtype = out.dtype();
    a.n = out.numel();
    a.walk = make_walk<3>(out.sizes(), {&out.strides(), &x.strides(), &y.strides()}, who(nm));
    kern::launch_binary<Exec>(a);
  }

  void reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) override {
    const char* nm = op_name(op);
    MINIDL_CHECK(op < ReduceOp::kCount, who(nm), ": unknown reduce op");
    check(out, nm, "out");
    check(in, nm, "in");
    same_dtype(out, in.dtype(), nm, "out");
    floating(in.dtype(), nm);
    const int64_t rank = in.dim();
    Shape want = in.sizes();
    std::vector<bool> reduced(static_cast<size_t>(rank), false);
    for (size_t i = 0; i < dims.size(); ++i) {
      const int64_t d = dims[i];
      MINIDL_CHECK(d >= 0 && d < rank, who(nm), ": dim ", d, " out of range for input shape ", shape_str(in.sizes()));
      MINIDL_CHECK(i == 0 || dims[i - 1] < d, who(nm), ": dims must be sorted and unique");
      reduced[static_cast<size_t>(d)] = true;
      want[static_cast<size_t>(d)] = 1;
    }
    same_shape(out, want, nm, "out (keepdim shape)");
    Shape kept_sizes, kept_in, kept_out, red_sizes, red_in;
    for (int64_t d = 0; d < rank; ++d) {
      const auto u = static_cast<size_t>(d);
      if (reduced[u]) {
        red_sizes.push_back(in.sizes()[u]);
        red_in.push_back(in.strides()[u]);
      } else {
        kept_sizes.push_back(in.sizes()[u]);
        kept_in.push_back(in.strides()[u]);
        kept_out.push_back(out.strides()[u]);
      }
    }
    kern::ReduceArgs a;
    a.op = op;
    a.out = elem_ptr(out);
    a.in = elem_ptr(in);
    a.dtype = in.dtype();
    a.groups = shape_numel(kept_sizes);
    a.len = shape_numel(red_sizes);
    if ((op == ReduceOp::Max || op == ReduceOp::Min) && a.groups > 0) {
      MINIDL_CHECK(a.len > 0, who(nm), ": cannot reduce over an empty dimension (input shape ", shape_str(in.sizes()),
                   ")");
    }
    a.kept = make_walk<2>(kept_sizes, {&kept_in, &kept_out}, who(nm));
    a.reduced = make_walk<1>(red_sizes, {&red_in}, who(nm));
    kern::launch_reduce<Exec>(a);
  }

  // ---- batch norm ----
  void batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                   const Tensor& weight, const Tensor& bias, double eps, OpStatePtr&) override {
    bn_training("batch_norm_forward_training", y, save_mean, save_invstd, x, Tensor(), weight, bias, eps, false);
  }
  void batch_norm_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                        const Tensor& weight, const Tensor& bias, double eps, OpStatePtr&) override {
    bn_training("batch_norm_relu_forward_training", y, save_mean, save_invstd, x, Tensor(), weight, bias, eps, true);
  }
  void batch_norm_add_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                            const Tensor& residual, const Tensor& weight, const Tensor& bias,
                                            double eps, OpStatePtr&) override {
    const char* op = "batch_norm_add_relu_forward_training";
    MINIDL_CHECK(residual.defined(), who(op), ": residual is required");
    bn_training(op, y, save_mean, save_invstd, x, residual, weight, bias, eps, true);
  }

  void batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, double eps) override {
    const char* op = "batch_norm_forward_inference";
    kern::BnArgs a = bn_common(op, x, weight);
    check(y, op, "y");
    same_shape(y, x.sizes(), op, "y");
    same_dtype(y, x.dtype(), op, "y");
    MINIDL_CHECK(running_mean.defined() && running_var.defined(), who(op),
                 ": running_mean and running_var are required");
    per_channel(op, running_mean, "running_mean", x, a.mean, a.mean_s);
    per_channel(op, running_var, "running_var", x, a.var, a.var_s);
    per_channel(op, bias, "bias", x, a.bias, a.bias_s);
    a.y = elem_ptr(y);
    a.y_st = nchw_strides(y);
    a.eps = eps;
    kern::launch_bn_forward_inference<Exec>(a);
  }

  void batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                           const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight, double,
                           OpStatePtr&) override {
    Tensor none;
    bn_backward("batch_norm_backward", gx, none, gweight, gbias, gy, Tensor(), x, save_mean, save_invstd, weight);
  }
  void batch_norm_relu_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& y,
                                const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                const Tensor& weight, double, OpStatePtr&) override {
    Tensor none;
    bn_backward("batch_norm_relu_backward", gx, none, gweight, gbias, gy, y, x, save_mean, save_invstd, weight);
  }
  void batch_norm_add_relu_backward(Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                                    const Tensor& y, const Tensor& x, const Tensor& save_mean,
                                    const Tensor& save_invstd, const Tensor& weight, double, OpStatePtr&) override {
    bn_backward("batch_norm_add_relu_backward", gx, gresidual, gweight, gbias, gy, y, x, save_mean, save_invstd,
                weight);
  }

  // ---- pooling ----
  void max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) override {
    const char* op = "max_pool2d_forward";
    kern::PoolArgs a = pool_args(op, x, y, p, true);
    check(indices, op, "indices");
    same_dtype(indices, DType::i64, op, "indices");
    same_shape(indices, y.sizes(), op, "indices");
    a.in = elem_ptr(x);
    a.out = elem_ptr(y);
    a.indices = elem_ptr(indices);
    a.in_st = nchw_strides(x);
    a.out_st = nchw_strides(y);
    a.idx_st = nchw_strides(indices);
    kern::launch_max_pool_forward<Exec>(a);
  }
  void max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) override {
    const char* op = "max_pool2d_backward";
    kern::PoolArgs a = pool_args(op, gx, gy, p, true);
    check(indices, op, "indices");
    same_dtype(indices, DType::i64, op, "indices");
    same_shape(indices, gy.sizes(), op, "indices");
    a.in = elem_ptr(gy);
    a.out = elem_ptr(gx);
    a.indices = elem_ptr(indices);
    a.in_st = nchw_strides(gy);
    a.out_st = nchw_strides(gx);
    a.idx_st = nchw_strides(indices);
    kern::launch_max_pool_backward<Exec>(a);
  }
  void avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) override {
    kern::PoolArgs a = pool_args("avg_pool2d_forward", x, y, p, true);
    pool_io(a, x, y);
    kern::launch_avg_pool_forward<Exec>(a);
  }
  void avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) override {
    kern::PoolArgs a = pool_args("avg_pool2d_backward", gx, gy, p, true);
    pool_io(a, gy, gx);
    kern::launch_avg_pool_backward<Exec>(a);
  }
  void adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) override {
    kern::PoolArgs a = pool_args("adaptive_avg_pool2d_forward", x, y, Pool2dParams{}, false);
    pool_io(a, x, y);
    kern::launch_adaptive_pool_forward<Exec>(a);
  }
  void adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) override {
    kern::PoolArgs a = pool_args("adaptive_avg_pool2d_backward", gx, gy, Pool2dParams{}, false);
    pool_io(a, gy, gx);
    kern::launch_adaptive_pool_backward<Exec>(a);
  }

  // ---- log-softmax and NLL ----
  void log_softmax_forward(Tensor& y, const Tensor& x) override {
    const char* op = "log_softmax_forward";
    check(y, op, "y");
    check(x, op, "x");
    MINIDL_CHECK(x.dim() >= 1, who(op), ": expected at least 1 dim, got a scalar");
    same_shape(y, x.sizes(), op, "y");
    same_dtype(y, x.dtype(), op, "y");
    floating(x.dtype(), op);
    kern::LogSoftmaxArgs a = rows_args(op, x, x, y);
    a.x = elem_ptr(x);
    a.out = elem_ptr(y);
    kern::launch_log_softmax_forward<Exec>(a);
  }
  void log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) override {
    const char* op = "log_softmax_backward";
    check(gx, op, "gx");
    check(gy, op, "gy");
    check(y, op, "y");
    MINIDL_CHECK(y.dim() >= 1, who(op), ": expected at least 1 dim, got a scalar");
    same_shape(gy, y.sizes(), op, "gy");
    same_shape(gx, y.sizes(), op, "gx");
    same_dtype(gy, y.dtype(), op, "gy");
    same_dtype(gx, y.dtype(), op, "gx");
    floating(y.dtype(), op);
    kern::LogSoftmaxArgs a = rows_args(op, y, gy, gx);
    a.x = elem_ptr(y);
    a.gy = elem_ptr(gy);
    a.out = elem_ptr(gx);
    kern::launch_log_softmax_backward<Exec>(a);
  }
  void nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double label_smoothing) override {
    const char* op = "nll_loss_forward";
    check(loss, op, "loss");
    check(logp, op, "logp");
    MINIDL_CHECK(logp.dim() == 2, who(op), ": logp must be (N, C), got ", shape_str(logp.sizes()));
    same_shape(loss, {}, op, "loss");
    same_dtype(loss, logp.dtype(), op, "loss");
    floating(logp.dtype(), op);
    kern::NllArgs a = nll_args(op, logp, target, label_smoothing);
    a.in = elem_ptr(logp);
    a.out = elem_ptr(loss);
    Tensor error = zeros({1}, TensorOptions{}.dtype(DType::i32).device(logp.device()));
    a.error = static_cast<int*>(elem_ptr(error));
    kern::launch_nll_forward<Exec>(a);
    report_bad_target(op, error, target, a.C);
  }
  void nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target, double label_smoothing) override {
    const char* op = "nll_loss_backward";
    check(glogp, op, "glogp");
    check(gloss, op, "gloss");
    MINIDL_CHECK(glogp.dim() == 2, who(op), ": glogp must be (N, C), got ", shape_str(glogp.sizes()));
    MINIDL_CHECK(gloss.numel() == 1, who(op), ": gloss must hold one value, got shape ", shape_str(gloss.sizes()));
    same_dtype(gloss, glogp.dtype(), op, "gloss");
    floating(glogp.dtype(), op);
    kern::NllArgs a = nll_args(op, glogp, target, label_smoothing);
    a.in = elem_ptr(gloss);
    a.out = elem_ptr(glogp);
    Tensor error = zeros({1}, TensorOptions{}.dtype(DType::i32).device(glogp.device()));
    a.error = static_cast<int*>(elem_ptr(error));
    kern::launch_nll_backward<Exec>(a);
    report_bad_target(op, error, target, a.C);
  }

  // ---- quantization ----
  void project_to_levels(Tensor& out, const Tensor& x, const Tensor& levels, bool symmetric) override {
    const char* op = "project_to_levels";
    check(out, op, "out");
    check(x, op, "x");
    same_shape(out, x.sizes(), op, "out");
    same_dtype(out, x.dtype(), op, "out");
    floating(x.dtype(), op);
    kern::QuantArgs a = quant_args(op, out, Tensor(), Tensor(), x);
    levels_arg(op, levels, x.dtype(), a);
    MINIDL_CHECK(levels.defined(), who(op), ": levels must be a non-empty 1-D tensor");
    a.symmetric = symmetric;
    kern::launch_project_to_levels<Exec>(a);
  }

  void quantize_clip_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha,
                             const Tensor& levels, double steps, double lo, double hi) override {
    const char* op = "quantize_clip_forward";
    check(x, op, "x");
    floating(x.dtype(), op);
    alpha_arg(op, alpha, x);
    MINIDL_CHECK(lo <= hi, who(op), ": clip range [", lo, ", ", hi, "] is empty");
    kern::QuantArgs a = quant_args(op, out, mask, coef, x);
    a.alpha = elem_ptr(alpha);
    if (levels.defined()) {
      levels_arg(op, levels, x.dtype(), a);
    } else {
      MINIDL_CHECK(steps > 0.0 && std::isfinite(steps), who(op), ": the uniform path needs steps > 0, got ", steps);
    }
    a.steps = steps;
    a.lo = lo;
    a.hi = hi;
    kern::launch_quantize_clip_forward<Exec>(a);
  }

  void quantize_clip_backward(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& mask, const Tensor& coef,
                              double scale) override {
    const char* op = "quantize_clip_backward";
    check(gy, op, "gy");
    floating(gy.dtype(), op);
    kern::QuantBackwardArgs a;
    a.dtype = gy.dtype();
    a.n = gy.numel();
    a.scale = scale;
    a.gy = elem_ptr(gy);
    if (gx.defined()) {
      output_like(op, "gx", gx, gy.dtype(), gy);
      output_like(op, "mask", mask, DType::u8, gy);
      a.gx = elem_ptr(gx);
      a.mask = static_cast<const uint8_t*>(elem_ptr(mask));
    }
    if (galpha.defined()) {
      check(galpha, op, "galpha");
      MINIDL_CHECK(galpha.numel() == 1 && galpha.dtype() == gy.dtype(), who(op),
                   ": galpha must be one element of gy's dtype, got ", dtype_name(galpha.dtype()), " ",
                   shape_str(galpha.sizes()));
      output_like(op, "coef", coef, gy.dtype(), gy);
      a.galpha = elem_ptr(galpha);
      a.coef = elem_ptr(coef);
    }
    // operands that are not wanted walk with gy's strides (never dereferenced)
    const Shape& gxs = gx.defined() ? gx.strides() : gy.strides();
    const Shape& ms = gx.defined() ? mask.strides() : gy.strides();
    const Shape& cs = galpha.defined() ? coef.strides() : gy.strides();
    a.walk = make_walk<4>(gy.sizes(), {&gxs, &gy.strides(), &ms, &cs}, who(op));
    kern::launch_quantize_clip_backward<Exec>(a);
  }

  void pact_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha, double k) override {
    const char* op = "pact_forward";
    check(x, op, "x");
    floating(x.dtype(), op);
    alpha_arg(op, alpha, x);
    MINIDL_CHECK(k >= 1.0 && k == std::floor(k), who(op), ": the grid maximum k must be an integer >= 1, got ", k);
    kern::QuantArgs a = quant_args(op, out, mask, coef, x);
    a.alpha = elem_ptr(alpha);
    a.k = k;
    kern::launch_pact_forward<Exec>(a);
  }

  // ---- ActNN activation compression (kernels/actnn.h): the same bytes as ref's Backend base class ----
  void actnn_quantize(Tensor& codes, Tensor& meta, const Tensor& x, const ActnnCodec& c) override {
    const char* op = "actnn_quantize";
    check(x, op, "x");
    floating(x.dtype(), op);
    // The codec's order is x's logical one (actnn_codec.h): a channels-last x is coded from a contiguous copy.
    const Tensor xl = x.memory_format() == MemoryFormat::ChannelsLast ? x.contiguous() : x;
    ActnnLaunch l = actnn_args(op, xl, "x", codes, meta, c);
    l.args.x = elem_ptr(xl);
    if (!c.per_group && l.args.n * l.args.ng > 0) {  // scratch for the one (min, max) of the tensor
      l.range = empty({2}, TensorOptions{}.dtype(DType::f32).device(x.device()));
      l.args.range = static_cast<float*>(elem_ptr(l.range));
    }
    kern::launch_actnn_quantize<Exec>(l.args);
  }

  void actnn_dequantize(Tensor& out, const Tensor& codes, const Tensor& meta, const ActnnCodec& c) override {
    const char* op = "actnn_dequantize";
    check(out, op, "out");
    floating(out.dtype(), op);
    // Decoded in logical order: a channels-last out gets a copy of a contiguous decode.
    Tensor ol = out.memory_format() == MemoryFormat::ChannelsLast
                    ? empty(out.sizes(), TensorOptions{}.dtype(out.dtype()).device(out.device()))
                    : out;
    ActnnLaunch l = actnn_args(op, ol, "out", codes, meta, c);
    l.args.out = elem_ptr(ol);
    kern::launch_actnn_dequantize<Exec>(l.args);
    if (!ol.is_same(out)) out.copy_(ol);
  }

  void pack_mask_bits(Tensor& bits, const Tensor& x) override {
    const char* op = "pack_mask_bits";
    kern::MaskBitsArgs a = mask_args(op, x, "x", bits);
    kern::launch_pack_mask_bits<Exec>(a);
  }

  void unpack_mask_bits(Tensor& out, const Tensor& bits) override {
    const char* op = "unpack_mask_bits";
    kern::MaskBitsArgs a = mask_args(op, out, "out", bits);
    kern::launch_unpack_mask_bits<Exec>(a);
  }

 protected:
  /// Throws unless t is defined and lives where this backend's kernels run.
  virtual void check_memory(const Tensor& t, const char* op, const char* what) const = 0;

  std::string who(const char* op) const { return name() + " " + op; }

  void check(const Tensor& t, const char* op, const char* what) const {
    MINIDL_CHECK(t.defined(), who(op), ": ", what, " is an undefined tensor");
    check_memory(t, op, what);
  }
  void same_shape(const Tensor& t, const Shape& want, const char* op, const char* what) const {
    MINIDL_CHECK(t.sizes() == want, who(op), ": ", what, " has shape ", shape_str(t.sizes()), ", expected ",
                 shape_str(want));
  }
  void same_dtype(const Tensor& t, DType want, const char* op, const char* what) const {
    MINIDL_CHECK(t.dtype() == want, who(op), ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
                 dtype_name(want));
  }
  void floating(DType dt, const char* op) const {
    MINIDL_CHECK(is_floating(dt), who(op), ": dtype ", dtype_name(dt), " is not supported by the ", name(),
                 " backend (expected float32 or float64)");
  }

  /// Element-wise copy with a cast between two tensors on this backend's memory.
  void copy_same_memory(Tensor& dst, const Tensor& src) {
    kern::CopyArgs a;
    a.dst = elem_ptr(dst);
    a.src = elem_ptr(src);
    a.dst_dtype = dst.dtype();
    a.src_dtype = src.dtype();
    a.n = dst.numel();
    a.walk = make_walk<2>(dst.sizes(), {&dst.strides(), &src.strides()}, who("copy"));
    kern::launch_copy<Exec>(a);
  }

 private:
  // ---- ActNN argument checks (ref's, worded with the backend's name) ----
  void dense_samples(const Tensor& t, const char* op, const char* what) const {
    MINIDL_CHECK(t.is_contiguous() || t.is_channels_last(), who(op), ": ", what, " ", shape_str(t.sizes()),
                 " must be contiguous or channels-last (dense, samples outermost)");
  }
  void byte_buffer(const Tensor& t, const char* op, const char* what, int64_t n) const {
    check(t, op, what);
    MINIDL_CHECK(t.dtype() == DType::u8 && t.is_contiguous() && t.numel() == n, who(op), ": ", what,
                 " must be a contiguous u8 tensor of ", n, " bytes, got ", dtype_name(t.dtype()), " ",
                 shape_str(t.sizes()));
  }

  // The launch arguments plus the executor-memory tensors they point into, kept alive until the launches are
  // queued (device memory freed afterwards is reused only by later work on the same in-order stream).
  struct ActnnLaunch {
    kern::ActnnArgs args;
    Tensor sample_bits, sample_offsets, range;
  };

  ActnnLaunch actnn_args(const char* op, const Tensor& t, const char* what, const Tensor& codes, const Tensor& meta,
                         const ActnnCodec& c) const {
    dense_samples(t, op, what);
    const std::string w = who(op);
    c.validate(w.c_str());
    const int64_t n = t.dim() == 0 ? 1 : t.size(0);
    MINIDL_CHECK(n == c.n && n * c.f == t.numel(), w, ": tensor ", shape_str(t.sizes()), " is not ", c.n,
                 " samples of ", c.f, " elements");
    byte_buffer(codes, op, "codes", c.code_bytes());
    byte_buffer(meta, op, "meta", c.meta_bytes());
    ActnnLaunch l;
    kern::ActnnArgs& a = l.args;
    a.dtype = t.dtype();
    a.codes = static_cast<uint8_t*>(elem_ptr(codes));
    a.meta = static_cast<uint8_t*>(elem_ptr(meta));
    a.n = c.n;
    a.f = c.f;
    a.fp = c.padded();
    a.group = c.group;
    a.ng = c.groups_per_sample();
    a.per_group = c.per_group;
    a.bf16 = c.bf16_meta;
    a.key = c.key;
    const bool uniform = std::all_of(c.bits.begin(), c.bits.end(), [&](uint8_t b) { return b == c.bits.front(); });
    if (c.n == 0 || uniform) {
      a.uniform_bits = c.n == 0 ? 8 : c.bits.front();
      return l;
    }
    // Per-sample widths: the widths and the code offsets go to the executor's memory. On the GPU through the
    // pinned, asynchronous copy (no host wait); the bytes are staged before transfer_to returns.
    const std::vector<int64_t> off = c.sample_offsets();
    const TensorOptions host_u8 = TensorOptions{}.dtype(DType::u8), host_i64 = TensorOptions{}.dtype(DType::i64);
    l.sample_bits = transfer_to(from_vector(c.bits, {c.n}, host_u8), t.device(), true);
    l.sample_offsets =
        transfer_to(from_vector(std::vector<int64_t>(off.begin(), off.end() - 1), {c.n}, host_i64), t.device(), true);
    a.sample_bits = static_cast<const uint8_t*>(elem_ptr(l.sample_bits));
    a.sample_offsets = static_cast<const int64_t*>(elem_ptr(l.sample_offsets));
    return l;
  }

  // values (x or out: dense, any dtype) and their bits (u8, ceil(numel / 8)).
  kern::MaskBitsArgs mask_args(const char* op, const Tensor& values, const char* what, const Tensor& bits) const {
    check(values, op, what);
    dense_samples(values, op, what);
    byte_buffer(bits, op, "bits", (values.numel() + 7) / 8);
    kern::MaskBitsArgs a;
    a.dtype = values.dtype();
    a.values = elem_ptr(values);
    a.bits = static_cast<uint8_t*>(elem_ptr(bits));
    a.n = values.numel();
    return a;
  }

  // A per-channel vector (C): defined ones must be (C) of x's dtype, on this backend's memory.
  void per_channel(const char* op, const Tensor& t, const char* what, const Tensor& x, const void*& p,
                   int64_t& s) const {
    if (!t.defined()) return;
    check(t, op, what);
    same_shape(t, {x.size(1)}, op, what);
    same_dtype(t, x.dtype(), op, what);
    p = elem_ptr(t);
    s = t.stride(0);
  }
  void per_channel_out(const char* op, const Tensor& t, const char* what, const Tensor& x, void*& p, int64_t& s) const {
    const void* cp = nullptr;
    per_channel(op, t, what, x, cp, s);
    p = const_cast<void*>(cp);
  }

  kern::BnArgs bn_common(const char* op, const Tensor& x, const Tensor& weight) const {
    check(x, op, "x");
    MINIDL_CHECK(x.dim() == 2 || x.dim() == 4, who(op), ": expected x of shape (N, C) or (N, C, H, W), got ",
                 shape_str(x.sizes()));
    floating(x.dtype(), op);
    kern::BnArgs a;
    a.dtype = x.dtype();
    a.dims = nchw_dims(x);
    a.x = elem_ptr(x);
    a.x_st = nchw_strides(x);
    per_channel(op, weight, "weight", x, a.weight, a.weight_s);
    return a;
  }

  void bn_training(const char* op, Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                   const Tensor& residual, const Tensor& weight, const Tensor& bias, double eps, bool relu) {
    kern::BnArgs a = bn_common(op, x, weight);
    check(y, op, "y");
    same_shape(y, x.sizes(), op, "y");
    same_dtype(y, x.dtype(), op, "y");
    per_channel(op, bias, "bias", x, a.bias, a.bias_s);
    MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), who(op), ": save_mean and save_invstd are required");
    per_channel_out(op, save_mean, "save_mean", x, a.save_mean, a.save_mean_s);
    per_channel_out(op, save_invstd, "save_invstd", x, a.save_invstd, a.save_invstd_s);
    if (residual.defined()) {
      check(residual, op, "residual");
      same_shape(residual, x.sizes(), op, "residual");
      same_dtype(residual, x.dtype(), op, "residual");
      a.residual = elem_ptr(residual);
      a.residual_st = nchw_strides(residual);
    }
    MINIDL_CHECK(a.dims.N * a.dims.H * a.dims.W > 0, who(op), ": no elements per channel in x ", shape_str(x.sizes()));
    a.y = elem_ptr(y);
    a.y_st = nchw_strides(y);
    a.eps = eps;
    a.relu = relu;
    Tensor ws = empty({2 * a.dims.C}, TensorOptions{}.dtype(DType::f64).device(x.device()));
    a.ws = static_cast<double*>(elem_ptr(ws));
    kern::launch_bn_forward_training<Exec>(a);
  }

  // yr defined: the ReLU of a fused forward is undone by masking gy with yr > 0.
  void bn_backward(const char* op, Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                   const Tensor& yr, const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                   const Tensor& weight) {
    kern::BnArgs a = bn_common(op, x, weight);
    check(gy, op, "gy");
    same_shape(gy, x.sizes(), op, "gy");
    same_dtype(gy, x.dtype(), op, "gy");
    a.gy = elem_ptr(gy);
    a.gy_st = nchw_strides(gy);
    if (yr.defined()) {
      check(yr, op, "y");
      same_shape(yr, x.sizes(), op, "y");
      same_dtype(yr, x.dtype(), op, "y");
      a.relu = true;
      a.yr = elem_ptr(yr);
      a.yr_st = nchw_strides(yr);
    }
    MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), who(op), ": save_mean and save_invstd are required");
    per_channel(op, save_mean, "save_mean", x, a.mean, a.mean_s);
    per_channel(op, save_invstd, "save_invstd", x, a.var, a.var_s);
    per_channel_out(op, gweight, "gweight", x, a.gweight, a.gweight_s);
    per_channel_out(op, gbias, "gbias", x, a.gbias, a.gbias_s);
    if (gx.defined()) {
      check(gx, op, "gx");
      same_shape(gx, x.sizes(), op, "gx");
      same_dtype(gx, x.dtype(), op, "gx");
      a.gx = elem_ptr(gx);
      a.gx_st = nchw_strides(gx);
    }
    if (gresidual.defined()) {
      check(gresidual, op, "gresidual");
      same_shape(gresidual, x.sizes(), op, "gresidual");
      same_dtype(gresidual, x.dtype(), op, "gresidual");
      a.gresidual = elem_ptr(gresidual);
      a.gresidual_st = nchw_strides(gresidual);
    }
    Tensor ws = empty({2 * a.dims.C}, TensorOptions{}.dtype(DType::f64).device(x.device()));
    a.ws = static_cast<double*>(elem_ptr(ws));
    kern::launch_bn_backward<Exec>(a);
  }

  // plane: the (N, C, H, W) side; cells: the pooled (N, C, P, Q) side. `windowed`: p describes the window
  // (max / avg pool); otherwise adaptive pooling, any P, Q >= 1.
  kern::PoolArgs pool_args(const char* op, const Tensor& plane, const Tensor& cells, const Pool2dParams& p,
                           bool windowed) const {
    check(plane, op, "the input-sized tensor");
    check(cells, op, "the output-sized tensor");
    const Shape& x = plane.sizes();
    const Shape& y = cells.sizes();
    MINIDL_CHECK(x.size() == 4 && y.size() == 4 && y[0] == x[0] && y[1] == x[1] && y[2] >= 1 && y[3] >= 1, who(op),
                 ": expected 4-d (N, C, H, W) and (N, C, P, Q) with P, Q >= 1, got ", shape_str(x), " and ",
                 shape_str(y));
    same_dtype(cells, plane.dtype(), op, "the output-sized tensor");
    floating(plane.dtype(), op);
    if (windowed) {
      MINIDL_CHECK(
          p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
          who(op), ": bad params kernel (", p.kernel_h, ", ", p.kernel_w, ") stride (", p.stride_h, ", ", p.stride_w,
          ") pad (", p.pad_h, ", ", p.pad_w, ")");
      MINIDL_CHECK(2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, who(op), ": padding (", p.pad_h, ", ",
                   p.pad_w, ") must be at most half the kernel (", p.kernel_h, ", ", p.kernel_w, ")");
      const int64_t P = conv_out_size(x[2], p.kernel_h, p.stride_h, p.pad_h);
      const int64_t Q = conv_out_size(x[3], p.kernel_w, p.stride_w, p.pad_w);
      MINIDL_CHECK(y[2] == P && y[3] == Q, who(op), ": output has shape ", shape_str(y), ", expected ",
                   shape_str({x[0], x[1], P, Q}), " for input ", shape_str(x));
    }
    kern::PoolArgs a;
    a.dtype = plane.dtype();
    a.plane = nchw_dims(plane);
    a.P = y[2];
    a.Q = y[3];
    a.kh = p.kernel_h;
    a.kw = p.kernel_w;
    a.sh = p.stride_h;
    a.sw = p.stride_w;
    a.ph = p.pad_h;
    a.pw = p.pad_w;
    a.count_include_pad = p.count_include_pad;
    return a;
  }
  static void pool_io(kern::PoolArgs& a, const Tensor& in, Tensor& out) {
    a.in = elem_ptr(in);
    a.out = elem_ptr(out);
    a.in_st = nchw_strides(in);
    a.out_st = nchw_strides(out);
  }

  // Rows over the leading dims of a (the row source), b and c.
  kern::LogSoftmaxArgs rows_args(const char* op, const Tensor& a0, const Tensor& b, const Tensor& c) const {
    kern::LogSoftmaxArgs a;
    a.dtype = a0.dtype();
    const auto lead = static_cast<std::ptrdiff_t>(a0.dim() - 1);
    const Shape sizes(a0.sizes().begin(), a0.sizes().begin() + lead);
    const Shape sa(a0.strides().begin(), a0.strides().begin() + lead);
    const Shape sb(b.strides().begin(), b.strides().begin() + lead);
    const Shape sc(c.strides().begin(), c.strides().begin() + lead);
    a.rows = shape_numel(sizes);
    a.C = a0.sizes().back();
    a.x_cs = a0.strides().back();
    a.gy_cs = b.strides().back();
    a.out_cs = c.strides().back();
    a.walk = make_walk<3>(sizes, {&sa, &sb, &sc}, who(op));
    return a;
  }

  kern::NllArgs nll_args(const char* op, const Tensor& nc, const Tensor& target, double s) const {
    check(target, op, "target");
    same_shape(target, {nc.size(0)}, op, "target");
    MINIDL_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, who(op),
                 ": target must be int64 (or int32), got ", dtype_name(target.dtype()));
    MINIDL_CHECK(s >= 0.0 && s <= 1.0, who(op), ": label_smoothing ", s, " is outside [0, 1]");
    kern::NllArgs a;
    a.dtype = nc.dtype();
    a.N = nc.size(0);
    a.C = nc.size(1);
    a.s0 = nc.stride(0);
    a.s1 = nc.stride(1);
    a.target = elem_ptr(target);
    a.target_i64 = target.dtype() == DType::i64;
    a.target_stride = target.stride(0);
    a.smoothing = s;
    return a;
  }

  // The kernels flag a bad target; find and name the first one, as ref does.
  void report_bad_target(const char* op, const Tensor& error, const Tensor& target, int64_t C) const {
    if (error.item<int32_t>() == 0) return;
    const std::vector<int64_t> t = target.to_vector<int64_t>();
    for (size_t n = 0; n < t.size(); ++n) {
      MINIDL_CHECK(t[n] >= 0 && t[n] < C, who(op), ": target[", n, "] = ", t[n], " is not a class index in [0, ", C,
                   ")");
    }
    MINIDL_FAIL(who(op), ": a target is not a class index in [0, ", C, ")");
  }

  void output_like(const char* op, const char* what, const Tensor& t, DType dt, const Tensor& x) const {
    check(t, op, what);
    MINIDL_CHECK(t.dtype() == dt && t.sizes() == x.sizes(), who(op), ": ", what, " must be ", dtype_name(dt), " ",
                 shape_str(x.sizes()), ", got ", dtype_name(t.dtype()), " ", shape_str(t.sizes()));
  }

  void alpha_arg(const char* op, const Tensor& alpha, const Tensor& x) const {
    MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && alpha.dtype() == x.dtype(), who(op),
                 ": alpha must be one element of x's dtype");
    check(alpha, op, "alpha");
  }

  // out / mask / coef (the latter two optional) and x, walked together.
  kern::QuantArgs quant_args(const char* op, Tensor& out, const Tensor& mask, const Tensor& coef,
                             const Tensor& x) const {
    output_like(op, "out", out, x.dtype(), x);
    if (mask.defined()) output_like(op, "mask", mask, DType::u8, x);
    if (coef.defined()) output_like(op, "coef", coef, x.dtype(), x);
    kern::QuantArgs a;
    a.dtype = x.dtype();
    a.n = x.numel();
    a.out = elem_ptr(out);
    a.mask = static_cast<uint8_t*>(elem_ptr(mask));
    a.coef = elem_ptr(coef);
    a.x = elem_ptr(x);
    const Shape& ms = mask.defined() ? mask.strides() : out.strides();
    const Shape& cs = coef.defined() ? coef.strides() : out.strides();
    a.walk = make_walk<4>(x.sizes(), {&out.strides(), &ms, &cs, &x.strides()}, who(op));
    return a;
  }

  // A sorted, non-empty 1-D level set of x's dtype (read back once to check the order: level sets are tiny).
  void levels_arg(const char* op, const Tensor& levels, DType dt, kern::QuantArgs& a) const {
    if (!levels.defined()) return;
    check(levels, op, "levels");
    MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0 && levels.dtype() == dt, who(op),
                 ": levels must be a non-empty 1-D tensor of x's dtype, got ", dtype_name(levels.dtype()), " ",
                 shape_str(levels.sizes()));
    const std::vector<double> lv = levels.to_vector<double>();
    MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), who(op), ": levels must be sorted ascending");
    a.levels = elem_ptr(levels);
    a.levels_s = levels.stride(0);
    a.nlevels = levels.numel();
  }
};

}  // namespace minidl::cuda
