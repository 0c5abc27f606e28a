// 2-D convolution of the cpu backend on oneDNN 2.6 (v2 API): forward, backward-data and backward-weights with
// stride, padding, dilation and groups. This backend asks for channels-last activations
// (prefers_channels_last), and oneDNN's jit convolutions read and write nhwc directly at nearly the speed of
// its blocked layouts (measured on this AVX2 host: within 1-5% per direction on ResNet-20's shapes), so a
// channels-last network never reorders an activation. Tensors in plain NCHW (a network's input, or a caller
// of the backend that passes them) get primitives created with format_tag::any: oneDNN picks its blocked layout
// (nChw16c on AVX-512, nChw8c on AVX2) and the tensors are reordered in and out.
// A PlanCache per direction keeps the primitive descriptors, primitives and reorders per shape and layout; the
// OpState passes a reordered gradient from backward-data to backward-weights so it is reordered once.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"
#include "backends/cpu/cpu_winograd.h"
#include "backends/cpu/dnnl_common.h"
#include "backends/cpu/dnnl_workarounds.h"

namespace minidl {
namespace {

using namespace dnnl;
using cpu::dnnl_dims;

struct ConvGeom {
  Shape x, w, y;  // (N,C,H,W), (K,C/g,R,S), (N,K,P,Q)
  int64_t groups = 1;
  dnnl_dims strides, dilates, pad_l, pad_r;
  bool nhwc = false;                    // activations of the primitive: nhwc, or oneDNN's choice (any)
  memory::desc x_md, w_md, y_md, b_md;  // layouts of the interface tensors as they lie in memory
  std::string str;                      // for error messages
  std::vector<int64_t> key(int64_t extra) const {
    std::vector<int64_t> k;
    k.insert(k.end(), x.begin(), x.end());
    k.insert(k.end(), w.begin(), w.end());
    k.push_back(groups);
    k.insert(k.end(), strides.begin(), strides.end());
    k.insert(k.end(), dilates.begin(), dilates.end());
    k.insert(k.end(), pad_l.begin(), pad_l.end());
    k.insert(k.end(), pad_r.begin(), pad_r.end());
    k.push_back(extra);
    // the interface layouts: reorders are built from them
    k.push_back(int64_t{nhwc} | (x_md == cpu::plain_f32(x) ? 0 : 2) | (y_md == cpu::plain_f32(y) ? 0 : 4));
    return k;
  }
};

ConvGeom make_geom(const char* op, const Shape& x, const Shape& w, const Conv2dParams& p) {
  MINIDL_CHECK(x.size() == 4, op, " (backend cpu): input must be (N,C,H,W), got ", shape_str(x));
  MINIDL_CHECK(w.size() == 4, op, " (backend cpu): weight must be (K,C/groups,R,S), got ", shape_str(w));
  MINIDL_CHECK(p.groups >= 1 && x[1] % p.groups == 0 && w[0] % p.groups == 0 && w[1] * p.groups == x[1], op,
               " (backend cpu): input ", shape_str(x), " and weight ", shape_str(w), " do not fit groups=", p.groups);
  MINIDL_CHECK(
      p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0, op,
      " (backend cpu): stride and dilation must be >= 1 and padding >= 0");
  ConvGeom g;
  g.x = x;
  g.w = w;
  g.groups = p.groups;
  // conv_out_size truncates toward zero: reject a dilated kernel larger than the padded input explicitly
  MINIDL_CHECK(
      x[2] + 2 * p.pad_h >= (w[2] - 1) * p.dilation_h + 1 && x[3] + 2 * p.pad_w >= (w[3] - 1) * p.dilation_w + 1, op,
      " (backend cpu): kernel ", shape_str(w), " with dilation ", p.dilation_h, "x", p.dilation_w,
      " is larger than the padded input ", shape_str(x), " (pad ", p.pad_h, "x", p.pad_w, ")");
  const int64_t P = conv_out_size(x[2], w[2], p.stride_h, p.pad_h, p.dilation_h);
  const int64_t Q = conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
  MINIDL_CHECK(P >= 1 && Q >= 1, op, " (backend cpu): input ", shape_str(x), " is too small for kernel ", shape_str(w),
               " with padding ", p.pad_h, "x", p.pad_w, " and dilation ", p.dilation_h, "x", p.dilation_w);
  g.y = {x[0], w[0], P, Q};
  g.strides = {p.stride_h, p.stride_w};
  g.dilates = {p.dilation_h - 1, p.dilation_w - 1};  // oneDNN counts dilation from 0
  g.pad_l = {p.pad_h, p.pad_w};
  // right padding that makes oneDNN's output extent equal ours (floor division may leave it below pad_l)
  g.pad_r = {(P - 1) * p.stride_h + (w[2] - 1) * p.dilation_h + 1 - x[2] - p.pad_h,
             (Q - 1) * p.stride_w + (w[3] - 1) * p.dilation_w + 1 - x[3] - p.pad_w};
  g.x_md = cpu::plain_f32(x);
  g.y_md = cpu::plain_f32(g.y);
  g.b_md = cpu::plain_f32({w[0]});
  if (p.groups > 1) {
    g.w_md = cpu::plain_f32({p.groups, w[0] / p.groups, w[1], w[2], w[3]});
  } else {
    g.w_md = cpu::plain_f32(w);
  }
  g.str = "x " + shape_str(x) + ", w " + shape_str(w) + ", y " + shape_str(g.y) + ", stride " +
          std::to_string(p.stride_h) + "x" + std::to_string(p.stride_w) + ", pad " + std::to_string(p.pad_h) + "x" +
          std::to_string(p.pad_w) + ", dilation " + std::to_string(p.dilation_h) + "x" + std::to_string(p.dilation_w) +
          ", groups " + std::to_string(p.groups);
  return g;
}

memory::desc any_weights(const ConvGeom& g) {
  if (g.groups > 1) return cpu::any_f32({g.groups, g.w[0] / g.groups, g.w[1], g.w[2], g.w[3]});
  return cpu::any_f32(g.w);
}

// An activation of the primitive: nhwc when the network runs channels-last, else oneDNN's pick.
memory::desc act_md(const ConvGeom& g, const Shape& s) {
  return g.nhwc ? memory::desc(cpu::to_dims(s), cpu::dnnl_dt::f32, cpu::dnnl_tag::nhwc) : cpu::any_f32(s);
}

// Sets the interface layouts and the primitive's activation layout from the caller's (dense) tensors.
void set_layouts(ConvGeom& g, const Tensor& x, const Tensor& y, bool nhwc) {
  g.nhwc = nhwc;
  g.x_md = cpu::layout_f32(x);
  g.y_md = cpu::layout_f32(y);
}

convolution_forward::primitive_desc fwd_pd(const ConvGeom& g, bool with_bias) {
  convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, act_md(g, g.x),
                              any_weights(g), with_bias ? g.b_md : memory::desc(), act_md(g, g.y), g.strides, g.dilates,
                              g.pad_l, g.pad_r);
  return convolution_forward::primitive_desc(d, cpu::dnnl_engine());
}

struct FwdPlan {
  convolution_forward::primitive_desc pd;
  primitive prim;
  cpu::Reorder x_in, w_in, y_out;
};
struct BwdDataPlan {
  convolution_backward_data::primitive_desc pd;
  primitive prim;
  cpu::Reorder gy_in, w_in, gx_out;
};
struct BwdWeightPlan {
  convolution_backward_weights::primitive_desc pd;
  primitive prim;
  cpu::Reorder gy_in, x_in, gw_out, gb_out;
};

struct InferPlan {
  convolution_forward::primitive_desc pd;
  primitive prim;
  cpu::Reorder x_in, w_in, y_in, y_out;  // y_in: the residual (already in y) into the primitive's dst layout
};

cpu::PlanCache<InferPlan>& infer_cache() {
  static cpu::PlanCache<InferPlan> c;
  return c;
}

cpu::PlanCache<FwdPlan>& fwd_cache() {
  static cpu::PlanCache<FwdPlan> c;
  return c;
}
cpu::PlanCache<BwdDataPlan>& bwd_data_cache() {
  static cpu::PlanCache<BwdDataPlan> c;
  return c;
}
cpu::PlanCache<BwdWeightPlan>& bwd_weight_cache() {
  static cpu::PlanCache<BwdWeightPlan> c;
  return c;
}

// Carried from forward to the backward calls of one conv: the gradient gy reordered to the blocked layout by
// whichever of backward_data / backward_weight runs first, handed to the other (autograd calls both with the
// same gy), then dropped. Holding gy's storage makes the identity check exact.
struct ConvState final : OpState {
  std::shared_ptr<Storage> gy_storage;
  int64_t gy_offset = 0;
  uint64_t gy_version = 0;
  Shape gy_strides;
  memory::desc gy_desc;
  Tensor gy_blocked;

