// Pooling kernel bodies over (N, C, H, W) (backends/ref/pool.cpp's definitions): max (i64 index h*W+w, first
// maximum wins, NaN wins), average (PyTorch's count_include_pad divisor) and adaptive average. Forwards compute
// one pooled cell each; backwards GATHER into one input element each (the windows that cover it, in ascending
// (oh, ow) order, summed in double): no atomics, so the result is deterministic and equals ref's scatter order.
#pragma once

#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/scalar.h"

namespace minidl::cuda::kern {

MINIDL_HD int64_t pool_divisor(const PoolArgs& a, int64_t h0, int64_t w0) {
  const int64_t H = a.plane.H, W = a.plane.W;
  int64_t h1 = k_min(h0 + a.kh, H + a.ph);
  int64_t w1 = k_min(w0 + a.kw, W + a.pw);
  if (a.count_include_pad) return (h1 - h0) * (w1 - w0);
  h0 = k_max<int64_t>(h0, 0);
  w0 = k_max<int64_t>(w0, 0);
  h1 = k_min(h1, H);
  w1 = k_min(w1, W);
  return (h1 - h0) * (w1 - w0);
}

/// The pooled cells (oh, ow) whose window covers input row ih: [lo, hi] clamped to [0, P).
MINIDL_HD void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t P, int64_t& lo, int64_t& hi) {
  const int64_t a = i + p - k + 1;  // oh * s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = k_min((i + p) / s, P - 1);
}

MINIDL_HD Dims4 pooled_dims(const PoolArgs& a) { return Dims4{a.plane.N, a.plane.C, a.P, a.Q}; }

template <typename T>
MINIDL_HD void max_pool_forward_cell(const PoolArgs& a, int64_t i) {
  int64_t n, c, oh, ow;
  pooled_dims(a).decode(i, n, c, oh, ow);
  const T* x = static_cast<const T*>(a.in);
  const int64_t H = a.plane.H, W = a.plane.W;
  T best = -static_cast<T>(__builtin_huge_val());
  int64_t best_idx = -1;
  for (int64_t kh = 0; kh < a.kh; ++kh) {
    const int64_t ih = oh * a.sh - a.ph + kh;
    if (ih < 0 || ih >= H) continue;
    for (int64_t kw = 0; kw < a.kw; ++kw) {
      const int64_t iw = ow * a.sw - a.pw + kw;
      if (iw < 0 || iw >= W) continue;
      const T v = x[a.in_st.at(n, c, ih, iw)];
      if (best_idx < 0 || v > best || is_nan(v)) {
        best = v;
        best_idx = ih * W + iw;
        if (is_nan(v)) break;
      }
    }
    if (is_nan(best)) break;
  }
  static_cast<T*>(a.out)[a.out_st.at(n, c, oh, ow)] = best;
  static_cast<int64_t*>(a.indices)[a.idx_st.at(n, c, oh, ow)] = best_idx;
}

template <typename T>
MINIDL_HD void max_pool_backward_elem(const PoolArgs& a, int64_t i) {
  int64_t n, c, ih, iw;
  a.plane.decode(i, n, c, ih, iw);
  const T* gy = static_cast<const T*>(a.in);
  const int64_t* idx = static_cast<const int64_t*>(a.indices);
  const int64_t me = ih * a.plane.W + iw;
  int64_t oh0, oh1, ow0, ow1;
  covering(ih, a.kh, a.sh, a.ph, a.P, oh0, oh1);
  covering(iw, a.kw, a.sw, a.pw, a.Q, ow0, ow1);
  double s = 0.0;
  for (int64_t oh = oh0; oh <= oh1; ++oh)
    for (int64_t ow = ow0; ow <= ow1; ++ow)
      if (idx[a.idx_st.at(n, c, oh, ow)] == me) s += static_cast<double>(gy[a.in_st.at(n, c, oh, ow)]);
  static_cast<T*>(a.out)[a.out_st.at(n, c, ih, iw)] = static_cast<T>(s);
}

