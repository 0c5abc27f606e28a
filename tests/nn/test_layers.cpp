// Every layer against values computed independently here with plain loops (double precision modules via
// to(f64)): Linear, Conv2d (stride, padding, groups), BatchNorm2d (train/eval, running stats, counter), ReLU,
// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Sequential, CrossEntropyLoss (label smoothing),
// MSELoss; and PyTorch's default initialisation bounds and seeding.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "nn/nn.h"
#include "ref_backend_guard.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::nn;

namespace {

const TensorOptions kF64 = TensorOptions{}.dtype(DType::f64);

// Deterministic, irregular values: sin(0.7 i + phase).
Tensor pattern(const Shape& s, double phase = 0.0) {
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7 * static_cast<double>(i) + phase);
  return from_vector(v, s, kF64);
}

void set(const Tensor& t, const Tensor& v) { t.detach().copy_(v); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-10) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("Linear = x W^T + b") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  Linear fc(3, 2);
  fc.to(DType::f64);
  set(fc.weight, pattern({2, 3}, 1.0));
  set(fc.bias, pattern({2}, 2.0));
  Tensor x = pattern({4, 3});
  auto W = fc.weight.to_vector<double>(), b = fc.bias.to_vector<double>(), xv = x.to_vector<double>();
  std::vector<double> want(8);
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 2; ++o) {
      double s = b[o];
      for (int i = 0; i < 3; ++i) s += xv[n * 3 + i] * W[o * 3 + i];
      want[n * 2 + o] = s;
    }
  Tensor y = fc(x);
  CHECK(y.sizes() == Shape{4, 2});
  check_close(y.to_vector<double>(), want);
  CHECK_THROWS_WITH_AS(fc(pattern({4, 5})), doctest::Contains("expected input (N, 3)"), Error);

  // Gradients through the module: d sum(y) / dW[o, i] = sum_n x[n, i], d/db = N.
  x = pattern({4, 3});
  fc(x).sum().backward();
  std::vector<double> gw(6);
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 3; ++i)
      for (int n = 0; n < 4; ++n) gw[o * 3 + i] += xv[n * 3 + i];
  check_close(fc.weight.grad().to_vector<double>(), gw);
  check_close(fc.bias.grad().to_vector<double>(), {4.0, 4.0});
}

TEST_CASE("Conv2d with stride, padding, bias and groups") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  for (int64_t groups : {1, 2}) {
    INFO("groups ", groups);
    Conv2dOptions o;
    o.in_channels = 4;
    o.out_channels = 2;
    o.kernel_h = o.kernel_w = 3;
    o.stride = 2;
    o.padding = 1;
    o.groups = groups;
    Conv2d conv(o);
    conv.to(DType::f64);
    const int64_t cg = 4 / groups, kg = 2 / groups;
    CHECK(conv.weight.sizes() == Shape{2, cg, 3, 3});
    set(conv.weight, pattern({2, cg, 3, 3}, 0.3));
    set(conv.bias, pattern({2}, 1.3));
    const int64_t N = 2, H = 5, W = 6, P = 3, Q = 3;
    Tensor x = pattern({N, 4, H, W}, 0.1);
    auto xv = x.to_vector<double>(), wv = conv.weight.to_vector<double>(), bv = conv.bias.to_vector<double>();
    std::vector<double> want(static_cast<size_t>(N * 2 * P * Q));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < 2; ++k)
        for (int64_t p = 0; p < P; ++p)
          for (int64_t q = 0; q < Q; ++q) {
            double s = bv[k];
            const int64_t g = k / kg;
            for (int64_t c = 0; c < cg; ++c)
              for (int64_t r = 0; r < 3; ++r)
                for (int64_t t = 0; t < 3; ++t) {
                  const int64_t h = p * 2 - 1 + r, w = q * 2 - 1 + t;
                  if (h < 0 || h >= H || w < 0 || w >= W) continue;
                  s += xv[((n * 4 + g * cg + c) * H + h) * W + w] * wv[((k * cg + c) * 3 + r) * 3 + t];
                }
            want[((n * 2 + k) * P + p) * Q + q] = s;
          }
    Tensor y = conv(x);
    CHECK(y.sizes() == Shape{N, 2, P, Q});
    check_close(y.to_vector<double>(), want);
  }
  CHECK_THROWS_AS(Conv2d(3, 4, 3, 1, 1).forward(zeros({1, 2, 5, 5})), Error);
  Conv2dOptions bad;
  bad.in_channels = 3;
  bad.out_channels = 4;
  bad.groups = 2;
  CHECK_THROWS_WITH_AS(Conv2d{bad}, doctest::Contains("divisible by groups"), Error);
}

