// Parameter structs and op enums shared by every backend and by autograd/ops.
#pragma once

#include <cstdint>
#include <string>

namespace minidl {

enum class UnaryOp : uint8_t {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Sign,
  Relu,
  Sigmoid,
  Tanh,
  Square,
  Reciprocal,
  PowScalar,   // x ^ p.a
  Clamp,       // min(max(x, p.a), p.b)
  AddScalar,   // x + p.a
  MulScalar,   // x * p.a
  Affine,      // x * p.a + p.b
  Round,       // round half to even (nearbyint)
  Floor,
  kCount
};

enum class BinaryOp : uint8_t {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  // masks and comparisons produce 1 or 0 in the output dtype
  Eq,
  Gt,
  Ge,
  Lt,
  Le,
  // gradient helpers: a = incoming gradient, b = saved value
  ReluBackward,     // a * (b > 0)
  SigmoidBackward,  // a * b * (1 - b), b = sigmoid output
  TanhBackward,     // a * (1 - b^2), b = tanh output
  kCount
};

enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, kCount };

const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);
const char* op_name(ReduceOp op);

struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool only, PyTorch's default
};

/// Output extent of a convolution / pooling window along one axis.
/// Floor division, so a window larger than the padded input gives <= 0 (callers reject it) instead of 1.
inline int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation = 1) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
}

}  // namespace minidl
