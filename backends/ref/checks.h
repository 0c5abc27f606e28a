// Argument checks and the value cast shared by the ref kernels. Every message starts with "ref <op>:" so a
// failure names the backend and the primitive, and prints shapes with shape_str.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "tensor/tensor.h"

namespace minidl::ref {

/// The tensor is defined and lives on the host.
inline void check_host(const Tensor& t, const char* op, const char* what) {
  MINIDL_CHECK(t.defined(), "ref ", op, ": ", what, " is an undefined tensor");
  MINIDL_CHECK(t.device().is_cpu(), "ref ", op, ": ", what, " lives on ", t.device().str(),
               "; the ref backend runs on the host only");
}

inline void check_shape(const Tensor& t, const Shape& want, const char* op, const char* what) {
  MINIDL_CHECK(t.sizes() == want, "ref ", op, ": ", what, " has shape ", shape_str(t.sizes()), ", expected ",
               shape_str(want));
}

inline void check_dtype(const Tensor& t, DType want, const char* op, const char* what) {
  MINIDL_CHECK(t.dtype() == want, "ref ", op, ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
               dtype_name(want));
}

/// Calls f(T{}) for T = float or double; any other dtype is an error naming the op and the ref backend.
template <typename F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default:
      MINIDL_FAIL("ref ", op, ": dtype ", dtype_name(t),
                  " is not supported by the ref backend (expected float32 or float64)");
  }
}

/// Value conversion used by copy and fill. Floating -> integer truncates toward zero like PyTorch, going through
/// int64 so that a negative value wraps into u8 instead of being undefined behaviour; NaN becomes 0.
template <typename To, typename From>
To cast_value(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (std::isnan(v)) return To{0};
    const long double lv = static_cast<long double>(v);
    constexpr long double lim = 9.2233720368547758e18L;  // 2^63: beyond it int64 conversion is undefined
    const int64_t i = lv >= lim ? INT64_MAX : lv <= -lim ? INT64_MIN : static_cast<int64_t>(lv);
    return static_cast<To>(i);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace minidl::ref
