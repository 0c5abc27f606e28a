// Elementwise kernel bodies: one output element of every UnaryOp and BinaryOp, in the element type, with the
// ref backend's formulas (backends/ref/elementwise.cpp) step for step: NaN propagation of relu / clamp / sign /
// maximum / minimum, round half to even, comparisons as 1 or 0.
#pragma once

#include "backends/cuda/kernels/scalar.h"
#include "backends/op_params.h"

namespace minidl::cuda::kern {

template <typename T>
MINIDL_HD T unary_value(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return k_exp(x);
    case UnaryOp::Log: return k_log(x);
    case UnaryOp::Sqrt: return k_sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / k_sqrt(x);
    case UnaryOp::Abs: return k_abs(x);
    case UnaryOp::Sign: return is_nan(x) ? x : static_cast<T>((x > T(0)) - (x < T(0)));
    case UnaryOp::Relu: return is_nan(x) ? x : (x > T(0) ? x : T(0));
    case UnaryOp::Sigmoid: return T(1) / (T(1) + k_exp(-x));
    case UnaryOp::Tanh: return k_tanh(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::PowScalar: return k_pow(x, a);
    case UnaryOp::Clamp: return is_nan(x) ? x : k_min(k_max(x, a), b);
    case UnaryOp::AddScalar: return x + a;
    case UnaryOp::MulScalar: return x * a;
    case UnaryOp::Affine: return x * a + b;
    case UnaryOp::Round: return k_nearbyint(x);
    case UnaryOp::Floor: return k_floor(x);
    case UnaryOp::kCount: break;
  }
  return x;  // unreachable: the host side rejects unknown ops before launching
}

MINIDL_HD bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::Lt || op == BinaryOp::Le;
}

template <typename T>
MINIDL_HD T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return k_pow(a, b);
    case BinaryOp::Maximum: return (is_nan(a) || is_nan(b)) ? a + b : (a > b ? a : b);
    case BinaryOp::Minimum: return (is_nan(a) || is_nan(b)) ? a + b : (a < b ? a : b);
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
  return a;  // unreachable: the host side rejects unknown ops before launching
}

}  // namespace minidl::cuda::kern