TEST_CASE("BatchNorm2d: batch statistics in training, running statistics in eval") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  BatchNorm2d bn(2);
  bn.to(DType::f64);
  set(bn.weight, from_vector(std::vector<double>{1.5, -0.5}, {2}, kF64));
  set(bn.bias, from_vector(std::vector<double>{0.25, 1.0}, {2}, kF64));
  const int64_t N = 3, H = 2, W = 2, M = N * H * W;
  Tensor x = pattern({N, 2, H, W}, 0.4);
  auto xv = x.to_vector<double>();
  std::vector<double> mean(2), var(2);
  for (int c = 0; c < 2; ++c) {
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < H * W; ++i) mean[c] += xv[(n * 2 + c) * H * W + i] / M;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < H * W; ++i) var[c] += std::pow(xv[(n * 2 + c) * H * W + i] - mean[c], 2) / M;
  }
  const double g[2] = {1.5, -0.5}, b[2] = {0.25, 1.0};
  std::vector<double> want(xv.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < H * W; ++i) {
        const size_t j = static_cast<size_t>((n * 2 + c) * H * W + i);
        want[j] = (xv[j] - mean[c]) / std::sqrt(var[c] + 1e-5) * g[c] + b[c];
      }
  check_close(bn(x).to_vector<double>(), want, 1e-9);
  // running = 0.9 * running + 0.1 * batch, with the unbiased variance
  check_close(bn.running_mean.to_vector<double>(), {0.1 * mean[0], 0.1 * mean[1]});
  check_close(bn.running_var.to_vector<double>(),
              {0.9 + 0.1 * var[0] * M / (M - 1), 0.9 + 0.1 * var[1] * M / (M - 1)});
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  bn(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);

  bn.eval();
  auto rm = bn.running_mean.to_vector<double>(), rv = bn.running_var.to_vector<double>();
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < H * W; ++i) {
        const size_t j = static_cast<size_t>((n * 2 + c) * H * W + i);
        want[j] = (xv[j] - rm[c]) / std::sqrt(rv[c] + 1e-5) * g[c] + b[c];
      }
  check_close(bn(x).to_vector<double>(), want, 1e-9);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);  // eval does not count
  CHECK(bn.running_mean.to_vector<double>() == rm);   // nor update
}

TEST_CASE("ReLU, Flatten, Identity, Sequential") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  Tensor x = from_vector(std::vector<double>{-1.0, 0.0, 2.0, -3.5, 4.0, 0.5}, {1, 2, 3}, kF64);
  ReLU relu;
  CHECK(relu(x).to_vector<double>() == std::vector<double>{0.0, 0.0, 2.0, 0.0, 4.0, 0.5});
  Flatten flat;
  CHECK(flat(zeros({2, 3, 4, 5})).sizes() == Shape{2, 60});
  CHECK(Flatten(0)(zeros({2, 3, 4})).sizes() == Shape{24});
  Sequential seq({std::make_shared<ReLU>(), std::make_shared<Flatten>(), std::make_shared<Identity>()});
  CHECK(seq.size() == 3);
  Tensor y = seq(x);
  CHECK(y.sizes() == Shape{1, 6});
  CHECK(y.to_vector<double>() == std::vector<double>{0.0, 0.0, 2.0, 0.0, 4.0, 0.5});
  CHECK(seq[1]->type_name() == "Flatten");
  CHECK(seq[0]->path() == "0");
}

