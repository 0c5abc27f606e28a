// The signed weight quantizer's per-element arithmetic (Backend::quantize_weight_forward), shared by the host
// reference (backends/quant_weight.cpp) and the cpu backend's vectorised blocks (cpu_quant_weight.cpp), so both
// spell each operation once and alike: the unfused chain's order, no fused multiply-add (files that include it
// are built with -ffp-contract=off where FMA is available).
#pragma once

#include <cmath>
#include <cstddef>

namespace minidl::quant_weight_math {

/// sign as the Sign primitive: 1, -1, or x itself for 0, -0 and NaN.
template <typename T>
inline T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}

/// c = min(max(x, -1), 1) as the Clamp primitive (NaN stays NaN).
template <typename T>
inline T clamp_unit(T x) {
  const T t = x < T(-1) ? T(-1) : x;
  return T(1) < t ? T(1) : t;
}

/// The level of c (project_to_levels, symmetric): sign(c) * lv[number of mid below |c|]; 0 for NaN.
template <typename T>
inline T project_signed(T c, const T* lv, const T* mid, size_t nm) {
  const T s = c < T(0) ? T(-1) : (c > T(0) ? T(1) : T(0));
  const T v = std::abs(c);
  size_t k = 0;
  for (size_t j = 0; j < nm; ++j) k += static_cast<size_t>(mid[j] < v);
  return s * lv[k];
}

/// The grid point of c: nearbyint(c * steps) / steps (MulScalar, Round, Div).
template <typename T>
inline T round_to_grid(T c, T steps) {
  return std::nearbyint(c * steps) / steps;
}

/// inside = 1 - 1[|x| > 1] (Gt, then Affine(-1, 1)) and coef = sign(x) * outside + (q - x) * inside.
template <typename T>
inline void weight_coef(T x, T q, T& inside, T& coef) {
  const T outside = static_cast<T>(std::abs(x) > T(1));
  inside = outside * T(-1) + T(1);
  const T left = sign_of(x) * outside;
  const T right = (q - x) * inside;
  coef = left + right;
}

}  // namespace minidl::quant_weight_math
