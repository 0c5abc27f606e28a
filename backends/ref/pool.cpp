// Ref pooling over (N,C,H,W): max (with i64 indices h*W+w inside the input plane, first maximum wins, NaN wins
// like PyTorch), average (count_include_pad as in PyTorch, no ceil mode), and PyTorch's adaptive average
// (cell i covers [floor(i*H/P), ceil((i+1)*H/P))). Each forward has its backward; backwards overwrite gx.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {
namespace {

// Checks params and the (N,C,H,W) -> (N,C,P,Q) shapes of a pooling op.
void check_pool(const char* op, const Shape& x, const Shape& y, const Pool2dParams& p) {
  MINIDL_CHECK(x.size() == 4 && y.size() == 4, "ref ", op, ": expected 4-d input and output, got ", shape_str(x),
               " and ", shape_str(y));
  MINIDL_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 &&
                   p.pad_w >= 0,
               "ref ", op, ": bad params kernel (", p.kernel_h, ", ", p.kernel_w, ") stride (", p.stride_h, ", ",
               p.stride_w, ") pad (", p.pad_h, ", ", p.pad_w, ")");
  // PyTorch's rule; it also guarantees every window touches at least one real element.
  MINIDL_CHECK(2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, "ref ", op, ": padding (", p.pad_h, ", ",
               p.pad_w, ") must be at most half the kernel (", p.kernel_h, ", ", p.kernel_w, ")");
  const int64_t P = conv_out_size(x[2], p.kernel_h, p.stride_h, p.pad_h);
  const int64_t Q = conv_out_size(x[3], p.kernel_w, p.stride_w, p.pad_w);
  MINIDL_CHECK(P >= 1 && Q >= 1, "ref ", op, ": kernel (", p.kernel_h, ", ", p.kernel_w, ") does not fit input ",
               shape_str(x));
  MINIDL_CHECK(y[0] == x[0] && y[1] == x[1] && y[2] == P && y[3] == Q, "ref ", op, ": output has shape ",
               shape_str(y), ", expected ", shape_str({x[0], x[1], P, Q}), " for input ", shape_str(x));
}

// PyTorch's average-pool divisor for the window starting at (h0, w0) in padded coordinates shifted by -pad.
int64_t avg_divisor(int64_t h0, int64_t w0, int64_t H, int64_t W, const Pool2dParams& p) {
  int64_t h1 = std::min(h0 + p.kernel_h, H + p.pad_h);
  int64_t w1 = std::min(w0 + p.kernel_w, W + p.pad_w);
  if (p.count_include_pad) return (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, H);
  w1 = std::min(w1, W);
  return (h1 - h0) * (w1 - w0);
}

int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }  // floor
int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }  // ceil

}  // namespace

void RefBackend::max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  const char* op = "max_pool2d_forward";
  ref::check_host(y, op, "y");
  ref::check_host(indices, op, "indices");
  ref::check_host(x, op, "x");
  check_pool(op, x.sizes(), y.sizes(), p);
  ref::check_dtype(y, x.dtype(), op, "y");
  ref::check_dtype(indices, DType::i64, op, "indices");
  ref::check_shape(indices, y.sizes(), op, "indices");
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc<const T, 4>(x, op);  // (N, C, H, W)
    auto Y = ref::acc<T, 4>(y, op);  // (N, C, P, Q)
    auto I = ref::acc<int64_t, 4>(indices, op);  // (N, C, P, Q)
    const int64_t H = X.sz[2], W = X.sz[3];
    for (int64_t n = 0; n < Y.sz[0]; ++n)
      for (int64_t c = 0; c < Y.sz[1]; ++c)
        for (int64_t oh = 0; oh < Y.sz[2]; ++oh)
          for (int64_t ow = 0; ow < Y.sz[3]; ++ow) {
            T best = -std::numeric_limits<T>::infinity();
            int64_t best_idx = -1;
            for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh;
              if (ih < 0 || ih >= H) continue;
              for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw;
                if (iw < 0 || iw >= W) continue;
                const T v = X(n, c, ih, iw);
                if (best_idx < 0 || v > best || std::isnan(v)) {
                  best = v;
                  best_idx = ih * W + iw;
                  if (std::isnan(v)) break;
                }
              }
              if (std::isnan(best)) break;
            }
            Y(n, c, oh, ow) = best;
            I(n, c, oh, ow) = best_idx;
          }
  });
}