template <typename T>
MINIDL_HD void avg_pool_forward_cell(const PoolArgs& a, int64_t i) {
  int64_t n, c, oh, ow;
  pooled_dims(a).decode(i, n, c, oh, ow);
  const T* x = static_cast<const T*>(a.in);
  const int64_t H = a.plane.H, W = a.plane.W;
  const int64_t h0 = oh * a.sh - a.ph, w0 = ow * a.sw - a.pw;
  double s = 0.0;
  for (int64_t ih = k_max<int64_t>(h0, 0); ih < k_min(h0 + a.kh, H); ++ih)
    for (int64_t iw = k_max<int64_t>(w0, 0); iw < k_min(w0 + a.kw, W); ++iw)
      s += static_cast<double>(x[a.in_st.at(n, c, ih, iw)]);
  static_cast<T*>(a.out)[a.out_st.at(n, c, oh, ow)] = static_cast<T>(s / static_cast<double>(pool_divisor(a, h0, w0)));
}

template <typename T>
MINIDL_HD void avg_pool_backward_elem(const PoolArgs& a, int64_t i) {
  int64_t n, c, ih, iw;
  a.plane.decode(i, n, c, ih, iw);
  const T* gy = static_cast<const T*>(a.in);
  int64_t oh0, oh1, ow0, ow1;
  covering(ih, a.kh, a.sh, a.ph, a.P, oh0, oh1);
  covering(iw, a.kw, a.sw, a.pw, a.Q, ow0, ow1);
  double s = 0.0;
  for (int64_t oh = oh0; oh <= oh1; ++oh)
    for (int64_t ow = ow0; ow <= ow1; ++ow) {
      const int64_t h0 = oh * a.sh - a.ph, w0 = ow * a.sw - a.pw;
      s += static_cast<double>(gy[a.in_st.at(n, c, oh, ow)]) / static_cast<double>(pool_divisor(a, h0, w0));
    }
  static_cast<T*>(a.out)[a.out_st.at(n, c, ih, iw)] = static_cast<T>(s);
}

MINIDL_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
MINIDL_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
MINIDL_HD void adaptive_pool_forward_cell(const PoolArgs& a, int64_t i) {
  int64_t n, c, oh, ow;
  pooled_dims(a).decode(i, n, c, oh, ow);
  const T* x = static_cast<const T*>(a.in);
  const int64_t H = a.plane.H, W = a.plane.W;
  const int64_t h0 = adaptive_start(oh, H, a.P), h1 = adaptive_end(oh, H, a.P);
  const int64_t w0 = adaptive_start(ow, W, a.Q), w1 = adaptive_end(ow, W, a.Q);
  double s = 0.0;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) s += static_cast<double>(x[a.in_st.at(n, c, ih, iw)]);
  static_cast<T*>(a.out)[a.out_st.at(n, c, oh, ow)] = static_cast<T>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
}

template <typename T>
MINIDL_HD void adaptive_pool_backward_elem(const PoolArgs& a, int64_t i) {
  int64_t n, c, ih, iw;
  a.plane.decode(i, n, c, ih, iw);
  const T* gy = static_cast<const T*>(a.in);
  const int64_t H = a.plane.H, W = a.plane.W;
  double s = 0.0;
  for (int64_t oh = 0; oh < a.P; ++oh) {
    const int64_t h0 = adaptive_start(oh, H, a.P), h1 = adaptive_end(oh, H, a.P);
    if (ih < h0 || ih >= h1) continue;
    for (int64_t ow = 0; ow < a.Q; ++ow) {
      const int64_t w0 = adaptive_start(ow, W, a.Q), w1 = adaptive_end(ow, W, a.Q);
      if (iw < w0 || iw >= w1) continue;
      s += static_cast<double>(gy[a.in_st.at(n, c, oh, ow)]) / static_cast<double>((h1 - h0) * (w1 - w0));
    }
  }
  static_cast<T*>(a.out)[a.out_st.at(n, c, ih, iw)] = static_cast<T>(s);
}

}  // namespace minidl::cuda::kern
