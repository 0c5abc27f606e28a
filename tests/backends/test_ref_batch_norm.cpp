// Ref batch norm: training statistics (mean, biased-variance invstd) and outputs by hand for (N,C,H,W) and (N,C),
// undefined weight/bias, inference with running stats, and the backward against finite differences of the
// training forward (in float64).
#include <cmath>

#include "ref_test_util.h"

using namespace reftest;
using minidl::OpStatePtr;

TEST_CASE("ref batch norm training forward on (N, C, H, W) by hand") {
  // (2, 2, 1, 2): channel 0 holds {1, 3, 5, 7} (mean 4, biased var 5), channel 1 {2, 2, 2, 6} (mean 3, var 3)
  Tensor x = make({1, 3, 2, 2, 5, 7, 2, 6}, {2, 2, 1, 2});
  Tensor w = make({2, -1}, {2});
  Tensor b = make({0.5, 1}, {2});
  const double eps = 1e-5;
  Tensor y = out({2, 2, 1, 2}), m = out({2}), is = out({2});
  OpStatePtr st;
  ref().batch_norm_forward_training(y, m, is, x, w, b, eps, st);
  const double i0 = 1 / std::sqrt(5 + eps), i1 = 1 / std::sqrt(3 + eps);
  check_close(m, {4, 3});
  check_close(is, {i0, i1});
  check_close(y, {2 * -3 * i0 + 0.5, 2 * -1 * i0 + 0.5, -1 * -1 * i1 + 1, -1 * -1 * i1 + 1, 2 * 1 * i0 + 0.5,
                  2 * 3 * i0 + 0.5, -1 * -1 * i1 + 1, -1 * 3 * i1 + 1});
  // undefined weight and bias act as 1 and 0
  ref().batch_norm_forward_training(y, m, is, x, Tensor(), Tensor(), eps, st);
  check_close(y, {-3 * i0, -1 * i0, -1 * i1, -1 * i1, 1 * i0, 3 * i0, -1 * i1, 3 * i1});
}

TEST_CASE("ref batch norm training forward on (N, C) and in float32") {
  // columns {1, 3, 5} (mean 3, var 8/3) and {10, 20, 30} (mean 20, var 200/3)
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = make({1, 10, 3, 20, 5, 30}, {3, 2}, dt);
    Tensor y = out({3, 2}, dt), m = out({2}, dt), is = out({2}, dt);
    OpStatePtr st;
    ref().batch_norm_forward_training(y, m, is, x, Tensor(), Tensor(), 0.0, st);
    const double i0 = 1 / std::sqrt(8.0 / 3), i1 = 1 / std::sqrt(200.0 / 3);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
    check_close(m, {3, 20}, tol);
    check_close(is, {i0, i1}, tol);
    check_close(y, {-2 * i0, -10 * i1, 0, 0, 2 * i0, 10 * i1}, tol);
  }
}

TEST_CASE("ref batch norm inference uses the running statistics") {
  Tensor x = make({1, 2, 3, 4}, {2, 2});
  Tensor rm = make({1, -1}, {2});
  Tensor rv = make({4, 0.25}, {2});
  Tensor w = make({3, 1}, {2});
  Tensor b = make({0, 10}, {2});
  Tensor y = out({2, 2});
  ref().batch_norm_forward_inference(y, x, rm, rv, w, b, 0.0);
  // channel 0: (x - 1) / 2 * 3; channel 1: (x + 1) / 0.5 + 10
  check_close(y, {0, 16, 3, 20});
  Tensor y4 = out({1, 2, 1, 2});
  ref().batch_norm_forward_inference(y4, make({1, 3, 2, 4}, {1, 2, 1, 2}), rm, rv, Tensor(), Tensor(), 0.0);
  check_close(y4, {0, 1, 6, 10});
  CHECK_THROWS_AS(ref().batch_norm_forward_inference(y, x, make({0, 0, 0}, {3}), rv, w, b, 0.0), minidl::Error);
}