void RefBackend::max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) {
  const char* op = "max_pool2d_backward";
  ref::check_host(gx, op, "gx");
  ref::check_host(gy, op, "gy");
  ref::check_host(indices, op, "indices");
  check_pool(op, gx.sizes(), gy.sizes(), p);
  ref::check_dtype(gx, gy.dtype(), op, "gx");
  ref::check_dtype(indices, DType::i64, op, "indices");
  ref::check_shape(indices, gy.sizes(), op, "indices");
  ref::dispatch_float(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto GY = ref::acc<const T, 4>(gy, op);  // (N, C, P, Q)
    auto I = ref::acc<const int64_t, 4>(indices, op);
    auto GX = ref::acc<T, 4>(gx, op);  // (N, C, H, W)
    const int64_t H = GX.sz[2], W = GX.sz[3];
    for (int64_t n = 0; n < GX.sz[0]; ++n) {
      for (int64_t c = 0; c < GX.sz[1]; ++c) {
        // Overlapping windows can pick the same element: accumulate the plane in double, then write it.
        std::vector<double> plane(static_cast<size_t>(H * W), 0.0);
        for (int64_t oh = 0; oh < GY.sz[2]; ++oh)
          for (int64_t ow = 0; ow < GY.sz[3]; ++ow) {
            const int64_t idx = I(n, c, oh, ow);
            MINIDL_CHECK(idx >= 0 && idx < H * W, "ref ", op, ": index ", idx, " at (", n, ", ", c, ", ", oh, ", ",
                         ow, ") is outside the ", H, "x", W, " input plane");
            plane[static_cast<size_t>(idx)] += static_cast<double>(GY(n, c, oh, ow));
          }
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) GX(n, c, h, w) = static_cast<T>(plane[static_cast<size_t>(h * W + w)]);
      }
    }
  });
}

void RefBackend::avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) {
  const char* op = "avg_pool2d_forward";
  ref::check_host(y, op, "y");
  ref::check_host(x, op, "x");
  check_pool(op, x.sizes(), y.sizes(), p);
  ref::check_dtype(y, x.dtype(), op, "y");
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc<const T, 4>(x, op);  // (N, C, H, W)
    auto Y = ref::acc<T, 4>(y, op);  // (N, C, P, Q)
    const int64_t H = X.sz[2], W = X.sz[3];
    for (int64_t n = 0; n < Y.sz[0]; ++n)
      for (int64_t c = 0; c < Y.sz[1]; ++c)
        for (int64_t oh = 0; oh < Y.sz[2]; ++oh)
          for (int64_t ow = 0; ow < Y.sz[3]; ++ow) {
            const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
            double s = 0.0;
            for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + p.kernel_h, H); ++ih)
              for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + p.kernel_w, W); ++iw)
                s += static_cast<double>(X(n, c, ih, iw));
            Y(n, c, oh, ow) = static_cast<T>(s / static_cast<double>(avg_divisor(h0, w0, H, W, p)));
          }
  });
}

void RefBackend::avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) {
  const char* op = "avg_pool2d_backward";
  ref::check_host(gx, op, "gx");
  ref::check_host(gy, op, "gy");
  check_pool(op, gx.sizes(), gy.sizes(), p);
  ref::check_dtype(gx, gy.dtype(), op, "gx");
  ref::dispatch_float(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto GY = ref::acc<const T, 4>(gy, op);  // (N, C, P, Q)
    auto GX = ref::acc<T, 4>(gx, op);  // (N, C, H, W)
    const int64_t H = GX.sz[2], W = GX.sz[3];
    for (int64_t n = 0; n < GX.sz[0]; ++n)
      for (int64_t c = 0; c < GX.sz[1]; ++c) {
        std::vector<double> plane(static_cast<size_t>(H * W), 0.0);
        for (int64_t oh = 0; oh < GY.sz[2]; ++oh)
          for (int64_t ow = 0; ow < GY.sz[3]; ++ow) {
            const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
            const double g = static_cast<double>(GY(n, c, oh, ow)) /
                             static_cast<double>(avg_divisor(h0, w0, H, W, p));
            for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + p.kernel_h, H); ++ih)
              for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + p.kernel_w, W); ++iw)
                plane[static_cast<size_t>(ih * W + iw)] += g;
          }
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) GX(n, c, h, w) = static_cast<T>(plane[static_cast<size_t>(h * W + w)]);
      }
  });
}

