// batch_norm over (N,C) or (N,C,H,W), training and eval, as Functions (and its fused forms: + ReLU, + residual
// add + ReLU).
// Training: backend batch_norm_forward_training gives y and the batch mean / inverse std (biased variance),
// saved for batch_norm_backward; the running stats are then updated in place without recording, with the
// unbiased variance and PyTorch's momentum convention. Eval: the inference primitive; its backward is
// elementwise (the statistics are constants), gx = g * weight * rsqrt(running_var + eps).
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

void check_bn(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& rm, const Tensor& rv) {
  check_floating("batch_norm", x);
  MINIDL_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input ", shape_str(x.sizes()),
               " must be (N, C) or (N, C, H, W)");
  const int64_t c = x.size(1);
  auto check_vec = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    check_compatible("batch_norm", x, t);
    MINIDL_CHECK(t.dim() == 1 && t.size(0) == c, "batch_norm: ", what, " ", shape_str(t.sizes()),
                 " does not match the ", c, " channels of input ", shape_str(x.sizes()));
  };
  check_vec(weight, "weight");
  check_vec(bias, "bias");
  check_vec(rm, "running_mean");
  check_vec(rv, "running_var");
}

/// Dims reduced per channel: all but dim 1.
std::vector<int64_t> non_channel_dims(int64_t rank) {
  return rank == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
}

/// A (C) vector as a view broadcastable against the input: (1,C) or (1,C,1,1).
Tensor channel_view(const Tensor& v, int64_t rank) {
  Shape s = rank == 4 ? Shape{1, v.size(0), 1, 1} : Shape{1, v.size(0)};
  return reshaped_contiguous(v.is_contiguous() ? v : v.contiguous(), s);
}

/// A keepdim per-channel reduction result back to (C).
Tensor to_channels(const Tensor& r) { return reshaped_contiguous(r, {r.numel()}); }

// What a training batch norm fuses after it: nothing, the ReLU (y = max(bn(x), 0)), or a residual add then the
// ReLU (y = max(bn(x) + residual, 0), the tail of a ResNet block).
enum class BnTail { None, Relu, AddRelu };

