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
/// A longer group is cut into chunks of this many elements, one block each (so a few long groups, such as the
/// channels of a batch norm, still fill the GPU); a chunk's result comes from the lanes and the tree, and the
/// chunks' results are then folded left to right.
inline constexpr int64_t kReduceChunk = 4 * kReduceLanes;
MINIDL_HD int64_t reduce_chunks(int64_t len) {
  return len <= kReduceChunk ? 1 : (len + kReduceChunk - 1) / kReduceChunk;
}

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
