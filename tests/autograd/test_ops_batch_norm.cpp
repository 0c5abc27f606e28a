// batch_norm: training output and running-stat update (unbiased variance, PyTorch momentum) by hand, eval output
// and its elementwise gradient by hand, gradchecks for (N,C) and (N,C,H,W) in both modes, and argument errors.
#include <cmath>

#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

TEST_CASE("batch_norm training: normalised output and running statistics by hand") {
  RefScope ref;
  // Channel 0: {1, 3} -> mean 2, biased var 1. Channel 1: {10, 14} -> mean 12, biased var 4.
  Tensor x = tensor({1, 10, 3, 14}, {2, 2}, f64());
  Tensor w = tensor({2, 0.5}, {2}, f64());
  Tensor b = tensor({0.1, -1}, {2}, f64());
  Tensor rm = zeros({2}, f64()), rv = ones({2}, f64());
  const double eps = 1e-5;
  Tensor y = batch_norm(x, rm, rv, w, b, /*training=*/true, /*momentum=*/0.1, eps);
  const double s0 = 1.0 / std::sqrt(1.0 + eps), s1 = 1.0 / std::sqrt(4.0 + eps);
  check_close(y, {-1 * s0 * 2 + 0.1, -2 * s1 * 0.5 - 1, 1 * s0 * 2 + 0.1, 2 * s1 * 0.5 - 1});
  // running_mean = 0.9 * 0 + 0.1 * mean; running_var = 0.9 * 1 + 0.1 * unbiased var (n = 2: 2 and 8).
  check_close(rm, {0.2, 1.2});
  check_close(rv, {0.9 + 0.1 * 2.0, 0.9 + 0.1 * 8.0});
  // A second step compounds.
  batch_norm(x, rm, rv, w, b, true, 0.1, eps);
  check_close(rm, {0.9 * 0.2 + 0.2, 0.9 * 1.2 + 1.2});
  check_close(rv, {0.9 * 1.1 + 0.2, 0.9 * 1.7 + 0.8});
}

TEST_CASE("batch_norm training over (N,C,H,W) uses all of N, H, W per channel") {
  RefScope ref;
  // One channel, values 0..7 over N=2, H=2, W=2: mean 3.5, biased var 5.25, unbiased 6.
  Tensor x = arange(0.0, 8.0, 1.0, f64()).view({2, 1, 2, 2});
  Tensor rm = zeros({1}, f64()), rv = zeros({1}, f64());
  Tensor y = batch_norm(x, rm, rv, {}, {}, true, 1.0, 0.0);
  std::vector<double> want;
  for (int i = 0; i < 8; ++i) want.push_back((i - 3.5) / std::sqrt(5.25));
  check_close(y, want);
  check_close(rm, {3.5});
  check_close(rv, {6.0});
}

TEST_CASE("batch_norm eval: running statistics, elementwise gradient by hand") {
  RefScope ref;
  Tensor x = leaf({1, 10, 3, 14}, {2, 2});
  Tensor w = leaf({2, 0.5}, {2});
  Tensor b = leaf({0.1, -1}, {2});
  Tensor rm = tensor({0.5, 11}, {2}, f64()), rv = tensor({4, 0.25}, {2}, f64());
  const double eps = 1e-5;
  Tensor y = batch_norm(x, rm, rv, w, b, /*training=*/false, 0.1, eps);
  const double s0 = 1.0 / std::sqrt(4.0 + eps), s1 = 1.0 / std::sqrt(0.25 + eps);
  check_close(y, {0.5 * s0 * 2 + 0.1, -1 * s1 * 0.5 - 1, 2.5 * s0 * 2 + 0.1, 3 * s1 * 0.5 - 1});
  // The running statistics are untouched in eval.
  check_close(rm, {0.5, 11});
  check_close(rv, {4, 0.25});
  (y * tensor({1, 2, 3, 4}, {2, 2}, f64())).sum().backward();
  check_close(x.grad(), {1 * 2 * s0, 2 * 0.5 * s1, 3 * 2 * s0, 4 * 0.5 * s1});
  check_close(w.grad(), {1 * 0.5 * s0 + 3 * 2.5 * s0, 2 * -1 * s1 + 4 * 3 * s1});
  check_close(b.grad(), {4, 6});
}

TEST_CASE("batch_norm gradcheck: training and eval, 2-D and 4-D, with and without affine parameters") {
  Tensor x4 = rand_leaf({3, 2, 2, 3}, 200), x2 = rand_leaf({5, 3}, 201);
  Tensor g2 = rand_leaf({2}, 202, 0.5, 1.5), b2 = rand_leaf({2}, 203);
  Tensor g3 = rand_leaf({3}, 204, 0.5, 1.5), b3 = rand_leaf({3}, 205);
  Tensor rm2 = tensor({0.1, -0.2}, {2}, f64()), rv2 = tensor({0.5, 1.5}, {2}, f64());
  Tensor rm3 = zeros({3}, f64()), rv3 = ones({3}, f64());
  for (bool training : {true, false}) {
    CAPTURE(training);
    check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], rm2, rv2, in[1], in[2], training); },
               {x4, g2, b2});
    check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], rm3, rv3, in[1], in[2], training); },
               {x2, g3, b3});
    check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], rm2, rv2, {}, {}, training); }, {x4});
  }
  // Input frozen: only the affine parameters get gradients (the backend skips gx).
  Tensor x_frozen = x4.detach();
  for (bool training : {true, false}) {
    CAPTURE(training);
    check_grad([&](const std::vector<Tensor>& in) { return batch_norm(x_frozen, rm2, rv2, in[0], in[1], training); },
               {g2, b2});
  }
  // Training without running statistics (track_running_stats=False).
  check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, in[1], in[2], true); },
             {x2, g3, b3});
}

TEST_CASE("batch_norm argument errors") {
  RefScope ref;
  Tensor x = zeros({2, 3, 4, 4}, f64());
  Tensor rm = zeros({3}, f64()), rv = ones({3}, f64());
  CHECK_THROWS_WITH_AS(batch_norm(x, rm, rv, ones({4}, f64()), {}, true),
                       doctest::Contains("batch_norm: weight [4] does not match the 3 channels of input [2, 3, 4, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({1, 3}, f64()), zeros({3}, f64()), ones({3}, f64()), {}, {}, true),
                       doctest::Contains("expected more than 1 value per channel"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, {}, {}, {}, {}, false), doctest::Contains("eval mode needs running_mean"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3, 4}, f64()), rm, rv, {}, {}, true),
                       doctest::Contains("must be (N, C) or (N, C, H, W)"), Error);
  for (bool training : {true, false}) {
    CHECK_THROWS_WITH_AS(
        batch_norm_add_relu(x, zeros({2, 3, 4, 1}, f64()), rm, rv, {}, {}, training),
        doctest::Contains("batch_norm_add_relu: residual [2, 3, 4, 1] does not match input [2, 3, 4, 4]"), Error);
    CHECK_THROWS_WITH_AS(batch_norm_add_relu(x, Tensor(), rm, rv, {}, {}, training),
                         doctest::Contains("batch_norm_add_relu: undefined input"), Error);
    CHECK_THROWS_WITH_AS(batch_norm_add_relu(x, zeros({2, 3, 4, 4}), rm, rv, {}, {}, training),
                         doctest::Contains("batch_norm_add_relu: dtype mismatch"), Error);
  }
}