// Training batch norm with its tail. Saves x, the batch statistics and, with a ReLU, y for its mask (y is what the
// next conv saves anyway, so the fusion keeps no extra activation alive); the residual is not saved (its gradient
// is the masked gy). Inputs: x, residual (undefined unless AddRelu), weight, bias.
template <BnTail Tail>
struct BatchNormTrainFnT : autograd::Function<BatchNormTrainFnT<Tail>> {
  static constexpr bool kRelu = Tail != BnTail::None;
  static constexpr const char* kName = Tail == BnTail::AddRelu ? "batch_norm_add_relu"
                                       : kRelu                 ? "batch_norm_relu"
                                                               : "batch_norm";
  static std::vector<Tensor> forward(Context& ctx, const Tensor& x, const Tensor& residual, const Tensor& weight,
                                     const Tensor& bias, double eps) {
    const int64_t c = x.size(1);
    // the layout the unfused ops give: bn follows x, the add follows either operand
    const MemoryFormat y_format = follow_format(x.sizes(), {x, residual});
    Tensor mean = new_like({c}, x), invstd = new_like({c}, x);
    Backend& be = backend_for(x);
    ctx.save(x, SaveKind::Activation);  // the input, even when a caller made it a leaf requiring grad
    // The block tail writes y over x when nothing else holds x after that save: the caller handed it over
    // (batch_norm_add_relu takes x by value, and a ResNet block moves conv2's output in) and the save kept no
    // reference (a pack hook stored its own, compressed copy; without a hook, or with x stored as is, x stays and
    // y is a new tensor). Only the cpu backend, whose kernels read each element of x before writing it (per
    // channel, or after the statistics pass). Under activation compression a block then needs one activation
    // less at its peak.
    Tensor y;
    if constexpr (Tail == BnTail::AddRelu) {
      if (be.name() == "cpu" && x.memory_format() == y_format && sole_owner(x))
        y = x.take_buffer();  // x has no memory from here on: read it through y
    }
    const bool in_place = y.defined();
    if (!in_place) y = new_like(x.sizes(), x, y_format);
    if constexpr (Tail == BnTail::AddRelu) {
      be.batch_norm_add_relu_forward_training(y, mean, invstd, in_place ? y : x, residual, weight, bias, eps,
                                              ctx.op_state);
    } else if constexpr (kRelu) {
      be.batch_norm_relu_forward_training(y, mean, invstd, x, weight, bias, eps, ctx.op_state);
    } else {
      be.batch_norm_forward_training(y, mean, invstd, x, weight, bias, eps, ctx.op_state);
    }
    ctx.save(weight, SaveKind::Parameter);
    ctx.save(mean, SaveKind::Statistic);
    ctx.save(invstd, SaveKind::Statistic);
    if constexpr (kRelu) ctx.save(y, SaveKind::Mask);  // the ReLU mask: backward reads only y > 0
    // With no pack hook, x comes back to backward exactly as read here, so a backend may recompute the ReLU's mask
    // from it (batch_norm_relu_backward_from_input: one stream less per backward pass than reading y).
    if constexpr (Tail == BnTail::Relu) ctx.data["mask_from_x"] = !autograd::SavedTensorHooksGuard::active();
    ctx.data["eps"] = eps;
    ctx.mark_non_differentiable(mean);
    ctx.mark_non_differentiable(invstd);
    return {y, mean, invstd};
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grads) {
    const Tensor& gy = grads[0];  // the statistics outputs are non-differentiable
    if constexpr (kRelu) {
      if (std::vector<Tensor> g; backward_in_place(ctx, grads[0], g)) return g;
    }
    Tensor x = ctx.saved(0), weight = ctx.saved(1), mean = ctx.saved(2), invstd = ctx.saved(3);
    Tensor gx, gr, gw, gb;  // the backend writes only the defined ones
    // gx over x when x is a restored copy this backward owns alone (the kernels read x[i] before writing gx[i]),
    // else over the incoming gradient when this backward owns that alone and the host runs it (the host kernels take
    // their sums first and read gy[i] before writing gx[i]; tests/backends/test_cpu_batchnorm_isa.cpp): no fresh
    // activation-sized buffer. The device kernels are not checked for it yet.
    const MemoryFormat x_format = follow_format(x.sizes(), {x, gy});
    const Tensor& reusable = sole_owner(x) || !gy.device().is_cpu() ? x : grads[0];
    if (ctx.needs_input_grad(0)) gx = reuse_or_new(reusable, x.sizes(), gy, x_format);
    if (ctx.needs_input_grad(2)) gw = new_like({x.size(1)}, gy);
    if (ctx.needs_input_grad(3)) gb = new_like({x.size(1)}, gy);
    const double eps = ctx.get<double>("eps");
    Backend& be = backend_for(gy);
    if constexpr (Tail == BnTail::AddRelu) {
      const Tensor y = ctx.saved(4);
      if (ctx.needs_input_grad(1)) gr = new_like(x.sizes(), gy, follow_format(x.sizes(), {gy, y}));
      be.batch_norm_add_relu_backward(gx, gr, gw, gb, gy, y, x, mean, invstd, weight, eps, ctx.op_state);
    } else if constexpr (kRelu) {
      const bool from_x =
          ctx.get<bool>("mask_from_x") &&
          be.batch_norm_relu_backward_from_input(gx, gw, gb, gy, x, mean, invstd, weight, eps, ctx.op_state);
      if (!from_x)
        be.batch_norm_relu_backward(gx, gw, gb, gy, ctx.saved(4), x, mean, invstd, weight, eps, ctx.op_state);
    } else {
      be.batch_norm_backward(gx, gw, gb, gy, x, mean, invstd, weight, eps, ctx.op_state);
    }
    return {gx, gr, gw, gb};
  }

