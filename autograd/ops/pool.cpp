// max_pool2d, avg_pool2d and adaptive_avg_pool2d over (N,C,H,W) as Functions over the backend's pooling
// primitives. Max pooling saves the argmax indices (SaveKind::Index), not the input: its backward scatters the
// gradient to them. Average pooling saves nothing but shapes.
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

Shape pool_out_shape(const Tensor& x, const Pool2dParams& p, const char* op) {
  check_floating(op, x);
  MINIDL_CHECK(x.dim() == 4, op, ": input ", shape_str(x.sizes()), " must be 4-D (N, C, H, W)");
  MINIDL_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1, op,
               ": kernel and stride must be positive (kernel ", p.kernel_h, "x", p.kernel_w, ", stride ", p.stride_h,
               "x", p.stride_w, ")");
  MINIDL_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, op, ": padding ",
               p.pad_h, "x", p.pad_w, " must be non-negative and at most half the kernel ", p.kernel_h, "x",
               p.kernel_w);
  const int64_t oh = conv_out_size(x.size(2), p.kernel_h, p.stride_h, p.pad_h);
  const int64_t ow = conv_out_size(x.size(3), p.kernel_w, p.stride_w, p.pad_w);
  MINIDL_CHECK(oh > 0 && ow > 0, op, ": input ", shape_str(x.sizes()), " is too small for kernel ", p.kernel_h, "x",
               p.kernel_w, " with padding ", p.pad_h, "x", p.pad_w, " (output would be ", oh, "x", ow, ")");
  return {x.size(0), x.size(1), oh, ow};
}

struct MaxPool2dFn : autograd::Function<MaxPool2dFn> {
  static constexpr const char* kName = "max_pool2d";
  static Tensor forward(Context& ctx, const Tensor& x, Pool2dParams p) {
    const Shape s = pool_out_shape(x, p, kName);
    const MemoryFormat f = follow_format(x.sizes(), {x});  // y and its indices keep x's layout
    Tensor y = new_like(s, x, f);
    Tensor idx = empty(s, TensorOptions().dtype(DType::i64).device(x.device()), f);
    backend_for(x).max_pool2d_forward(y, idx, x, p);
    ctx.save(idx, SaveKind::Index);
    ctx.data["p"] = p;
    ctx.data["x"] = x.sizes();
    ctx.data["x_format"] = f;
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor gx = new_like(ctx.get<Shape>("x"), g[0], ctx.get<MemoryFormat>("x_format"));
    backend_for(g[0]).max_pool2d_backward(gx, g[0], ctx.saved(0), ctx.get<Pool2dParams>("p"));
    return {gx};
  }
};

struct AvgPool2dFn : autograd::Function<AvgPool2dFn> {
  static constexpr const char* kName = "avg_pool2d";
  static Tensor forward(Context& ctx, const Tensor& x, Pool2dParams p) {
    Tensor y = new_like(pool_out_shape(x, p, kName), x);
    backend_for(x).avg_pool2d_forward(y, x, p);
    ctx.data["p"] = p;
    ctx.data["x"] = x.sizes();
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor gx = new_like(ctx.get<Shape>("x"), g[0]);
    backend_for(g[0]).avg_pool2d_backward(gx, g[0], ctx.get<Pool2dParams>("p"));
    return {gx};
  }
};

struct AdaptiveAvgPool2dFn : autograd::Function<AdaptiveAvgPool2dFn> {
  static constexpr const char* kName = "adaptive_avg_pool2d";
  static Tensor forward(Context& ctx, const Tensor& x, int64_t out_h, int64_t out_w) {
    check_floating(kName, x);
    MINIDL_CHECK(x.dim() == 4, "adaptive_avg_pool2d: input ", shape_str(x.sizes()), " must be 4-D (N, C, H, W)");
    MINIDL_CHECK(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size ", out_h, "x", out_w, " must be positive");
    MINIDL_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: input ", shape_str(x.sizes()),
                 " has an empty spatial extent");
    Tensor y = new_like({x.size(0), x.size(1), out_h, out_w}, x);
    backend_for(x).adaptive_avg_pool2d_forward(y, x);
    ctx.data["x"] = x.sizes();
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor gx = new_like(ctx.get<Shape>("x"), g[0]);
    backend_for(g[0]).adaptive_avg_pool2d_backward(gx, g[0]);
    return {gx};
  }
};

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) { return MaxPool2dFn::apply(x, p); }
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) { return AvgPool2dFn::apply(x, p); }
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  return AdaptiveAvgPool2dFn::apply(x, out_h, out_w);
}

}  // namespace minidl
