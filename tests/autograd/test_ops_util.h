// Helpers for the op tests (tests/autograd/test_ops_*.cpp, test_gradcheck_*.cpp): float64 leaves, seeded random
// leaves, a scope that pins the CPU backend to `ref` (hand-computed values are checked against the oracle; the
// conformance tests compare the other backends with it), and element-wise approximate comparison.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "backends/backend.h"
#include "tensor/generator.h"

namespace minidl::test {

inline TensorOptions f64() { return TensorOptions().dtype(DType::f64); }

/// A float64 leaf that requires grad.
inline Tensor leaf(std::initializer_list<double> v, Shape s = {}) { return tensor(v, s, f64().requires_grad()); }

/// A float64 leaf with values uniform in [lo, hi), reproducible for a seed.
inline Tensor rand_leaf(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  manual_seed(seed);
  return uniform(s, lo, hi, f64().requires_grad());
}

/// Pins the CPU backend to `ref` for its scope.
struct RefScope {
  std::string previous = cpu_backend_name();
  RefScope() { set_cpu_backend("ref"); }
  ~RefScope() { set_cpu_backend(previous); }
  RefScope(const RefScope&) = delete;
  RefScope& operator=(const RefScope&) = delete;
};

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

/// CHECKs every element of `got` against `want` within `tol` (absolute + relative), naming the index.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-9) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
  }
}

inline void check_close(const Tensor& got, const std::vector<double>& want, double tol = 1e-9) {
  check_close(values(got), want, tol);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// gradcheck that reports the failing message as a test failure instead of an exception.
/// A 0-dim output (a loss) is checked as a 1-element vector (a view: the gradient passes through unchanged).
inline void check_grad(const Fn& fn, const std::vector<Tensor>& inputs, autograd::GradcheckOptions opts = {}) {
  const Fn as_1d = [fn](const std::vector<Tensor>& in) {
    Tensor y = fn(in);
    return y.dim() == 0 ? y.reshape({1}) : y;
  };
  try {
    CHECK(autograd::gradcheck(as_1d, inputs, opts));
  } catch (const Error& e) {
    FAIL_CHECK(e.what());
  }
}

}  // namespace minidl::test
