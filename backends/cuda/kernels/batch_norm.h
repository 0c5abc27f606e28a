// Batch-norm kernel bodies (training forward with the fused ReLU and residual-add + ReLU, inference, backward
// with the fused ReLU mask), following backends/ref/batch_norm.cpp and the Backend base class's fused
// compositions step for step: statistics in double over the channel's N*H*W elements (two passes: mean, then
// squared deviations), the affine pass in double rounded once to T, then the residual add and ReLU in T.
// Channel statistics are group reductions (one group per channel, reduce.h's fixed order); the per-element
// passes read them from the double scratch `ws`.
#pragma once

#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/reduce.h"

namespace minidl::cuda::kern {

template <typename T>
MINIDL_HD double channel_value(const void* p, int64_t stride, int64_t c, double fallback) {
  return p ? static_cast<double>(static_cast<const T*>(p)[c * stride]) : fallback;
}

/// Element m (row-major over N, H, W) of channel c, decoded.
MINIDL_HD void bn_decode(const Dims4& d, int64_t m, int64_t& n, int64_t& h, int64_t& w) {
  const int64_t hw = d.H * d.W;
  n = m / hw;
  const int64_t r = m - n * hw;
  h = r / d.W;
  w = r - h * d.W;
}

/// The incoming gradient of the batch norm at (n, c, h, w): gy, masked by yr > 0 in T when the ReLU is fused
/// (the ReluBackward primitive's value), then widened.
template <typename T>
MINIDL_HD T bn_grad(const BnArgs& a, int64_t n, int64_t c, int64_t h, int64_t w) {
  const T g = static_cast<const T*>(a.gy)[a.gy_st.at(n, c, h, w)];
  if (!a.relu) return g;
  const T y = static_cast<const T*>(a.yr)[a.yr_st.at(n, c, h, w)];
  return g * static_cast<T>(y > T(0));
}

template <typename T>
MINIDL_HD double bn_x(const BnArgs& a, int64_t n, int64_t c, int64_t h, int64_t w) {
  return static_cast<double>(static_cast<const T*>(a.x)[a.x_st.at(n, c, h, w)]);
}

// ---- training forward: pass 1 sums x, pass 2 sums squared deviations, pass 3 normalises ----
template <typename T>
MINIDL_HD double bn_load_x(const BnArgs& a, int64_t c, int64_t m) {
  int64_t n, h, w;
  bn_decode(a.dims, m, n, h, w);
  return bn_x<T>(a, n, c, h, w);
}

MINIDL_HD double bn_count(const BnArgs& a) { return static_cast<double>(a.dims.N * a.dims.H * a.dims.W); }

MINIDL_HD void bn_store_mean(const BnArgs& a, int64_t c, double sum) { a.ws[c] = sum / bn_count(a); }

template <typename T>
MINIDL_HD double bn_load_sqdev(const BnArgs& a, int64_t c, int64_t m) {
  const double d = bn_load_x<T>(a, c, m) - a.ws[c];
  return d * d;
}

template <typename T>
MINIDL_HD void bn_store_invstd(const BnArgs& a, int64_t c, double sq) {
  const double invstd = 1.0 / k_sqrt(sq / bn_count(a) + a.eps);
  a.ws[a.dims.C + c] = invstd;
  static_cast<T*>(a.save_mean)[c * a.save_mean_s] = static_cast<T>(a.ws[c]);
  static_cast<T*>(a.save_invstd)[c * a.save_invstd_s] = static_cast<T>(invstd);
}

/// y = relu?( T((x - mean) * invstd * gamma + beta) [+ residual] ) for element i of (N, C, H, W).
template <typename T>
MINIDL_HD void bn_apply(const BnArgs& a, int64_t i, double mean, double invstd, int64_t n, int64_t c, int64_t h,
                        int64_t w) {
  const double gamma = channel_value<T>(a.weight, a.weight_s, c, 1.0);
  const double beta = channel_value<T>(a.bias, a.bias_s, c, 0.0);
  T y = static_cast<T>((bn_x<T>(a, n, c, h, w) - mean) * invstd * gamma + beta);
  if (a.residual) y = y + static_cast<const T*>(a.residual)[a.residual_st.at(n, c, h, w)];
  if (a.relu) y = is_nan(y) ? y : (y > T(0) ? y : T(0));
  static_cast<T*>(a.y)[a.y_st.at(n, c, h, w)] = y;
  (void)i;
}

template <typename T>
MINIDL_HD void bn_apply_training(const BnArgs& a, int64_t i) {
  int64_t n, c, h, w;
  a.dims.decode(i, n, c, h, w);
  bn_apply<T>(a, i, a.ws[c], a.ws[a.dims.C + c], n, c, h, w);
}

template <typename T>
MINIDL_HD void bn_apply_inference(const BnArgs& a, int64_t i) {
  int64_t n, c, h, w;
  a.dims.decode(i, n, c, h, w);
  const double mean = channel_value<T>(a.mean, a.mean_s, c, 0.0);
  const double invstd = 1.0 / k_sqrt(channel_value<T>(a.var, a.var_s, c, 1.0) + a.eps);
  bn_apply<T>(a, i, mean, invstd, n, c, h, w);
}

// ---- backward: one pass for sum gy and sum gy * xhat per channel, one for gx (and the residual's gradient) ----
template <typename T>
MINIDL_HD Sum2 bn_load_grad_sums(const BnArgs& a, int64_t c, int64_t m) {
  int64_t n, h, w;
  bn_decode(a.dims, m, n, h, w);
  const double mean = channel_value<T>(a.mean, a.mean_s, c, 0.0);
  const double invstd = channel_value<T>(a.var, a.var_s, c, 1.0);
  const double g = static_cast<double>(bn_grad<T>(a, n, c, h, w));
  return Sum2{g, g * (bn_x<T>(a, n, c, h, w) - mean) * invstd};
}

template <typename T>
MINIDL_HD void bn_store_grad_sums(const BnArgs& a, int64_t c, Sum2 s) {
  if (a.gweight) static_cast<T*>(a.gweight)[c * a.gweight_s] = static_cast<T>(s.b);
  if (a.gbias) static_cast<T*>(a.gbias)[c * a.gbias_s] = static_cast<T>(s.a);
  a.ws[2 * c] = s.a;
  a.ws[2 * c + 1] = s.b;
}

/// gx = gamma * invstd / M * (M * g - sum_gy - xhat * sum_gy_xhat); gresidual = the masked gy.
template <typename T>
MINIDL_HD void bn_backward_elem(const BnArgs& a, int64_t i) {
  int64_t n, c, h, w;
  a.dims.decode(i, n, c, h, w);
  const T gt = bn_grad<T>(a, n, c, h, w);
  if (a.gresidual) static_cast<T*>(a.gresidual)[a.gresidual_st.at(n, c, h, w)] = gt;
  if (!a.gx) return;
  const double M = bn_count(a);
  const double mean = channel_value<T>(a.mean, a.mean_s, c, 0.0);
  const double invstd = channel_value<T>(a.var, a.var_s, c, 1.0);
  const double gamma = channel_value<T>(a.weight, a.weight_s, c, 1.0);
  const double xhat = (bn_x<T>(a, n, c, h, w) - mean) * invstd;
  const double g = static_cast<double>(gt);
  static_cast<T*>(a.gx)[a.gx_st.at(n, c, h, w)] =
      static_cast<T>(gamma * invstd / M * (M * g - a.ws[2 * c] - xhat * a.ws[2 * c + 1]));
}

}  // namespace minidl::cuda::kern