  bool has(const Tensor& gy, const memory::desc& want) const {
    return gy_storage && gy_storage == gy.storage() && gy_offset == gy.offset() && gy_version == gy.version() &&
           gy_strides == gy.strides() && gy_desc == want;
  }
  void keep(const Tensor& gy, const memory::desc& d, Tensor blocked) {
    gy_storage = gy.storage();
    gy_offset = gy.offset();
    gy_version = gy.version();
    gy_strides = gy.strides();
    gy_desc = d;
    gy_blocked = std::move(blocked);
  }
  void clear() {
    gy_storage.reset();
    gy_blocked = Tensor();
  }
};

ConvState* conv_state(OpStatePtr& state) {
  if (!state) state = std::make_shared<ConvState>();
  return dynamic_cast<ConvState*>(state.get());
}

// gy in the layout `want`: from the state when the sibling backward call already reordered it, else reordered
// here (and left in the state for the sibling).
memory blocked_gy(const Tensor& gy, const memory::desc& plain, const cpu::Reorder& reorder, const memory::desc& want,
                  ConvState* cs, Tensor& holder) {
  if (!reorder.needed) {
    holder = gy;  // already dense in the primitive's layout (set_layouts made `plain` from it)
    return cpu::wrap(plain, holder);
  }
  if (cs && cs->has(gy, want)) {
    holder = cs->gy_blocked;
    cs->clear();
    return memory(want, cpu::dnnl_engine(), holder.raw_data());
  }
  memory m = reorder.in(cpu::wrap(plain, gy), want, holder);
  if (cs) cs->keep(gy, want, holder);
  return m;
}

void check_f32(const char* op, const Tensor& t, const char* what) {
  cpu::check_cpu(op, what, t);
  if (t.dtype() != DType::f32) cpu::unsupported(op, t.dtype());
}

// Winograd F(4x4, 3x3) instead of oneDNN's direct convolution: 3x3, stride 1, no dilation or groups, both
// activations channels-last, channel counts multiples of 8, on an AVX2 + FMA CPU (cpu_winograd.h). `in` and
// `out` are the activations the kernel reads and writes (x and y forward, gy and gx for backward-data).
bool winograd_applies(const Shape& w, const Conv2dParams& p, const Tensor& in, const Tensor& out) {
  return w[2] == 3 && w[3] == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
         p.groups == 1 && cpu::is_nhwc(in) && cpu::is_nhwc(out) && cpu::winograd_fits(in.size(1), out.size(1));
}

// The kernel's view of a stride-1 3x3 convolution from `in` (N, C, H, W) to `out` (N, K, P, Q).
cpu::WinogradShape winograd_shape(const Tensor& in, const Tensor& out, int64_t pad_h, int64_t pad_w) {
  cpu::WinogradShape s;
  s.n = in.size(0);
  s.in_c = in.size(1), s.in_h = in.size(2), s.in_w = in.size(3);
  s.out_c = out.size(1), s.out_h = out.size(2), s.out_w = out.size(3);
  s.pad_h = pad_h, s.pad_w = pad_w;
  return s;
}

// out = the stride-1 3x3 convolution of `in` by w (K, C, 3, 3): forward (flip = false, in = x) or backward-data
// (flip = true, in = gy: the flipped, transposed filters with padding 2 - pad).
void winograd_conv(Tensor& out, const Tensor& in, const Tensor& w, bool flip, const Conv2dParams& p,
                   const cpu::WinogradEpilogue& e) {
  const int64_t K = w.size(0), C = w.size(1);
  Tensor u = empty({cpu::winograd_weights_size(C, K)}, TensorOptions{}.dtype(DType::f32));
  cpu::winograd_transform_weights(u.data<float>(), w.data<float>(), K, C, flip);
  const cpu::WinogradShape s = winograd_shape(in, out, flip ? 2 - p.pad_h : p.pad_h, flip ? 2 - p.pad_w : p.pad_w);
  cpu::winograd_conv3x3(out.data<float>(), in.data<float>(), u.data<float>(), s, e);
}

}  // namespace