TEST_CASE("MaxPool2d and AvgPool2d") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  // 1x1x4x4 plane 0..15
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i) v[i] = (i * 7) % 16;  // 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9
  Tensor x = from_vector(v, {1, 1, 4, 4}, kF64);
  MaxPool2d mp(2);
  CHECK(mp(x).to_vector<double>() == std::vector<double>{12, 14, 15, 13});
  // 3x3 window, stride 2, padding 1: windows centred on (0,0), (0,2), (2,0), (2,2)
  MaxPool2d mp3(3, 2, 1);
  CHECK(mp3(x).to_vector<double>() == std::vector<double>{12, 14, 15, 15});

  AvgPool2d ap(2);
  check_close(ap(x).to_vector<double>(), {(0 + 7 + 12 + 3) / 4.0, (14 + 5 + 10 + 1) / 4.0, (8 + 15 + 4 + 11) / 4.0,
                                          (6 + 13 + 2 + 9) / 4.0});
  // padding counts as zeros in the divisor (count_include_pad, PyTorch's default), or not.
  AvgPool2d ap3(3, 2, 1);
  auto a3 = ap3(x).to_vector<double>();
  CHECK(a3[0] == doctest::Approx((0 + 7 + 12 + 3) / 9.0));
  CHECK(a3[3] == doctest::Approx((3 + 10 + 1 + 15 + 6 + 13 + 11 + 2 + 9) / 9.0));
  AvgPool2d ap3x(3, 2, 1, false);
  CHECK(ap3x(x).to_vector<double>()[0] == doctest::Approx((0 + 7 + 12 + 3) / 4.0));
  CHECK_THROWS_AS(MaxPool2d(2, 2, 2), Error);
}

TEST_CASE("AdaptiveAvgPool2d with PyTorch's cell bounds") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  Tensor x = pattern({2, 3, 5, 5}, 0.2);
  auto xv = x.to_vector<double>();
  AdaptiveAvgPool2d gap(1);
  Tensor y = gap(x);
  CHECK(y.sizes() == Shape{2, 3, 1, 1});
  for (int p = 0; p < 6; ++p) {
    double s = 0;
    for (int i = 0; i < 25; ++i) s += xv[p * 25 + i];
    CHECK(y.to_vector<double>()[p] == doctest::Approx(s / 25));
  }
  // 5 -> 2: cells [0, 3) and [2, 5)
  AdaptiveAvgPool2d ap2(2);
  auto y2 = ap2(x).to_vector<double>();
  double s = 0;
  for (int h = 2; h < 5; ++h)
    for (int w = 0; w < 3; ++w) s += xv[h * 5 + w];
  CHECK(y2[2] == doctest::Approx(s / 9));  // plane 0, cell (1, 0)
}

TEST_CASE("Dropout: identity in eval, 0 or x/(1-p) in training") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  manual_seed(3);
  Dropout d(0.25);
  Tensor x = ones({4000}, kF64);
  d.eval();
  CHECK(d(x).to_vector<double>() == x.to_vector<double>());
  d.train();
  auto y = d(x).to_vector<double>();
  int zeros_seen = 0;
  for (double v : y) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75)));
    zeros_seen += v == 0.0;
  }
  CHECK(zeros_seen > 800);  // expected 1000, sd ~27
  CHECK(zeros_seen < 1200);
  CHECK_THROWS_AS(Dropout(1.0), Error);
}

