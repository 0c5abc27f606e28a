// Reduction bodies: the accumulator of sum / mean / max / min (in double, as ref) and how two partial results
// combine. The executors fold a group's elements into kReduceLanes partials (lane t takes elements t, t + lanes,
// ...) and then combine the partials in a fixed binary tree (groups of at most kShortReduce elements are folded
// left to right by one thread instead): the same order on the host and on the device, run
// after run, so results are deterministic and cuda-host computes exactly what one GPU block does.
#pragma once

#include "backends/cuda/kernels/scalar.h"
#include "backends/op_params.h"

namespace minidl::cuda::kern {

inline constexpr int kReduceLanes = 256;
/// Groups this short are folded by one thread each, left to right (a block of lanes would sit idle), by both
/// executors alike.
inline constexpr int64_t kShortReduce = 16;

MINIDL_HD double reduce_init(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return -__builtin_huge_val();
    case ReduceOp::Min: return __builtin_huge_val();
    default: return 0.0;
  }
}

/// Folds b into a: sums add; max / min keep a NaN once seen (as ref does element by element).
MINIDL_HD double reduce_combine(ReduceOp op, double a, double b) {
  switch (op) {
    case ReduceOp::Max: return (is_nan(b) || b > a) ? b : a;
    case ReduceOp::Min: return (is_nan(b) || b < a) ? b : a;
    default: return a + b;
  }
}

/// Two sums carried together (batch-norm backward: sum gy and sum gy * xhat).
struct Sum2 {
  double a, b;
};

}  // namespace minidl::cuda::kern
