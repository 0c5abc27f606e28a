// The cpu backend's whole-tensor Sum / Mean for other kernels of this backend that must give reduce()'s bits
// (the fused weight standardisation, cpu_weight_standardize.cpp): the same code as reduce() over a contiguous run.
#pragma once

#include <cstdint>

#include "backends/backend.h"

namespace minidl::cpu {

/// reduce(op, out, t, every dim) of a contiguous t holding p[0, n), as its one value: op Sum or Mean (accumulated
/// in double, rounded to T), split across threads as reduce() splits it.
template <typename T>
T reduce_whole(ReduceOp op, const T* p, int64_t n);

}  // namespace minidl::cpu