TEST_CASE("CrossEntropyLoss with and without label smoothing") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  const std::vector<double> logits = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};
  const std::vector<int64_t> target = {1, 0};
  Tensor lg = from_vector(logits, {2, 3}, kF64);
  Tensor tg = from_vector(target, {2}, TensorOptions{}.dtype(DType::i64));
  for (double s : {0.0, 0.1}) {
    double want = 0;
    for (int n = 0; n < 2; ++n) {
      double lse = 0;
      for (int c = 0; c < 3; ++c) lse += std::exp(logits[n * 3 + c]);
      lse = std::log(lse);
      double sum_logp = 0;
      for (int c = 0; c < 3; ++c) sum_logp += logits[n * 3 + c] - lse;
      want += -(1 - s) * (logits[n * 3 + target[n]] - lse) - s / 3 * sum_logp;
    }
    want /= 2;
    CrossEntropyLoss ce(s);
    CHECK(ce(lg, tg).item<double>() == doctest::Approx(want).epsilon(1e-12));
  }
  CrossEntropyLoss ce;
  CHECK_THROWS_WITH_AS(ce(lg, from_vector(std::vector<double>{1, 0}, {2}, kF64)), doctest::Contains("int64 target"),
                       Error);
}

TEST_CASE("MSELoss") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  Tensor a = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}, kF64);
  Tensor b = from_vector(std::vector<double>{0, 2, 5, 3}, {2, 2}, kF64);
  MSELoss mse;
  CHECK(mse(a, b).item<double>() == doctest::Approx((1 + 0 + 4 + 1) / 4.0));
  CHECK_THROWS_AS(mse(a, zeros({4}, kF64)), Error);
}

TEST_CASE("default initialisation: PyTorch's bounds, seeded") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  manual_seed(0);
  Conv2d conv(16, 32, 3);
  const double bound = 1.0 / std::sqrt(16.0 * 9.0);
  auto w = conv.weight.to_vector<float>();
  double sq = 0;
  for (float v : w) {
    CHECK(std::abs(v) <= bound);
    sq += v * v;
  }
  // U(-b, b) has variance b^2 / 3; 4608 samples put the estimate within a few percent.
  CHECK(sq / w.size() == doctest::Approx(bound * bound / 3).epsilon(0.08));
  for (float v : conv.bias.to_vector<float>()) CHECK(std::abs(v) <= bound);

  Linear fc(100, 10);
  for (float v : fc.weight.to_vector<float>()) CHECK(std::abs(v) <= 0.1f);
  for (float v : fc.bias.to_vector<float>()) CHECK(std::abs(v) <= 0.1f);

  manual_seed(0);
  Conv2d again(16, 32, 3);
  CHECK(again.weight.to_vector<float>() == w);

  BatchNorm2d bn(4);
  CHECK(bn.weight.to_vector<float>() == std::vector<float>(4, 1.0f));
  CHECK(bn.bias.to_vector<float>() == std::vector<float>(4, 0.0f));

  Tensor k = zeros({64, 32, 3, 3});
  init::kaiming_normal_(k, 0.0, init::FanMode::FanOut, "relu");
  double ks = 0;
  for (float v : k.to_vector<float>()) ks += v * v;
  CHECK(ks / k.numel() == doctest::Approx(2.0 / (64 * 9)).epsilon(0.05));
  CHECK(init::calculate_fan_in_and_fan_out(k) == std::pair<int64_t, int64_t>{32 * 9, 64 * 9});
}

TEST_CASE("BatchNorm2d without affine parameters or running statistics") {
  RefBackendGuard ref;  // float64 runs on the reference backend
  BatchNormOptions o;
  o.affine = false;
  o.track_running_stats = false;
  BatchNorm2d bn(1, o);
  CHECK(bn.state_dict().empty());
  bn.to(DType::f64);
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 6}, {2, 1, 1, 2}, kF64);
  // mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5; the same in eval (no running statistics to use)
  const double s = std::sqrt(3.5 + 1e-5);
  std::vector<double> want = {-2 / s, -1 / s, 0.0, 3 / s};
  check_close(bn(x).to_vector<double>(), want, 1e-9);
  bn.eval();
  check_close(bn(x).to_vector<double>(), want, 1e-9);
}
