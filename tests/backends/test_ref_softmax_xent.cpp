// Ref log_softmax (rows sum to 1 in probability space, stable for large logits, strided input) and its backward,
// and nll_loss with label smoothing forward/backward, against values computed by hand.
#include <cmath>

#include "ref_test_util.h"

using namespace reftest;

namespace {

Tensor targets(std::vector<int64_t> t) {
  const int64_t n = static_cast<int64_t>(t.size());
  return minidl::from_vector(t, {n}, TensorOptions().dtype(DType::i64));
}

}  // namespace

TEST_CASE("ref log_softmax by hand, rows sum to 1 in probability space") {
  Tensor x = make({1, 2, 3, 1000, 1000, 999, -5, 0, 5}, {3, 3});
  Tensor y = out({3, 3});
  ref().log_softmax_forward(y, x);
  const auto v = vals(y);
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  check_close(std::vector<double>(v.begin(), v.begin() + 3), {1 - lse0, 2 - lse0, 3 - lse0});
  // huge logits: exp(1000) overflows unless the row max is subtracted first
  const double lse1 = std::log(2 + std::exp(-1.0));
  check_close(std::vector<double>(v.begin() + 3, v.begin() + 6), {-lse1, -lse1, -1 - lse1});
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < 3; ++c) s += std::exp(v[static_cast<size_t>(3 * r + c)]);
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));  // row 1 lost ~1e-13 subtracting lse ~ 1000
  }
  // float32 from a transposed view: rows of xt are columns of the (3, 2) storage
  Tensor xs = make({1, 4, 2, 5, 3, 6}, {3, 2}, DType::f32);
  Tensor xt = xs.as_strided({2, 3}, {1, 2}, 0);  // [[1, 2, 3], [4, 5, 6]]
  Tensor yf = out({2, 3}, DType::f32);
  ref().log_softmax_forward(yf, xt);
  check_close(yf, {1 - lse0, 2 - lse0, 3 - lse0, 1 - lse0, 2 - lse0, 3 - lse0}, 1e-6);
}

TEST_CASE("ref log_softmax backward: by hand and by finite differences") {
  Tensor x = make({0.5, -1, 2, 0.1, 0.2, 0.3}, {2, 3});
  Tensor y = out({2, 3});
  ref().log_softmax_forward(y, x);
  const auto yv = vals(y);
  const std::vector<double> gyv = {1, -2, 0.5, 0, 0, 3};
  Tensor gx = out({2, 3});
  ref().log_softmax_backward(gx, make(gyv, {2, 3}), y);
  // gx = gy - softmax * sum(gy); row sums of gy: -0.5 and 3
  std::vector<double> want;
  for (int i = 0; i < 6; ++i) want.push_back(gyv[static_cast<size_t>(i)] - std::exp(yv[static_cast<size_t>(i)]) * (i < 3 ? -0.5 : 3.0));
  check_close(gx, want);
  // finite differences of L = sum(gy * log_softmax(x))
  const auto xv = vals(x);
  const double h = 1e-6;
  for (size_t i = 0; i < 6; ++i) {
    auto L = [&](double d) {
      auto xp = xv;
      xp[i] += d;
      Tensor yp = out({2, 3});
      ref().log_softmax_forward(yp, make(xp, {2, 3}));
      return dot(vals(yp), gyv);
    };
    CHECK(vals(gx)[i] == doctest::Approx((L(h) - L(-h)) / (2 * h)).epsilon(1e-7).scale(1.0));
  }
}

TEST_CASE("ref nll_loss with and without label smoothing by hand") {
  Tensor logp = make({-1, -2, -3, -0.5, -1.5, -2.5}, {2, 3});
  Tensor loss = out({});
  ref().nll_loss_forward(loss, logp, targets({1, 2}), 0.0);
  check_close(loss, {(2 + 2.5) / 2});
  // s = 0.1: row 0 (t = 2): 0.9*3 + 0.1/3*6 = 2.9; row 1 (t = 0): 0.9*0.5 + 0.1/3*4.5 = 0.6
  ref().nll_loss_forward(loss, logp, targets({2, 0}), 0.1);
  check_close(loss, {(2.9 + 0.6) / 2});
  // int32 targets are accepted; float32 logp
  Tensor lossf = out({}, DType::f32);
  ref().nll_loss_forward(lossf, make({-1, -2, -3, -0.5, -1.5, -2.5}, {2, 3}, DType::f32),
                         minidl::from_vector(std::vector<int32_t>{2, 0}, {2}, TensorOptions().dtype(DType::i32)), 0.1);
  check_close(lossf, {1.75}, 1e-6);
  Tensor bad = targets({3, 0});
  CHECK_THROWS_WITH_AS(ref().nll_loss_forward(loss, logp, bad, 0.0), doctest::Contains("not a class index"),
                       minidl::Error);
}

TEST_CASE("ref nll_loss backward by hand") {
  Tensor g = out({2, 3});
  const Tensor gloss = make({2.0}, {});
  ref().nll_loss_backward(g, gloss, targets({2, 0}), 0.1);
  // glogp[n, c] = -gloss / N * (0.9 [c == t_n] + 0.1 / 3)
  const double e = 1.0 / 30, t = 0.9 + 1.0 / 30;
  check_close(g, {-e, -e, -t, -t, -e, -e});
  ref().nll_loss_backward(g, gloss, targets({1, 1}), 0.0);
  check_close(g, {0, -1, 0, 0, -1, 0});
  // the gradient is the derivative of the forward: <g, dlogp> = loss(logp + dlogp) - loss(logp) (it is linear)
  Tensor logp = make({-1, -2, -3, -0.5, -1.5, -2.5}, {2, 3});
  const auto d = pseudo(6, 9);
  std::vector<double> lp2 = vals(logp);
  for (size_t i = 0; i < 6; ++i) lp2[i] += d[i];
  Tensor l1 = out({}), l2 = out({});
  ref().nll_loss_forward(l1, logp, targets({0, 2}), 0.3);
  ref().nll_loss_forward(l2, make(lp2, {2, 3}), targets({0, 2}), 0.3);
  Tensor g1 = out({2, 3});
  ref().nll_loss_backward(g1, make({1.0}, {}), targets({0, 2}), 0.3);
  CHECK(dot(vals(g1), d) == doctest::Approx(vals(l2)[0] - vals(l1)[0]).epsilon(1e-12));
}
