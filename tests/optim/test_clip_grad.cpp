// Gradient clipping: the joint norm (2, 1 and infinity) over several gradients, the scaling coefficient
// max_norm / (norm + 1e-6), no change below the threshold, and clip_grad_value_.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "optim/clip_grad.h"

using namespace minidl;
using namespace minidl::optim;

namespace {
Tensor with_grad(std::vector<double> g) {
  Tensor p = zeros({static_cast<int64_t>(g.size())}, TensorOptions{}.dtype(DType::f64).requires_grad());
  p.set_grad(from_vector(g, {static_cast<int64_t>(g.size())}, TensorOptions{}.dtype(DType::f64)));
  return p;
}
}  // namespace

TEST_CASE("clip_grad_norm_ with the 2-norm over all gradients") {
  Tensor a = with_grad({3.0, 0.0}), b = with_grad({4.0});
  Tensor none = zeros({2}, TensorOptions{}.dtype(DType::f64).requires_grad());  // no grad: skipped
  const double n = clip_grad_norm_({a, b, none}, 1.0);
  CHECK(n == doctest::Approx(5.0));
  const double coef = 1.0 / (5.0 + 1e-6);
  CHECK(a.grad().to_vector<double>()[0] == doctest::Approx(3.0 * coef).epsilon(1e-12));
  CHECK(b.grad().to_vector<double>()[0] == doctest::Approx(4.0 * coef).epsilon(1e-12));
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("clip_grad_norm_ below the threshold leaves gradients alone") {
  Tensor a = with_grad({3.0, -4.0});
  CHECK(clip_grad_norm_({a}, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{3.0, -4.0});
}

TEST_CASE("clip_grad_norm_ with 1-norm and infinity norm") {
  Tensor a = with_grad({3.0, -4.0});
  CHECK(clip_grad_norm_({a}, 100.0, 1.0) == doctest::Approx(7.0));
  Tensor b = with_grad({3.0, -4.0});
  CHECK(clip_grad_norm_({b}, 2.0, std::numeric_limits<double>::infinity()) == doctest::Approx(4.0));
  CHECK(b.grad().to_vector<double>()[1] == doctest::Approx(-4.0 * 2.0 / (4.0 + 1e-6)));
}

TEST_CASE("clip_grad_norm_ on float32 and non-finite gradients") {
  Tensor p = zeros({2}, TensorOptions{}.requires_grad());
  p.set_grad(tensor({6.0, 8.0}));
  CHECK(clip_grad_norm_({p}, 5.0) == doctest::Approx(10.0));
  CHECK(p.grad().to_vector<float>()[0] == doctest::Approx(3.0).epsilon(1e-5));
  Tensor q = with_grad({std::nan(""), 1.0});
  CHECK_THROWS_WITH_AS(clip_grad_norm_({q}, 1.0, 2.0, true), doctest::Contains("non-finite"), Error);
}

TEST_CASE("clip_grad_value_") {
  Tensor a = with_grad({3.0, -4.0, 0.5});
  clip_grad_value_({a}, 1.0);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, -1.0, 0.5});
}