void CpuBackend::conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                OpStatePtr& state) {
  const char* op = "conv2d_forward";
  check_f32(op, x, "x");
  check_f32(op, w, "w");
  ConvGeom g = make_geom(op, x.sizes(), w.sizes(), p);
  cpu::check_tensor(op, "y", y, DType::f32, g.y);
  MINIDL_CHECK(y.is_contiguous() || y.is_channels_last(), op, " (backend cpu): y must be contiguous or channels-last");
  const Tensor xc = cpu::dense_input(x), wc = cpu::contiguous_input(w);
  set_layouts(g, xc, y, cpu::is_nhwc(y));
  const bool has_bias = bias.defined();
  if (has_bias) cpu::check_tensor(op, "bias", bias, DType::f32, {w.sizes()[0]});
  if (y.numel() == 0) return;
  MINIDL_CHECK(x.numel() > 0 && w.numel() > 0, op, " (backend cpu): empty input or weight (", g.str, ")");
  if (winograd_applies(w.sizes(), p, xc, y)) {
    if (ConvState* cs = conv_state(state)) cs->clear();
    const Tensor bc = has_bias ? cpu::contiguous_input(bias) : Tensor();
    winograd_conv(y, xc, wc, false, p, {has_bias ? bc.data<float>() : nullptr, false, false});
    return;
  }
  auto plan = cpu::dnnl_call(op, g.str, [&] {
    return fwd_cache().get(g.key(has_bias), [&] {
      FwdPlan pl;
      pl.pd = fwd_pd(g, has_bias);
      pl.prim = convolution_forward(pl.pd);
      pl.x_in = cpu::Reorder(g.x_md, pl.pd.src_desc());
      pl.w_in = cpu::Reorder(g.w_md, pl.pd.weights_desc());
      pl.y_out = cpu::Reorder(pl.pd.dst_desc(), g.y_md);
      return pl;
    });
  });
  if (ConvState* cs = conv_state(state)) cs->clear();
  Tensor bc = has_bias ? cpu::contiguous_input(bias) : Tensor();
  cpu::dnnl_call(op, g.str, [&] {
    Tensor hx, hw, hy;
    memory y_user = cpu::wrap(g.y_md, y);
    memory xm = plan->x_in.in(cpu::wrap(g.x_md, xc), plan->pd.src_desc(), hx);
    memory wm = plan->w_in.in(cpu::wrap(g.w_md, wc), plan->pd.weights_desc(), hw);
    memory ym = plan->y_out.needed ? cpu::scratch(plan->pd.dst_desc(), hy) : y_user;
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, cpu::wrap(g.b_md, bc));
    plan->prim.execute(cpu::dnnl_stream(), args);
    plan->y_out.out(ym, y_user);
  });
}

