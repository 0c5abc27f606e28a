// Ref 2-D convolution, forward / backward-data / backward-weight, with stride, padding, dilation, groups and
// an optional bias. All three are the same direct sum
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*Cg + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k,c,r,s]
// (g = k / Kg), read in the three directions; taps that land in the padding contribute nothing.
#include <vector>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {
namespace {

struct ConvGeom {
  int64_t N, C, H, W;  // x
  int64_t K, Cg, R, S;  // w (K, C/groups, R, S)
  int64_t P, Q;         // y spatial
  int64_t G, Kg;        // groups, output channels per group
};

// Checks x/w/y shapes against each other and the params; any of the shapes is the caller's tensor.
ConvGeom conv_geom(const char* op, const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  MINIDL_CHECK(x.size() == 4 && w.size() == 4 && y.size() == 4, "ref ", op, ": expected 4-d x, w, y, got x ",
               shape_str(x), ", w ", shape_str(w), ", y ", shape_str(y));
  MINIDL_CHECK(p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_h >= 0 &&
                   p.pad_w >= 0 && p.groups >= 1,
               "ref ", op, ": bad params stride (", p.stride_h, ", ", p.stride_w, ") pad (", p.pad_h, ", ", p.pad_w,
               ") dilation (", p.dilation_h, ", ", p.dilation_w, ") groups ", p.groups);
  ConvGeom g{x[0], x[1], x[2], x[3], w[0], w[1], w[2], w[3], y[2], y[3], p.groups, 0};
  MINIDL_CHECK(g.C % g.G == 0 && g.K % g.G == 0, "ref ", op, ": channels in ", g.C, " and out ", g.K,
               " must be divisible by groups ", g.G);
  g.Kg = g.K / g.G;
  MINIDL_CHECK(g.Cg * g.G == g.C, "ref ", op, ": weight ", shape_str(w), " expects ", g.Cg * g.G,
               " input channels, x ", shape_str(x), " has ", g.C);
  const int64_t P = conv_out_size(g.H, g.R, p.stride_h, p.pad_h, p.dilation_h);
  const int64_t Q = conv_out_size(g.W, g.S, p.stride_w, p.pad_w, p.dilation_w);
  MINIDL_CHECK(P >= 1 && Q >= 1, "ref ", op, ": the kernel ", shape_str(w), " does not fit the input ",
               shape_str(x), " with the given padding and dilation");
  MINIDL_CHECK(y[0] == g.N && y[1] == g.K && y[2] == P && y[3] == Q, "ref ", op, ": y has shape ", shape_str(y),
               ", expected ", shape_str({g.N, g.K, P, Q}), " for x ", shape_str(x), " and w ", shape_str(w));
  return g;
}

}  // namespace

void RefBackend::conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                                const Conv2dParams& p, OpStatePtr& /*state: nothing to keep*/) {
  ref::check_host(y, "conv2d_forward", "y");
  ref::check_host(x, "conv2d_forward", "x");
  ref::check_host(w, "conv2d_forward", "w");
  const ConvGeom g = conv_geom("conv2d_forward", x.sizes(), w.sizes(), y.sizes(), p);
  ref::check_dtype(w, x.dtype(), "conv2d_forward", "w");
  ref::check_dtype(y, x.dtype(), "conv2d_forward", "y");
  if (bias.defined()) {
    ref::check_host(bias, "conv2d_forward", "bias");
    ref::check_shape(bias, {g.K}, "conv2d_forward", "bias");
    ref::check_dtype(bias, x.dtype(), "conv2d_forward", "bias");
  }
  ref::dispatch_float(x.dtype(), "conv2d_forward", [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc<const T, 4>(x, "conv2d_forward");  // (N, C, H, W)
    auto Wt = ref::acc<const T, 4>(w, "conv2d_forward");  // (K, C/G, R, S)
    auto Y = ref::acc<T, 4>(y, "conv2d_forward");  // (N, K, P, Q)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t k = 0; k < g.K; ++k) {
        const int64_t c0 = (k / g.Kg) * g.Cg;  // first input channel of k's group
        const double b0 = bias.defined() ? static_cast<double>(bias.data<T>()[k * bias.stride(0)]) : 0.0;
        for (int64_t oh = 0; oh < g.P; ++oh) {
          for (int64_t ow = 0; ow < g.Q; ++ow) {
            double s = b0;
            for (int64_t c = 0; c < g.Cg; ++c) {
              for (int64_t r = 0; r < g.R; ++r) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dilation_h;
                if (ih < 0 || ih >= g.H) continue;
                for (int64_t sw = 0; sw < g.S; ++sw) {
                  const int64_t iw = ow * p.stride_w - p.pad_w + sw * p.dilation_w;
                  if (iw < 0 || iw >= g.W) continue;
                  s += static_cast<double>(X(n, c0 + c, ih, iw)) * static_cast<double>(Wt(k, c, r, sw));
                }
              }
            }
            Y(n, k, oh, ow) = static_cast<T>(s);
          }
        }
      }
    }
  });
}

