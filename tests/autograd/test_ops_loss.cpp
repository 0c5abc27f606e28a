// log_softmax, nll_loss, cross_entropy (with label smoothing) and mse_loss against hand-computed values, their
// gradients in closed form, and the target errors.
#include <cmath>

#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

namespace {
Tensor labels(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return from_vector(v, {n}, TensorOptions().dtype(DType::i64));
}
}  // namespace

TEST_CASE("log_softmax by hand, and over a non-last dim") {
  RefScope ref;
  Tensor x = tensor({1, 2, 3, 1, 1, 1}, {2, 3}, f64());
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  check_close(log_softmax(x), {1 - lse0, 2 - lse0, 3 - lse0, -std::log(3.0), -std::log(3.0), -std::log(3.0)});
  // Over dim 0 each column is a pair.
  const double l01 = std::log(std::exp(2.0) + std::exp(1.0));
  Tensor y = log_softmax(x, 0);
  check_close(y, {-std::log(1 + 1), 2 - l01, 3 - std::log(std::exp(3.0) + std::exp(1.0)), -std::log(2.0), 1 - l01,
                  1 - std::log(std::exp(3.0) + std::exp(1.0))});
  // The result is contiguous, as PyTorch's (it was the transposed view of a (3, 2) result, so a view of it failed).
  CHECK(y.is_contiguous());
  CHECK(y.view({6}).sizes() == Shape{6});
  Tensor z = log_softmax(randn({2, 3, 4}, f64()), 1);
  CHECK(z.is_contiguous());
}

TEST_CASE("cross_entropy with label smoothing against hand values, and its gradient") {
  RefScope ref;
  Tensor logits = leaf({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor target = labels({2, 0});
  const double s = 0.1, C = 3;
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double logp0[3] = {1 - lse0, 2 - lse0, 3 - lse0};
  const double logp1 = -std::log(3.0);
  // loss_n = -((1 - s) * logp[n, t_n] + s / C * sum_c logp[n, c]); the mean over n.
  const double l0 = -((1 - s) * logp0[2] + s / C * (logp0[0] + logp0[1] + logp0[2]));
  const double l1 = -((1 - s) * logp1 + s / C * 3 * logp1);
  Tensor loss = cross_entropy(logits, target, s);
  CHECK(loss.dim() == 0);
  check_close(loss, {(l0 + l1) / 2});
  CHECK(loss.item<double>() == doctest::Approx(0.8031091265).epsilon(1e-9));  // the same, as a number
  // Without smoothing: plain mean negative log-likelihood.
  check_close(cross_entropy(logits, target), {-(logp0[2] + logp1) / 2});
  // d loss / d logits = (softmax - ((1 - s) onehot + s / C)) / N
  loss.backward();
  std::vector<double> want;
  for (int c = 0; c < 3; ++c) want.push_back((std::exp(logp0[c]) - ((c == 2) * (1 - s) + s / C)) / 2);
  for (int c = 0; c < 3; ++c) want.push_back((1.0 / 3 - ((c == 0) * (1 - s) + s / C)) / 2);
  check_close(logits.grad(), want);
}

TEST_CASE("nll_loss picks the target entries, errors name the problem") {
  RefScope ref;
  Tensor logp = tensor({-0.5, -1.0, -2.0, -3.0}, {2, 2}, f64());
  check_close(nll_loss(logp, labels({1, 0})), {(1.0 + 2.0) / 2});
  // int32 targets are accepted.
  check_close(nll_loss(logp, from_vector(std::vector<int32_t>{1, 0}, {2}, TensorOptions().dtype(DType::i32))), {1.5});
  CHECK_THROWS_WITH_AS(nll_loss(logp, labels({1, 2})),
                       doctest::Contains("nll_loss: target[1] = 2 is out of range for 2 classes"), Error);
  CHECK_THROWS_WITH_AS(nll_loss(logp, labels({1, 0, 1})),
                       doctest::Contains("nll_loss: target [3] does not match log-probabilities [2, 2]"), Error);
  CHECK_THROWS_WITH_AS(nll_loss(logp, tensor({1, 0}, {}, f64())), doctest::Contains("nll_loss: target must be"), Error);
}

TEST_CASE("mse_loss by hand") {
  RefScope ref;
  Tensor a = leaf({1, 2, 3, 4}, {2, 2});
  Tensor b = leaf({0, 2, 5, 1}, {2, 2});
  Tensor l = mse_loss(a, b);
  check_close(l, {(1.0 + 0 + 4 + 9) / 4});
  l.backward();
  check_close(a.grad(), {0.5, 0, -1, 1.5});  // 2 (a - b) / n
  check_close(b.grad(), {-0.5, 0, 1, -1.5});
  CHECK_THROWS_WITH_AS(mse_loss(a, b.view({4})), doctest::Contains("mse_loss: shapes [2, 2] and [4] differ"), Error);
}