void CpuBackend::conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                                      OpStatePtr& state) {
  const char* op = "conv2d_backward_data";
  check_f32(op, gx, "gx");
  check_f32(op, gy, "gy");
  check_f32(op, w, "w");
  ConvGeom g = make_geom(op, gx.sizes(), w.sizes(), p);
  cpu::check_tensor(op, "gy", gy, DType::f32, g.y);
  MINIDL_CHECK(gx.is_contiguous() || gx.is_channels_last(), op,
               " (backend cpu): gx must be contiguous or channels-last");
  const Tensor gyd = cpu::dense_input(gy);
  set_layouts(g, gx, gyd, cpu::is_nhwc(gyd));
  if (gx.numel() == 0) return;
  if (gy.numel() == 0 || w.numel() == 0) {
    fill(gx, 0.0);
    return;
  }
  if (winograd_applies(w.sizes(), p, gyd, gx)) {
    winograd_conv(gx, gyd, cpu::contiguous_input(w), true, p, {});
    return;
  }
  auto plan = cpu::dnnl_call(op, g.str, [&] {
    return bwd_data_cache().get(g.key(0), [&] {
      BwdDataPlan pl;
      convolution_backward_data::desc d(algorithm::convolution_direct, act_md(g, g.x), any_weights(g), act_md(g, g.y),
                                        g.strides, g.dilates, g.pad_l, g.pad_r);
      pl.pd = convolution_backward_data::primitive_desc(d, cpu::dnnl_engine(), fwd_pd(g, false));
      pl.prim = convolution_backward_data(pl.pd);
      pl.gy_in = cpu::Reorder(g.y_md, pl.pd.diff_dst_desc());
      pl.w_in = cpu::Reorder(g.w_md, pl.pd.weights_desc());
      pl.gx_out = cpu::Reorder(pl.pd.diff_src_desc(), g.x_md);
      return pl;
    });
  });
  const Tensor wc = cpu::contiguous_input(w);
  ConvState* cs = conv_state(state);
  cpu::dnnl_call(op, g.str, [&] {
    Tensor hgy, hw, hgx;
    memory gx_user = cpu::wrap(g.x_md, gx);
    memory gym = blocked_gy(gyd, g.y_md, plan->gy_in, plan->pd.diff_dst_desc(), cs, hgy);
    memory wm = plan->w_in.in(cpu::wrap(g.w_md, wc), plan->pd.weights_desc(), hw);
    memory gxm = plan->gx_out.needed ? cpu::scratch(plan->pd.diff_src_desc(), hgx) : gx_user;
    plan->prim.execute(cpu::dnnl_stream(),
                       {{DNNL_ARG_DIFF_DST, gym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, gxm}});
    plan->gx_out.out(gxm, gx_user);
  });
}

