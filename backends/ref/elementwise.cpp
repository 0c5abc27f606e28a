// Ref fill, copy (with a cast between any two of f32 f64 i32 i64 u8), elementwise unary and binary ops
// (arithmetic, comparisons, gradient helpers). Every operand, the output included, is walked through its own
// strides, so permuted and stride-0 broadcast views need no copy.
#include <algorithm>
#include <cmath>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {
namespace {

template <typename T>
T unary_value(UnaryOp op, T x, const UnaryParams& p) {
  const T a = static_cast<T>(p.a);
  const T b = static_cast<T>(p.b);
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return std::isnan(x) ? x : static_cast<T>((x > T(0)) - (x < T(0)));
    case UnaryOp::Relu: return std::isnan(x) ? x : (x > T(0) ? x : T(0));
    case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::PowScalar: return std::pow(x, a);
    case UnaryOp::Clamp: return std::isnan(x) ? x : std::min(std::max(x, a), b);
    case UnaryOp::AddScalar: return x + a;
    case UnaryOp::MulScalar: return x * a;
    case UnaryOp::Affine: return x * a + b;
    case UnaryOp::Round: return std::nearbyint(x);  // default rounding mode: half to even
    case UnaryOp::Floor: return std::floor(x);
    case UnaryOp::kCount: break;
  }
  MINIDL_FAIL("ref unary: unknown op ", static_cast<int>(op));
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::Lt || op == BinaryOp::Le;
}

template <typename T>
T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return std::pow(a, b);
    // NaN propagates, as in torch.maximum / torch.minimum
    case BinaryOp::Maximum: return (std::isnan(a) || std::isnan(b)) ? a + b : (a > b ? a : b);
    case BinaryOp::Minimum: return (std::isnan(a) || std::isnan(b)) ? a + b : (a < b ? a : b);
    case BinaryOp::Eq: return static_cast<T>(a == b);
    case BinaryOp::Gt: return static_cast<T>(a > b);
    case BinaryOp::Ge: return static_cast<T>(a >= b);
    case BinaryOp::Lt: return static_cast<T>(a < b);
    case BinaryOp::Le: return static_cast<T>(a <= b);
    case BinaryOp::ReluBackward: return a * static_cast<T>(b > T(0));
    case BinaryOp::SigmoidBackward: return a * b * (T(1) - b);
    case BinaryOp::TanhBackward: return a * (T(1) - b * b);
    case BinaryOp::kCount: break;
  }
  MINIDL_FAIL("ref binary: unknown op ", static_cast<int>(op));
}

}  // namespace

void RefBackend::fill(Tensor& out, double value) {
  ref::check_host(out, "fill", "out");
  dispatch_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = ref::cast_value<T>(value);
    T* o = out.data<T>();
    ref::for_each_offset<1>(out.sizes(), {&out.strides()}, [&](const auto& off) { o[off[0]] = v; });
  });
}

void RefBackend::copy(Tensor& dst, const Tensor& src) {
  ref::check_host(dst, "copy", "dst");
  ref::check_host(src, "copy", "src");
  ref::check_shape(src, dst.sizes(), "copy", "src");
  dispatch_dtype(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_dtype(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      D* d = dst.data<D>();
      const S* s = src.data<S>();
      ref::for_each_offset<2>(dst.sizes(), {&dst.strides(), &src.strides()},
                              [&](const auto& off) { d[off[0]] = ref::cast_value<D>(s[off[1]]); });
    });
  });
}

void RefBackend::unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) {
  ref::check_host(out, "unary", "out");
  ref::check_host(in, "unary", "in");
  ref::check_shape(in, out.sizes(), op_name(op), "input");
  ref::check_dtype(out, in.dtype(), op_name(op), "out");
  ref::dispatch_float(in.dtype(), op_name(op), [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const T* x = in.data<T>();
    ref::for_each_offset<2>(out.sizes(), {&out.strides(), &in.strides()},
                            [&](const auto& off) { o[off[0]] = unary_value<T>(op, x[off[1]], p); });
  });
}

void RefBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  ref::check_host(out, "binary", "out");
  ref::check_host(a, "binary", "a");
  ref::check_host(b, "binary", "b");
  // Inputs arrive broadcast to the output's shape (stride 0 where expanded).
  ref::check_shape(a, out.sizes(), op_name(op), "a");
  ref::check_shape(b, out.sizes(), op_name(op), "b");
  ref::check_dtype(b, a.dtype(), op_name(op), "b");
  // Comparisons may write their 1/0 into any output dtype; everything else keeps the input dtype.
  if (!is_comparison(op)) ref::check_dtype(out, a.dtype(), op_name(op), "out");
  ref::dispatch_float(a.dtype(), op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    dispatch_dtype(out.dtype(), [&](auto otag) {
      using O = decltype(otag);
      O* o = out.data<O>();
      ref::for_each_offset<3>(out.sizes(), {&out.strides(), &a.strides(), &b.strides()}, [&](const auto& off) {
        o[off[0]] = ref::cast_value<O>(binary_value<T>(op, pa[off[1]], pb[off[2]]));
      });
    });
  });
}

}  // namespace minidl