TEST_CASE("ref batch norm backward matches finite differences of the training forward") {
  const Shape shape{3, 2, 2, 3};
  const auto xv = pseudo(36, 11);
  const auto rv = pseudo(36, 12);  // loss = sum(y * r), so gy = r
  const std::vector<double> wv = {1.5, -0.7}, bv = {0.2, 0.3};
  const double eps = 1e-3;
  auto loss = [&](const std::vector<double>& xs, const std::vector<double>& ws, const std::vector<double>& bs) {
    Tensor y = out(shape), m = out({2}), is = out({2});
    OpStatePtr st;
    ref().batch_norm_forward_training(y, m, is, make(xs, shape), make(ws, {2}), make(bs, {2}), eps, st);
    return dot(vals(y), rv);
  };
  Tensor x = make(xv, shape), w = make(wv, {2});
  Tensor y = out(shape), m = out({2}), is = out({2});
  OpStatePtr st;
  ref().batch_norm_forward_training(y, m, is, x, w, make(bv, {2}), eps, st);
  Tensor gx = out(shape), gw = out({2}), gb = out({2});
  ref().batch_norm_backward(gx, gw, gb, make(rv, shape), x, m, is, w, eps, st);

  const double h = 1e-6;
  const auto gxv = vals(gx);
  for (size_t i = 0; i < xv.size(); ++i) {
    auto xp = xv, xm = xv;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (loss(xp, wv, bv) - loss(xm, wv, bv)) / (2 * h);
    INFO("x element " << i);
    CHECK(gxv[i] == doctest::Approx(fd).epsilon(1e-6).scale(1.0));
  }
  for (size_t c = 0; c < 2; ++c) {
    auto wp = wv, wm = wv, bp = bv, bm = bv;
    wp[c] += h;
    wm[c] -= h;
    bp[c] += h;
    bm[c] -= h;
    CHECK(vals(gw)[c] == doctest::Approx((loss(xv, wp, bv) - loss(xv, wm, bv)) / (2 * h)).epsilon(1e-6));
    CHECK(vals(gb)[c] == doctest::Approx((loss(xv, wv, bp) - loss(xv, wv, bm)) / (2 * h)).epsilon(1e-6));
  }
  // gweight / gbias undefined: gx alone is still written, identically
  Tensor gx2 = out(shape);
  Tensor none1, none2;
  ref().batch_norm_backward(gx2, none1, none2, make(rv, shape), x, m, is, w, eps, st);
  check_close(gx2, gxv, 0);
}

TEST_CASE("ref batch norm backward on (N, C) by hand with gy = 1 and a one-hot gy") {
  // with gy constant, gx = 0 (the mean absorbs it); gbias = N, gweight = sum xhat = 0
  Tensor x = make({1, 10, 3, 20, 5, 30}, {3, 2});
  Tensor y = out({3, 2}), m = out({2}), is = out({2});
  OpStatePtr st;
  ref().batch_norm_forward_training(y, m, is, x, Tensor(), Tensor(), 0.0, st);
  Tensor gx = out({3, 2}), gw = out({2}), gb = out({2});
  ref().batch_norm_backward(gx, gw, gb, make(std::vector<double>(6, 1.0), {3, 2}), x, m, is, Tensor(), 0.0, st);
  check_close(gx, std::vector<double>(6, 0.0), 1e-12);
  check_close(gb, {3, 3});
  check_close(gw, {0, 0}, 1e-12);
  // gy = e at (0, 0): xhat = (-sqrt(1.5), 0, sqrt(1.5)) for channel 0, invstd = sqrt(3/8), M = 3
  // gx[n,0] = invstd/3 * (3 [n == 0] - 1 - xhat_n * xhat_0)
  ref().batch_norm_backward(gx, gw, gb, make({1, 0, 0, 0, 0, 0}, {3, 2}), x, m, is, Tensor(), 0.0, st);
  const double inv = std::sqrt(3.0 / 8), xh = std::sqrt(1.5);
  check_close(gx, {inv / 3 * (3 - 1 - xh * xh), 0, inv / 3 * (-1), 0, inv / 3 * (-1 + xh * xh), 0});
  check_close(gw, {-xh, 0});
  check_close(gb, {1, 0});
}