void CpuBackend::conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                        const Conv2dParams& p, OpStatePtr& state) {
  const char* op = "conv2d_backward_weight";
  check_f32(op, gw, "gw");
  check_f32(op, gy, "gy");
  check_f32(op, x, "x");
  ConvGeom g = make_geom(op, x.sizes(), gw.sizes(), p);
  cpu::check_tensor(op, "gy", gy, DType::f32, g.y);
  MINIDL_CHECK(gw.is_contiguous(), op, " (backend cpu): gw must be contiguous");
  const Tensor gyd = cpu::dense_input(gy), xc = cpu::dense_input(x);
  set_layouts(g, xc, gyd, cpu::is_nhwc(gyd));
  const bool has_bias = gbias.defined();
  if (has_bias) {
    cpu::check_tensor(op, "gbias", gbias, DType::f32, {gw.sizes()[0]});
    MINIDL_CHECK(gbias.is_contiguous(), op, " (backend cpu): gbias must be contiguous");
  }
  if (gy.numel() == 0 || x.numel() == 0) {
    fill(gw, 0.0);
    if (has_bias) fill(gbias, 0.0);
    return;
  }
  if (gw.numel() == 0) {
    if (has_bias) fill(gbias, 0.0);
    return;
  }
  if (winograd_applies(gw.sizes(), p, xc, gyd)) {
    cpu::winograd_conv3x3_backward_weights(gw.data<float>(), xc.data<float>(), gyd.data<float>(),
                                           winograd_shape(xc, gyd, p.pad_h, p.pad_w));
    if (has_bias) {
      Tensor gb4 = gbias.as_strided({1, gbias.size(0), 1, 1}, {gbias.size(0), 1, 1, 1}, gbias.offset());
      reduce(ReduceOp::Sum, gb4, gyd, std::vector<int64_t>{0, 2, 3});
    }
    return;
  }
  auto plan = cpu::dnnl_call(op, g.str, [&] {
    return bwd_weight_cache().get(g.key(has_bias), [&] {
      BwdWeightPlan pl;
      convolution_backward_weights::desc d(algorithm::convolution_direct, act_md(g, g.x), any_weights(g),
                                           has_bias ? g.b_md : memory::desc(), act_md(g, g.y), g.strides, g.dilates,
                                           g.pad_l, g.pad_r);
      pl.pd = convolution_backward_weights::primitive_desc(d, cpu::dnnl_engine(), fwd_pd(g, has_bias));
      pl.prim = convolution_backward_weights(pl.pd);
      pl.gy_in = cpu::Reorder(g.y_md, pl.pd.diff_dst_desc());
      pl.x_in = cpu::Reorder(g.x_md, pl.pd.src_desc());
      pl.gw_out = cpu::Reorder(pl.pd.diff_weights_desc(), g.w_md);
      if (has_bias) pl.gb_out = cpu::Reorder(pl.pd.diff_bias_desc(), g.b_md);
      return pl;
    });
  });
  ConvState* cs = conv_state(state);
  cpu::dnnl_call(op, g.str, [&] {
    Tensor hgy, hx, hgw, hgb;
    memory gw_user = cpu::wrap(g.w_md, gw);
    memory gym = blocked_gy(gyd, g.y_md, plan->gy_in, plan->pd.diff_dst_desc(), cs, hgy);
    memory xm = plan->x_in.in(cpu::wrap(g.x_md, xc), plan->pd.src_desc(), hx);
    memory gwm = plan->gw_out.needed ? cpu::scratch(plan->pd.diff_weights_desc(), hgw) : gw_user;
    std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, gym}, {DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_WEIGHTS, gwm}};
    memory gb_user, gbm;
    if (has_bias) {
      gb_user = cpu::wrap(g.b_md, gbias);
      gbm = plan->gb_out.needed ? cpu::scratch(plan->pd.diff_bias_desc(), hgb) : gb_user;
      args.emplace(DNNL_ARG_DIFF_BIAS, gbm);
    }
    plan->prim.execute(cpu::dnnl_stream(), args);
    plan->gw_out.out(gwm, gw_user);
    if (has_bias) plan->gb_out.out(gbm, gb_user);
  });
}

