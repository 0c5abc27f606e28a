// Scalar helpers every kernel body uses: the libm functions by element type (the float overloads call the
// float functions, as std:: does on the host, so cuda-host matches ref bit for bit), NaN tests that need no
// <cmath> on the device, and the value cast of fill / copy (ref::cast_value's rules).
#pragma once

#include <math.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/kernels/hd.h"

namespace minidl::cuda::kern {

template <typename T>
MINIDL_HD bool is_nan(T x) {
  return x != x;  // the only value unequal to itself; valid because minidl never builds with -ffast-math
}

MINIDL_HD float k_exp(float x) { return ::expf(x); }
MINIDL_HD double k_exp(double x) { return ::exp(x); }
MINIDL_HD float k_log(float x) { return ::logf(x); }
MINIDL_HD double k_log(double x) { return ::log(x); }
MINIDL_HD float k_sqrt(float x) { return ::sqrtf(x); }
MINIDL_HD double k_sqrt(double x) { return ::sqrt(x); }
MINIDL_HD float k_abs(float x) { return ::fabsf(x); }
MINIDL_HD double k_abs(double x) { return ::fabs(x); }
MINIDL_HD float k_tanh(float x) { return ::tanhf(x); }
MINIDL_HD double k_tanh(double x) { return ::tanh(x); }
MINIDL_HD float k_pow(float x, float y) { return ::powf(x, y); }
MINIDL_HD double k_pow(double x, double y) { return ::pow(x, y); }
MINIDL_HD float k_floor(float x) { return ::floorf(x); }
MINIDL_HD double k_floor(double x) { return ::floor(x); }
/// Round half to even in the default rounding mode (std::nearbyint).
MINIDL_HD float k_nearbyint(float x) { return ::nearbyintf(x); }
MINIDL_HD double k_nearbyint(double x) { return ::nearbyint(x); }

/// std::max / std::min exactly: the first argument unless the second compares greater (less), so NaN
/// handling follows the standard library the ref backend uses.
template <typename T>
MINIDL_HD T k_max(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
MINIDL_HD T k_min(T a, T b) {
  return b < a ? b : a;
}

/// Value conversion of fill and copy (ref::cast_value): floating -> integer truncates toward zero through
/// int64 (so a negative value wraps into u8), saturating beyond +-2^63; NaN becomes 0.
template <typename To, typename From>
MINIDL_HD To cast_value(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (is_nan(v)) return To{0};
    const double d = static_cast<double>(v);
    constexpr double lim = 9.2233720368547758e18;  // 2^63, exact in double
    const int64_t i = d >= lim ? INT64_MAX : d <= -lim ? INT64_MIN : static_cast<int64_t>(d);
    return static_cast<To>(i);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace minidl::cuda::kern
