// conv2d (stride, padding, dilation, groups, optional bias) as a Function over the backend's forward /
// backward-data / backward-weight primitives; the backend's OpState (e.g. a oneDNN primitive) rides in ctx.
// Shapes: x (N,C,H,W), w (K,C/groups,R,S), bias (K), y (N,K,P,Q).
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

Shape ops_detail::checked_conv_output(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_floating("conv2d", x);
  check_floating("conv2d", w);
  check_compatible("conv2d", x, w);
  MINIDL_CHECK(x.dim() == 4, "conv2d: input ", shape_str(x.sizes()), " must be 4-D (N, C, H, W)");
  MINIDL_CHECK(w.dim() == 4, "conv2d: weight ", shape_str(w.sizes()), " must be 4-D (K, C/groups, R, S)");
  MINIDL_CHECK(p.groups >= 1, "conv2d: groups must be positive, got ", p.groups);
  MINIDL_CHECK(
      p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
      "conv2d: stride and dilation must be positive and padding non-negative (stride ", p.stride_h, "x", p.stride_w,
      ", padding ", p.pad_h, "x", p.pad_w, ", dilation ", p.dilation_h, "x", p.dilation_w, ")");
  MINIDL_CHECK(x.size(1) == w.size(1) * p.groups, "conv2d: input ", shape_str(x.sizes()), " has ", x.size(1),
               " channels but weight ", shape_str(w.sizes()), " expects ", w.size(1) * p.groups, " (groups ", p.groups,
               ")");
  MINIDL_CHECK(w.size(0) % p.groups == 0, "conv2d: weight ", shape_str(w.sizes()), " has ", w.size(0),
               " output channels, not divisible by groups ", p.groups);
  if (bias.defined()) {
    check_compatible("conv2d", x, bias);
    MINIDL_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "conv2d: bias ", shape_str(bias.sizes()),
                 " does not match weight ", shape_str(w.sizes()), " (expected [", w.size(0), "])");
  }
  const int64_t oh = conv_out_size(x.size(2), w.size(2), p.stride_h, p.pad_h, p.dilation_h);
  const int64_t ow = conv_out_size(x.size(3), w.size(3), p.stride_w, p.pad_w, p.dilation_w);
  MINIDL_CHECK(oh > 0 && ow > 0, "conv2d: input ", shape_str(x.sizes()), " with padding ", p.pad_h, "x", p.pad_w,
               " is too small for weight ", shape_str(w.sizes()), " with dilation ", p.dilation_h, "x", p.dilation_w,
               " (output would be ", oh, "x", ow, ")");
  return {x.size(0), w.size(0), oh, ow};
}

namespace {

struct Conv2dFn : autograd::Function<Conv2dFn> {
  static constexpr const char* kName = "conv2d";
  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams p) {
    const Shape y_shape = checked_conv_output(x, w, bias, p);
    // The backend picks the output layout per conv (Backend::conv_output_format): batch norm, ReLU and adds then
    // keep it, so a network runs in that layout from conv to conv (the NCHW input of the first conv included).
    const MemoryFormat y_format = backend_for(x).conv_output_format(y_shape, x.dtype());
    Tensor y = new_like(y_shape, x, y_format);
    backend_for(x).conv2d_forward(y, x, w, bias, p, ctx.op_state);
    // The weight gradient needs x (an activation: skipped when w is frozen); the data gradient needs w (a
    // parameter that stays alive anyway, so saving it costs nothing and hooks always see it).
    ctx.save(ctx.needs_input_grad(1) ? x : Tensor(), SaveKind::Activation);  // the input, whatever its grad flags
    ctx.save(w, SaveKind::Parameter);
    ctx.data["p"] = p;
    ctx.data["x"] = x.sizes();
    ctx.data["x_format"] = follow_format(x.sizes(), {x});
    ctx.data["w"] = w.sizes();
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grads) {
    const Tensor& gy = grads[0];
    const auto& p = ctx.get<Conv2dParams>("p");
    Backend& be = backend_for(gy);
    // Every saved tensor is unpacked, so a pack/unpack hook sees each one round-trip. The weight gradient runs
    // first so that x, a full-size dequantized copy under activation compression, is freed before gx exists:
    // one activation less at the peak of backward (the two gradients do not depend on each other).
    Tensor x = ctx.saved(0), w = ctx.saved(1);
    Tensor gx, gw, gb;
    if (ctx.needs_input_grad(1)) {
      gw = new_like(ctx.get<Shape>("w"), gy);
      if (ctx.needs_input_grad(2)) gb = new_like({ctx.get<Shape>("w")[0]}, gy);
      be.conv2d_backward_weight(gw, gb, gy, x, p, ctx.op_state);
    } else if (ctx.needs_input_grad(2)) {
      gb = reshaped_contiguous(reduce_raw(ReduceOp::Sum, gy, {0, 2, 3}), {gy.size(1)});
    }
    x = Tensor();
    if (ctx.needs_input_grad(0)) {
      gx = new_like(ctx.get<Shape>("x"), gy, ctx.get<MemoryFormat>("x_format"));
      be.conv2d_backward_data(gx, gy, w, p, ctx.op_state);
    }
    return {gx, gw, gb};
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  return Conv2dFn::apply(x, w, bias, p);
}

}  // namespace minidl