  // Backward in the buffers it was handed, when a pack hook restored the ReLU mask and x as fresh tensors
  // (activation compression) and gy belongs to this backward alone: gy is masked in place (it is then the
  // residual's gradient as is), the mask is freed before x is restored, and gx is written over x. The same
  // arithmetic as the fused kernel (ReluBackward keeps g where y > 0, else +0, as the fused mask does), so the
  // same bits, with two activation-sized buffers live instead of five. False (nothing done) otherwise: with
  // tensors saved as is (no packer, L0) the fused kernel runs as before.
  static bool backward_in_place(Context& ctx, Tensor& gy, std::vector<Tensor>& out) {
    if (!sole_owner(gy)) return false;
    Backend& be = backend_for(gy);
    // A mask the packer kept as bits is applied from the bits (no float mask restored: one pass over gy, and
    // an activation-sized buffer less); the same values as restoring it and ReluBackward.
    const autograd::PackedMask bits = ctx.saved_mask_bits(4);
    const bool gy_in_bit_order = bits.format == MemoryFormat::ChannelsLast ? gy.is_channels_last() : gy.is_contiguous();
    if (bits.bits.defined() && bits.sizes == gy.sizes() && gy_in_bit_order) {
      be.mask_from_bits_(gy, bits.bits);
    } else {
      Tensor y = ctx.saved(4);
      const MemoryFormat g_format = follow_format(gy.sizes(), {gy, y});
      if (!sole_owner(y) || gy.memory_format() != g_format) return false;
      be.binary(BinaryOp::ReluBackward, gy, gy, y);
    }
    Tensor x = ctx.saved(0), weight = ctx.saved(1), mean = ctx.saved(2), invstd = ctx.saved(3);
    Tensor gx, gw, gb;
    const MemoryFormat x_format = follow_format(x.sizes(), {x, gy});  // (its list's copies gone before the reuse)
    if (ctx.needs_input_grad(0)) gx = reuse_or_new(x, x.sizes(), gy, x_format);
    if (ctx.needs_input_grad(2)) gw = new_like({x.size(1)}, gy);
    if (ctx.needs_input_grad(3)) gb = new_like({x.size(1)}, gy);
    if (gx.defined() || gw.defined() || gb.defined())
      be.batch_norm_backward(gx, gw, gb, gy, x, mean, invstd, weight, ctx.get<double>("eps"), ctx.op_state);
    Tensor gr = Tail == BnTail::AddRelu && ctx.needs_input_grad(1) ? gy : Tensor();
    out = {gx, gr, gw, gb};
    return true;
  }
};
using BatchNormTrainFn = BatchNormTrainFnT<BnTail::None>;
using BatchNormReluTrainFn = BatchNormTrainFnT<BnTail::Relu>;
using BatchNormAddReluTrainFn = BatchNormTrainFnT<BnTail::AddRelu>;

struct BatchNormEvalFn : autograd::Function<BatchNormEvalFn> {
  static constexpr const char* kName = "batch_norm";
  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& rm, const Tensor& rv, const Tensor& weight,
                        const Tensor& bias, double eps) {
    Tensor y = new_like(x.sizes(), x, follow_format(x.sizes(), {x}));
    backend_for(x).batch_norm_forward_inference(y, x, rm, rv, weight, bias, eps);
    // The running statistics are module state, not activations: saved as Parameter.
    const bool need_w = ctx.needs_input_grad(3);
    ctx.save(need_w ? x : Tensor());
    ctx.save(need_w ? rm : Tensor(), SaveKind::Parameter);
    ctx.save(rv, SaveKind::Parameter);
    ctx.save(weight, SaveKind::Parameter);
    ctx.data["eps"] = eps;
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grads) {
    const Tensor& g = grads[0];
    Tensor rv = ctx.saved(2), weight = ctx.saved(3);
    const int64_t rank = g.dim();
    Tensor invstd = unary_raw(UnaryOp::Rsqrt, unary_raw(UnaryOp::AddScalar, rv, ctx.get<double>("eps")));
    Tensor gx, gw, gb;
    if (ctx.needs_input_grad(0)) {
      Tensor scale = weight.defined() ? binary_raw(BinaryOp::Mul, weight, invstd, kName) : invstd;
      gx = binary_raw(BinaryOp::Mul, g, channel_view(scale, rank), kName);
    }
    const auto dims = non_channel_dims(rank);
    if (ctx.needs_input_grad(3)) {
      // d y / d weight = (x - mean) * invstd
      Tensor xhat =
          binary_raw(BinaryOp::Mul, binary_raw(BinaryOp::Sub, ctx.saved(0), channel_view(ctx.saved(1), rank), kName),
                     channel_view(invstd, rank), kName);
      gw = to_channels(reduce_raw(ReduceOp::Sum, binary_raw(BinaryOp::Mul, g, xhat, kName), dims));
    }
    if (ctx.needs_input_grad(4)) gb = to_channels(reduce_raw(ReduceOp::Sum, g, dims));
    return {gx, Tensor(), Tensor(), gw, gb};
  }
};

}  // namespace

