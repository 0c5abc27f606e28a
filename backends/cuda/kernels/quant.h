// Quantization kernel bodies (spec/quant.md sections 1.3, 1.7, 3.4; the host references are
// backends/project_to_levels.cpp and backends/quant_clip.cpp): projection onto a sorted level set by binary
// search over midpoints (ties to the lower level), the activation quantizer's clip-and-quantize with its
// straight-through mask and alpha coefficient, its backward, and PACT. Every step is in the element type, in
// the reference's order, so cuda-host matches the reference bit for bit.
#pragma once

#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/scalar.h"

namespace minidl::cuda::kern {

/// Index of the level nearest to v: the number of midpoints (lv[k] + lv[k+1]) / 2 strictly below v
/// (std::lower_bound over the midpoints; NaN gives 0).
template <typename T>
MINIDL_HD int64_t nearest_level(const T* lv, int64_t stride, int64_t L, T v) {
  int64_t lo = 0, hi = L - 1;
  while (lo < hi) {
    const int64_t m = lo + (hi - lo) / 2;
    const T mid = (lv[m * stride] + lv[(m + 1) * stride]) / T(2);
    if (mid < v) {
      lo = m + 1;
    } else {
      hi = m;
    }
  }
  return lo;
}

template <typename T>
MINIDL_HD void project_elem(const QuantArgs& a, int64_t i) {
  int64_t off[4];
  walk_offsets(a.walk, i, off);
  const T* lv = static_cast<const T*>(a.levels);
  T v = static_cast<const T*>(a.x)[off[3]];
  T s = T(1);
  if (a.symmetric) {
    s = v < T(0) ? T(-1) : (v > T(0) ? T(1) : T(0));
    v = k_abs(v);
  }
  const T q = lv[nearest_level(lv, a.levels_s, a.nlevels, v) * a.levels_s];
  static_cast<T*>(a.out)[off[0]] = a.symmetric ? s * q : q;
}

template <typename T>
MINIDL_HD void quantize_clip_elem(const QuantArgs& a, int64_t i) {
  int64_t off[4];
  walk_offsets(a.walk, i, off);
  const T alpha = static_cast<const T*>(a.alpha)[0];
  const T v = static_cast<const T*>(a.x)[off[3]] / alpha;
  const T cl = k_min(k_max(v, static_cast<T>(a.lo)), static_cast<T>(a.hi));  // NaN stays NaN
  T q;
  if (a.levels) {
    const T* lv = static_cast<const T*>(a.levels);
    q = lv[nearest_level(lv, a.levels_s, a.nlevels, cl) * a.levels_s];
  } else {
    const T ts = static_cast<T>(a.steps);
    q = static_cast<T>(k_nearbyint(cl * ts)) / ts;
  }
  static_cast<T*>(a.out)[off[0]] = q * alpha;
  const uint8_t inside = v == cl ? 1 : 0;
  if (a.mask) a.mask[off[1]] = inside;
  if (a.coef) static_cast<T*>(a.coef)[off[2]] = q - v * static_cast<T>(inside);
}

template <typename T>
MINIDL_HD void pact_elem(const QuantArgs& a, int64_t i) {
  int64_t off[4];
  walk_offsets(a.walk, i, off);
  const T alpha = static_cast<const T*>(a.alpha)[0];
  const T den = static_cast<T>(static_cast<double>(alpha) + 1e-6), tk = static_cast<T>(a.k);
  const T v = static_cast<const T*>(a.x)[off[3]];
  // the unfused chain's steps: * k, / (a + 1e-6), round, clamp to [0, k], * a, / k
  const T r = static_cast<T>(k_nearbyint(v * tk / den));
  const T t = is_nan(r) ? r : k_min(k_max(r, T(0)), tk);
  static_cast<T*>(a.out)[off[0]] = t * alpha / tk;
  if (a.mask) a.mask[off[1]] = (v > T(0) && v < alpha) ? 1 : 0;
  if (a.coef) static_cast<T*>(a.coef)[off[2]] = v > alpha ? T(1) : T(0);
}

/// gx = gy * mask.
template <typename T>
MINIDL_HD void quantize_clip_backward_elem(const QuantBackwardArgs& a, int64_t i) {
  int64_t off[4];
  walk_offsets(a.walk, i, off);
  static_cast<T*>(a.gx)[off[0]] = static_cast<const T*>(a.gy)[off[1]] * static_cast<T>(a.mask[off[2]]);
}

/// Element i's term of galpha's sum: the product in T, widened.
template <typename T>
MINIDL_HD double quantize_clip_alpha_term(const QuantBackwardArgs& a, int64_t i) {
  int64_t off[4];
  walk_offsets(a.walk, i, off);
  return static_cast<double>(static_cast<const T*>(a.gy)[off[1]] * static_cast<const T*>(a.coef)[off[3]]);
}

/// galpha = T(sum) * T(scale), rounded to T before the scaling as the reference does.
template <typename T>
MINIDL_HD void quantize_clip_store_alpha(const QuantBackwardArgs& a, double sum) {
  T s = static_cast<T>(sum);
  s = s * static_cast<T>(a.scale);
  static_cast<T*>(a.galpha)[0] = s;
}

}  // namespace minidl::cuda::kern