// Inference: one forward_inference convolution with the bias (the caller folded batch norm into w and bias), a
// sum post-op adding the residual (copied into y first: oneDNN's sum accumulates onto dst) and a ReLU post-op.
// Where PyTorch runs conv, bn, add and relu as four passes over memory, this is one. A residual on a geometry
// with padding-only output rows or columns takes the composed path instead (dnnl_workarounds.h: oneDNN 2.6's
// AVX-512 kernels crash on that sum post-op).
void CpuBackend::conv2d_inference(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                                  const Conv2dParams& p, const Tensor& residual, bool relu) {
  const char* op = "conv2d_inference";
  check_f32(op, x, "x");
  check_f32(op, w, "w");
  ConvGeom g = make_geom(op, x.sizes(), w.sizes(), p);
  cpu::check_tensor(op, "y", y, DType::f32, g.y);
  MINIDL_CHECK(y.is_contiguous() || y.is_channels_last(), op, " (backend cpu): y must be contiguous or channels-last");
  const bool has_bias = bias.defined(), has_res = residual.defined();
  if (has_bias) cpu::check_tensor(op, "bias", bias, DType::f32, {w.sizes()[0]});
  if (has_res) cpu::check_tensor(op, "residual", residual, DType::f32, g.y);
  if (y.numel() == 0) return;
  MINIDL_CHECK(x.numel() > 0 && w.numel() > 0, op, " (backend cpu): empty input or weight (", g.str, ")");
  if (has_res && cpu::conv_sum_postop_unsafe(x.sizes(), w.sizes(), p)) {
    Backend::conv2d_inference(y, x, w, bias, p, residual, relu);  // conv2d_forward, then add and ReLU
    return;
  }
  const Tensor xc = cpu::dense_input(x), wc = cpu::contiguous_input(w);
  set_layouts(g, xc, y, cpu::is_nhwc(y));
  if (winograd_applies(w.sizes(), p, xc, y)) {
    if (has_res) copy(y, residual);  // any layout of residual into y's; the epilogue adds onto it
    const Tensor bc = has_bias ? cpu::contiguous_input(bias) : Tensor();
    winograd_conv(y, xc, wc, false, p, {has_bias ? bc.data<float>() : nullptr, has_res, relu});
    return;
  }
  auto plan = cpu::dnnl_call(op, g.str, [&] {
    return infer_cache().get(g.key(int64_t{has_bias} | int64_t{has_res} << 1 | int64_t{relu} << 2), [&] {
      InferPlan pl;
      convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, act_md(g, g.x),
                                  any_weights(g), has_bias ? g.b_md : memory::desc(), act_md(g, g.y), g.strides,
                                  g.dilates, g.pad_l, g.pad_r);
      post_ops ops;
      if (has_res) ops.append_sum(1.0f);
      if (relu) ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
      primitive_attr attr;
      attr.set_post_ops(ops);
      pl.pd = convolution_forward::primitive_desc(d, attr, cpu::dnnl_engine());
      pl.prim = convolution_forward(pl.pd);
      pl.x_in = cpu::Reorder(g.x_md, pl.pd.src_desc());
      pl.w_in = cpu::Reorder(g.w_md, pl.pd.weights_desc());
      pl.y_in = cpu::Reorder(g.y_md, pl.pd.dst_desc());
      pl.y_out = cpu::Reorder(pl.pd.dst_desc(), g.y_md);
      return pl;
    });
  });
  if (has_res) copy(y, residual);  // any layout of residual into y's
  Tensor bc = has_bias ? cpu::contiguous_input(bias) : Tensor();
  cpu::dnnl_call(op, g.str, [&] {
    Tensor hx, hw, hy;
    memory y_user = cpu::wrap(g.y_md, y);
    memory xm = plan->x_in.in(cpu::wrap(g.x_md, xc), plan->pd.src_desc(), hx);
    memory wm = plan->w_in.in(cpu::wrap(g.w_md, wc), plan->pd.weights_desc(), hw);
    memory ym = y_user;
    if (plan->y_out.needed)
      ym = has_res ? plan->y_in.in(y_user, plan->pd.dst_desc(), hy) : cpu::scratch(plan->pd.dst_desc(), hy);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, cpu::wrap(g.b_md, bc));
    plan->prim.execute(cpu::dnnl_stream(), args);
    plan->y_out.out(ym, y_user);
  });
}

}  // namespace minidl