void RefBackend::conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                                      OpStatePtr& /*state*/) {
  ref::check_host(gx, "conv2d_backward_data", "gx");
  ref::check_host(gy, "conv2d_backward_data", "gy");
  ref::check_host(w, "conv2d_backward_data", "w");
  const ConvGeom g = conv_geom("conv2d_backward_data", gx.sizes(), w.sizes(), gy.sizes(), p);
  ref::check_dtype(w, gy.dtype(), "conv2d_backward_data", "w");
  ref::check_dtype(gx, gy.dtype(), "conv2d_backward_data", "gx");
  ref::dispatch_float(gy.dtype(), "conv2d_backward_data", [&](auto tag) {
    using T = decltype(tag);
    auto GY = ref::acc<const T, 4>(gy, "conv2d_backward_data");  // (N, K, P, Q)
    auto Wt = ref::acc<const T, 4>(w, "conv2d_backward_data");  // (K, C/G, R, S)
    // Scatter every output gradient back along the taps that produced it, into a dense double buffer
    // (N, C, H, W), then write gx (kernels overwrite their outputs).
    std::vector<double> acc(static_cast<size_t>(g.N * g.C * g.H * g.W), 0.0);
    auto at = [&](int64_t n, int64_t c, int64_t h, int64_t ww) -> double& {
      return acc[static_cast<size_t>(((n * g.C + c) * g.H + h) * g.W + ww)];
    };
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t k = 0; k < g.K; ++k) {
        const int64_t c0 = (k / g.Kg) * g.Cg;
        for (int64_t oh = 0; oh < g.P; ++oh) {
          for (int64_t ow = 0; ow < g.Q; ++ow) {
            const double go = static_cast<double>(GY(n, k, oh, ow));
            for (int64_t c = 0; c < g.Cg; ++c) {
              for (int64_t r = 0; r < g.R; ++r) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dilation_h;
                if (ih < 0 || ih >= g.H) continue;
                for (int64_t sw = 0; sw < g.S; ++sw) {
                  const int64_t iw = ow * p.stride_w - p.pad_w + sw * p.dilation_w;
                  if (iw < 0 || iw >= g.W) continue;
                  at(n, c0 + c, ih, iw) += go * static_cast<double>(Wt(k, c, r, sw));
                }
              }
            }
          }
        }
      }
    }
    auto GX = ref::acc<T, 4>(gx, "conv2d_backward_data");  // (N, C, H, W)
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t h = 0; h < g.H; ++h)
          for (int64_t ww = 0; ww < g.W; ++ww) GX(n, c, h, ww) = static_cast<T>(at(n, c, h, ww));
  });
}

void RefBackend::conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                        const Conv2dParams& p, OpStatePtr& /*state*/) {
  ref::check_host(gw, "conv2d_backward_weight", "gw");
  ref::check_host(gy, "conv2d_backward_weight", "gy");
  ref::check_host(x, "conv2d_backward_weight", "x");
  const ConvGeom g = conv_geom("conv2d_backward_weight", x.sizes(), gw.sizes(), gy.sizes(), p);
  ref::check_dtype(gy, x.dtype(), "conv2d_backward_weight", "gy");
  ref::check_dtype(gw, x.dtype(), "conv2d_backward_weight", "gw");
  if (gbias.defined()) {
    ref::check_host(gbias, "conv2d_backward_weight", "gbias");
    ref::check_shape(gbias, {g.K}, "conv2d_backward_weight", "gbias");
    ref::check_dtype(gbias, x.dtype(), "conv2d_backward_weight", "gbias");
  }
  ref::dispatch_float(x.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc<const T, 4>(x, "conv2d_backward_weight");  // (N, C, H, W)
    auto GY = ref::acc<const T, 4>(gy, "conv2d_backward_weight");  // (N, K, P, Q)
    auto GW = ref::acc<T, 4>(gw, "conv2d_backward_weight");  // (K, C/G, R, S)
    // gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] * x[n, c0+c, ih, iw]
    for (int64_t k = 0; k < g.K; ++k) {
      const int64_t c0 = (k / g.Kg) * g.Cg;
      for (int64_t c = 0; c < g.Cg; ++c) {
        for (int64_t r = 0; r < g.R; ++r) {
          for (int64_t sw = 0; sw < g.S; ++sw) {
            double s = 0.0;
            for (int64_t n = 0; n < g.N; ++n) {
              for (int64_t oh = 0; oh < g.P; ++oh) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dilation_h;
                if (ih < 0 || ih >= g.H) continue;
                for (int64_t ow = 0; ow < g.Q; ++ow) {
                  const int64_t iw = ow * p.stride_w - p.pad_w + sw * p.dilation_w;
                  if (iw < 0 || iw >= g.W) continue;
                  s += static_cast<double>(GY(n, k, oh, ow)) * static_cast<double>(X(n, c0 + c, ih, iw));
                }
              }
            }
            GW(k, c, r, sw) = static_cast<T>(s);
          }
        }
      }
    }
    if (gbias.defined()) {
      // gbias (K) = sum_{n,p,q} gy[n,k,p,q]
      T* gb = gbias.data<T>();
      for (int64_t k = 0; k < g.K; ++k) {
        double s = 0.0;
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t oh = 0; oh < g.P; ++oh)
            for (int64_t ow = 0; ow < g.Q; ++ow) s += static_cast<double>(GY(n, k, oh, ow));
        gb[k * gbias.stride(0)] = static_cast<T>(s);
      }
    }
  });
}

}  // namespace minidl
