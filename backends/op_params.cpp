// Names of the op enums, for error messages and profiles. static_asserts keep the tables in step with the enums.
#include "backends/backend.h"
#include "backends/op_params.h"

namespace minidl {

const char* op_name(UnaryOp op) {
  static constexpr const char* kNames[] = {"neg",  "exp",     "log",   "sqrt",       "rsqrt",  "abs",  "sign",
                                           "relu", "sigmoid", "tanh",  "square",     "reciprocal",
                                           "pow_scalar", "clamp", "add_scalar", "mul_scalar", "affine", "round",
                                           "floor"};
  static_assert(std::size(kNames) == static_cast<size_t>(UnaryOp::kCount));
  return kNames[static_cast<size_t>(op)];
}

const char* op_name(BinaryOp op) {
  static constexpr const char* kNames[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                           "gt",  "ge",  "lt",  "le",  "relu_backward", "sigmoid_backward",
                                           "tanh_backward"};
  static_assert(std::size(kNames) == static_cast<size_t>(BinaryOp::kCount));
  return kNames[static_cast<size_t>(op)];
}

const char* op_name(ReduceOp op) {
  static constexpr const char* kNames[] = {"sum", "mean", "max", "min"};
  static_assert(std::size(kNames) == static_cast<size_t>(ReduceOp::kCount));
  return kNames[static_cast<size_t>(op)];
}

const char* op_name(OpKind k) {
  static constexpr const char* kNames[] = {"fill",       "copy",     "unary",     "binary",    "reduce",
                                           "matmul",     "conv2d",   "batch_norm", "max_pool2d", "avg_pool2d",
                                           "adaptive_avg_pool2d", "log_softmax", "nll_loss", "quantize", "optim_update"};
  static_assert(std::size(kNames) == static_cast<size_t>(OpKind::kCount));
  return kNames[static_cast<size_t>(k)];
}

}  // namespace minidl
