// Ref reductions (sum, mean, max, min) over a set of dims into the keepdim-shaped output. Sums accumulate in
// double; max/min propagate NaN like PyTorch. The walk maps each input element to its output cell by giving the
// output zero stride along the reduced dims.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {

void RefBackend::reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) {
  const char* name = op_name(op);
  ref::check_host(out, name, "out");
  ref::check_host(in, name, "in");
  ref::check_dtype(out, in.dtype(), name, "out");
  const int64_t rank = in.dim();
  Shape want = in.sizes();
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    MINIDL_CHECK(d >= 0 && d < rank, "ref ", name, ": dim ", d, " out of range for input shape ",
                 shape_str(in.sizes()));
    MINIDL_CHECK(i == 0 || dims[i - 1] < d, "ref ", name, ": dims must be sorted and unique");
    reduced[static_cast<size_t>(d)] = true;
    want[static_cast<size_t>(d)] = 1;
  }
  ref::check_shape(out, want, name, "out (keepdim shape)");

  // acc_strides: contiguous strides of the output shape, zeroed along reduced dims, index a dense accumulator.
  Shape acc_strides = contiguous_strides(want);
  int64_t count = 1;  // elements folded into each output cell
  for (int64_t d = 0; d < rank; ++d) {
    if (reduced[static_cast<size_t>(d)]) {
      acc_strides[static_cast<size_t>(d)] = 0;
      count *= in.sizes()[static_cast<size_t>(d)];
    }
  }
  const int64_t n_out = shape_numel(want);
  if ((op == ReduceOp::Max || op == ReduceOp::Min) && n_out > 0) {
    MINIDL_CHECK(count > 0, "ref ", name, ": cannot reduce over an empty dimension (input shape ",
                 shape_str(in.sizes()), ")");
  }

  ref::dispatch_float(in.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* x = in.data<T>();
    std::vector<double> acc(static_cast<size_t>(n_out));
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Mean: std::fill(acc.begin(), acc.end(), 0.0); break;
      case ReduceOp::Max: std::fill(acc.begin(), acc.end(), -std::numeric_limits<double>::infinity()); break;
      case ReduceOp::Min: std::fill(acc.begin(), acc.end(), std::numeric_limits<double>::infinity()); break;
      case ReduceOp::kCount: MINIDL_FAIL("ref reduce: unknown op");
    }
    ref::for_each_offset<2>(in.sizes(), {&in.strides(), &acc_strides}, [&](const auto& off) {
      const double v = static_cast<double>(x[off[0]]);
      double& a = acc[static_cast<size_t>(off[1])];
      switch (op) {
        case ReduceOp::Sum:
        case ReduceOp::Mean: a += v; break;
        case ReduceOp::Max: a = (std::isnan(v) || v > a) ? v : a; break;  // once NaN, stays NaN (v > NaN is false)
        case ReduceOp::Min: a = (std::isnan(v) || v < a) ? v : a; break;
        case ReduceOp::kCount: break;
      }
    });
    if (op == ReduceOp::Mean) {
      for (double& a : acc) a /= static_cast<double>(count);  // an empty mean is 0/0 = NaN, as in PyTorch
    }
    // Write the dense accumulator out through out's own strides.
    T* o = out.data<T>();
    const Shape dense = contiguous_strides(want);
    ref::for_each_offset<2>(want, {&out.strides(), &dense}, [&](const auto& off) {
      o[off[0]] = static_cast<T>(acc[static_cast<size_t>(off[1])]);
    });
  });
}

}  // namespace minidl