namespace {

// Checks shared by batch_norm, batch_norm_relu and batch_norm_add_relu.
void check_bn_call(const Tensor& x, const Tensor& rm, const Tensor& rv, const Tensor& weight, const Tensor& bias) {
  check_bn(x, weight, bias, rm, rv);
  MINIDL_CHECK(rm.defined() == rv.defined(),
               "batch_norm: running_mean and running_var must both be given or both be undefined");
}

// A training step of TrainFn (plain or fused; residual undefined unless it adds one), then the running
// statistics' update.
template <typename TrainFn>
Tensor batch_norm_training(const Tensor& x, const Tensor& residual, const Tensor& rm, const Tensor& rv,
                           const Tensor& weight, const Tensor& bias, double momentum, double eps) {
  const int64_t n = x.numel() / x.size(1);
  MINIDL_CHECK(n > 1, "batch_norm: expected more than 1 value per channel when training, got input ",
               shape_str(x.sizes()));
  std::vector<Tensor> outs = TrainFn::apply(x, residual, weight, bias, eps);  // x: a reference, not an owner
  update_running_stats(rm, rv, outs[1], outs[2], n, momentum, eps);
  return outs[0];
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  check_bn_call(x, running_mean, running_var, weight, bias);
  if (!training) {
    MINIDL_CHECK(running_mean.defined(), "batch_norm: eval mode needs running_mean and running_var");
    return BatchNormEvalFn::apply(x, running_mean, running_var, weight, bias, eps);
  }
  return batch_norm_training<BatchNormTrainFn>(x, Tensor(), running_mean, running_var, weight, bias, momentum, eps);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps) {
  if (!training) return relu(batch_norm(x, running_mean, running_var, weight, bias, false, momentum, eps));
  check_bn_call(x, running_mean, running_var, weight, bias);
  return batch_norm_training<BatchNormReluTrainFn>(x, Tensor(), running_mean, running_var, weight, bias, momentum, eps);
}

Tensor batch_norm_add_relu(Tensor x, const Tensor& residual, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
  check_bn_call(x, running_mean, running_var, weight, bias);
  check_floating("batch_norm_add_relu", residual);
  check_compatible("batch_norm_add_relu", x, residual);
  MINIDL_CHECK(residual.sizes() == x.sizes(), "batch_norm_add_relu: residual ", shape_str(residual.sizes()),
               " does not match input ", shape_str(x.sizes()));
  if (!training) return relu(batch_norm(x, running_mean, running_var, weight, bias, false, momentum, eps) + residual);
  return batch_norm_training<BatchNormAddReluTrainFn>(x, residual, running_mean, running_var, weight, bias, momentum,
                                                      eps);
}

namespace ops_detail {

void update_running_stats(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                          const Tensor& invstd, int64_t n, double momentum, double eps) {
  if (running_mean.defined()) {
    NoGradGuard no_grad;
    // Unbiased batch variance from the saved inverse std: var = invstd^-2 - eps, times n / (n - 1).
    Tensor var =
        unary_raw(UnaryOp::AddScalar, unary_raw(UnaryOp::Reciprocal, unary_raw(UnaryOp::Square, invstd)), -eps);
    var = unary_raw(UnaryOp::MulScalar, var, static_cast<double>(n) / static_cast<double>(n - 1));
    Tensor rm = running_mean, rv = running_var;  // handles sharing the buffers' storage
    rm.mul_(1.0 - momentum).add_(mean, momentum);
    rv.mul_(1.0 - momentum).add_(var, momentum);
  }
}

}  // namespace ops_detail

}  // namespace minidl