void RefBackend::adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) {
  const char* op = "adaptive_avg_pool2d_forward";
  ref::check_host(y, op, "y");
  ref::check_host(x, op, "x");
  MINIDL_CHECK(x.dim() == 4 && y.dim() == 4 && y.size(0) == x.size(0) && y.size(1) == x.size(1) &&
                   y.size(2) >= 1 && y.size(3) >= 1,
               "ref ", op, ": expected x (N, C, H, W) and y (N, C, P, Q) with P, Q >= 1, got x ",
               shape_str(x.sizes()), ", y ", shape_str(y.sizes()));
  ref::check_dtype(y, x.dtype(), op, "y");
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc<const T, 4>(x, op);  // (N, C, H, W)
    auto Y = ref::acc<T, 4>(y, op);  // (N, C, P, Q)
    const int64_t H = X.sz[2], W = X.sz[3], P = Y.sz[2], Q = Y.sz[3];
    for (int64_t n = 0; n < Y.sz[0]; ++n)
      for (int64_t c = 0; c < Y.sz[1]; ++c)
        for (int64_t oh = 0; oh < P; ++oh)
          for (int64_t ow = 0; ow < Q; ++ow) {
            const int64_t h0 = adaptive_start(oh, H, P), h1 = adaptive_end(oh, H, P);
            const int64_t w0 = adaptive_start(ow, W, Q), w1 = adaptive_end(ow, W, Q);
            double s = 0.0;
            for (int64_t ih = h0; ih < h1; ++ih)
              for (int64_t iw = w0; iw < w1; ++iw) s += static_cast<double>(X(n, c, ih, iw));
            Y(n, c, oh, ow) = static_cast<T>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
          }
  });
}

void RefBackend::adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) {
  const char* op = "adaptive_avg_pool2d_backward";
  ref::check_host(gx, op, "gx");
  ref::check_host(gy, op, "gy");
  MINIDL_CHECK(gx.dim() == 4 && gy.dim() == 4 && gy.size(0) == gx.size(0) && gy.size(1) == gx.size(1) &&
                   gy.size(2) >= 1 && gy.size(3) >= 1,
               "ref ", op, ": expected gx (N, C, H, W) and gy (N, C, P, Q) with P, Q >= 1, got gx ",
               shape_str(gx.sizes()), ", gy ", shape_str(gy.sizes()));
  ref::check_dtype(gx, gy.dtype(), op, "gx");
  ref::dispatch_float(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto GY = ref::acc<const T, 4>(gy, op);  // (N, C, P, Q)
    auto GX = ref::acc<T, 4>(gx, op);  // (N, C, H, W)
    const int64_t H = GX.sz[2], W = GX.sz[3], P = GY.sz[2], Q = GY.sz[3];
    for (int64_t n = 0; n < GX.sz[0]; ++n)
      for (int64_t c = 0; c < GX.sz[1]; ++c) {
        std::vector<double> plane(static_cast<size_t>(H * W), 0.0);
        for (int64_t oh = 0; oh < P; ++oh)
          for (int64_t ow = 0; ow < Q; ++ow) {
            const int64_t h0 = adaptive_start(oh, H, P), h1 = adaptive_end(oh, H, P);
            const int64_t w0 = adaptive_start(ow, W, Q), w1 = adaptive_end(ow, W, Q);
            const double g = static_cast<double>(GY(n, c, oh, ow)) / static_cast<double>((h1 - h0) * (w1 - w0));
            for (int64_t ih = h0; ih < h1; ++ih)
              for (int64_t iw = w0; iw < w1; ++iw) plane[static_cast<size_t>(ih * W + iw)] += g;
          }
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) GX(n, c, h, w) = static_cast<T>(plane[static_cast<size_t>(h * W + w)]);
      }
  });
}

}  // namespace minidl
