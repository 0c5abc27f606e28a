// Log-softmax (forward / backward, one row each) and the label-smoothed NLL loss bodies, as in
// backends/ref/softmax_xent.cpp: row maximum, exp-sum and log in double; loss = mean over rows of
// -((1 - s) * logp[n, t_n] + s / C * sum_c logp[n, c]), the per-row terms folded by a group reduction (reduce.h).
// A target outside [0, C) cannot throw on a device: the body sets *error and the host side reports it.
#pragma once

#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/scalar.h"

namespace minidl::cuda::kern {

template <typename T>
MINIDL_HD void log_softmax_row(const LogSoftmaxArgs& a, int64_t r) {
  int64_t off[3];
  walk_offsets(a.walk, r, off);
  const T* x = static_cast<const T*>(a.x) + off[0];
  T* y = static_cast<T*>(a.out) + off[2];
  double mx = -__builtin_huge_val();
  for (int64_t c = 0; c < a.C; ++c) mx = k_max(mx, static_cast<double>(x[c * a.x_cs]));
  double se = 0.0;
  for (int64_t c = 0; c < a.C; ++c) se += k_exp(static_cast<double>(x[c * a.x_cs]) - mx);
  const double lse = mx + k_log(se);
  for (int64_t c = 0; c < a.C; ++c) y[c * a.out_cs] = static_cast<T>(static_cast<double>(x[c * a.x_cs]) - lse);
}

/// gx = gy - exp(y) * sum(gy), per row (x holds the forward's output y).
template <typename T>
MINIDL_HD void log_softmax_backward_row(const LogSoftmaxArgs& a, int64_t r) {
  int64_t off[3];
  walk_offsets(a.walk, r, off);
  const T* y = static_cast<const T*>(a.x) + off[0];
  const T* gy = static_cast<const T*>(a.gy) + off[1];
  T* gx = static_cast<T*>(a.out) + off[2];
  double sg = 0.0;
  for (int64_t c = 0; c < a.C; ++c) sg += static_cast<double>(gy[c * a.gy_cs]);
  for (int64_t c = 0; c < a.C; ++c) {
    const double g = static_cast<double>(gy[c * a.gy_cs]);
    gx[c * a.out_cs] = static_cast<T>(g - k_exp(static_cast<double>(y[c * a.x_cs])) * sg);
  }
}

/// target[n], or -1 (and *error set) when it is not a class index.
MINIDL_HD int64_t nll_target(const NllArgs& a, int64_t n) {
  const int64_t t = a.target_i64 ? static_cast<const int64_t*>(a.target)[n * a.target_stride]
                                 : static_cast<const int32_t*>(a.target)[n * a.target_stride];
  if (t < 0 || t >= a.C) {
    *a.error = 1;  // every failing element writes the same value: no race that matters
    return -1;
  }
  return t;
}

/// Row n's term of the summed loss.
template <typename T>
MINIDL_HD double nll_row_term(const NllArgs& a, int64_t n) {
  const int64_t t = nll_target(a, n);
  if (t < 0) return 0.0;
  const T* L = static_cast<const T*>(a.in);
  const double s = a.smoothing;
  double row_sum = 0.0;
  if (s != 0.0) {
    for (int64_t c = 0; c < a.C; ++c) row_sum += static_cast<double>(L[n * a.s0 + c * a.s1]);
  }
  return -((1.0 - s) * static_cast<double>(L[n * a.s0 + t * a.s1]) + s / static_cast<double>(a.C) * row_sum);
}

template <typename T>
MINIDL_HD void nll_store_loss(const NllArgs& a, double total) {
  static_cast<T*>(a.out)[0] = static_cast<T>(total / static_cast<double>(a.N));
}

/// glogp[n, c] = -gloss / N * ((1 - s) * [c == t_n] + s / C), element i of (N, C).
template <typename T>
MINIDL_HD void nll_backward_elem(const NllArgs& a, int64_t i) {
  const int64_t n = i / a.C, c = i - n * a.C;
  const int64_t t = nll_target(a, n);
  const double s = a.smoothing;
  const double g = static_cast<double>(static_cast<const T*>(a.in)[0]) / static_cast<double>(a.N);
  const double d = (c == t ? (1.0 - s) : 0.0) + s / static_cast<double>(a.C);
  static_cast<T*>(a.out)[n * a.s0 + c * a.s1] = static_cast<T>(-g * d);
}

}  // namespace minidl::cuda::kern
