// End to end through autograd and the optimizers: fitting y = 2 x0 - 3 x1 + 1 with a Linear layer and MSE
// converges to the known solution with SGD (momentum), Nesterov, Adam and a cosine schedule; a small conv
// net's training loss falls on a separable synthetic task.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "tensor/generator.h"

using namespace minidl;

namespace {

// 64 points on a grid and their targets y = 2 x0 - 3 x1 + 1.
void regression_data(Tensor& x, Tensor& y) {
  std::vector<float> xv, yv;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      const float a = (i - 3.5f) / 4.0f, b = (j - 3.5f) / 4.0f;
      xv.push_back(a);
      xv.push_back(b);
      yv.push_back(2 * a - 3 * b + 1);
    }
  x = from_vector(xv, {64, 2});
  y = from_vector(yv, {64, 1});
}

template <typename MakeOpt>
void fit_and_check(MakeOpt make_opt, int steps) {
  manual_seed(1);
  nn::Linear fc(2, 1);
  Tensor x, y;
  regression_data(x, y);
  auto opt = make_opt(fc.parameters());
  optim::CosineAnnealingLR sched(*opt, steps, 1e-4);
  nn::MSELoss mse;
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    opt->zero_grad();
    Tensor loss = mse(fc(x), y);
    loss.backward();
    opt->step();
    sched.step();
    (s == 0 ? first : last) = loss.item<double>();
  }
  CHECK(last < 1e-4 * first);
  auto w = fc.weight.to_vector<float>();
  CHECK(w[0] == doctest::Approx(2.0).epsilon(0.01));
  CHECK(w[1] == doctest::Approx(-3.0).epsilon(0.01));
  CHECK(fc.bias.item<float>() == doctest::Approx(1.0).epsilon(0.01));
}

}  // namespace

TEST_CASE("linear regression converges: SGD momentum, Nesterov, Adam, AdamW") {
  SUBCASE("SGD momentum") {
    fit_and_check([](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9}); },
                  200);
  }
  SUBCASE("SGD Nesterov") {
    fit_and_check(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
        },
        200);
  }
  SUBCASE("Adam") {
    fit_and_check([](std::vector<Tensor> p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.1}); },
                  400);
  }
  SUBCASE("AdamW without decay") {
    fit_and_check(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::AdamW>(p, optim::AdamOptions{.lr = 0.1, .weight_decay = 0.0});
        },
        400);
  }
}

TEST_CASE("a small conv net learns a synthetic two-class task") {
  manual_seed(2);
  // Class 0: bright top half; class 1: bright bottom half, plus noise.
  const int64_t N = 32;
  Tensor noise = randn({N, 1, 8, 8});
  auto nv = noise.to_vector<float>();
  std::vector<float> xv(nv.size());
  std::vector<int64_t> labels(N);
  for (int64_t n = 0; n < N; ++n) {
    labels[n] = n % 2;
    for (int h = 0; h < 8; ++h)
      for (int w = 0; w < 8; ++w) {
        const size_t i = static_cast<size_t>((n * 8 + h) * 8 + w);
        xv[i] = 0.5f * nv[i] + ((h < 4) == (labels[n] == 0) ? 1.0f : 0.0f);
      }
  }
  Tensor x = from_vector(xv, {N, 1, 8, 8});
  Tensor t = from_vector(labels, {N}, TensorOptions{}.dtype(DType::i64));

  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1, false))
      .push_back(std::make_shared<nn::BatchNorm2d>(4))
      .push_back(std::make_shared<nn::ReLU>())
      .push_back(std::make_shared<nn::MaxPool2d>(2))
      .push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1))
      .push_back(std::make_shared<nn::Flatten>())
      .push_back(std::make_shared<nn::Linear>(4, 2));
  optim::SGD opt(net->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
  nn::CrossEntropyLoss ce(0.1);
  double first = 0, last = 0;
  for (int s = 0; s < 60; ++s) {
    opt.zero_grad();
    Tensor loss = ce((*net)(x), t);
    loss.backward();
    optim::clip_grad_norm_(net->parameters(), 5.0);
    opt.step();
    (s == 0 ? first : last) = loss.item<double>();
  }
  MESSAGE("loss ", first, " -> ", last);
  CHECK(last < 0.5 * first);
  net->eval();
  NoGradGuard no_grad;
  auto logits = (*net)(x).to_vector<float>();
  int correct = 0;
  for (int64_t n = 0; n < N; ++n) correct += (logits[n * 2 + 1] > logits[n * 2]) == (labels[n] == 1);
  CHECK(correct >= 30);
}
