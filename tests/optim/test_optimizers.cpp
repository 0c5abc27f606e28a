// Optimizer step rules against hand-computed values (3 steps on a 2-element parameter with fixed gradients;
// the expected numbers follow PyTorch's documented update rules, worked out by hand in double), parameter
// groups, state-dict round trips and their errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "optim/optim.h"
#include "tensor/tensor.h"

using namespace minidl;
using namespace minidl::optim;

namespace {

const std::vector<std::vector<double>> kGrads = {{0.5, -1.0}, {0.25, 0.5}, {-0.5, 1.5}};

Tensor make_param(DType dt = DType::f64) {
  Tensor p = from_vector(std::vector<double>{1.0, -2.0}, {2}, TensorOptions{}.dtype(dt));
  p.set_requires_grad(true);
  return p;
}

void set_grad(Tensor& p, const std::vector<double>& g) {
  p.set_grad(from_vector(g, {2}, TensorOptions{}.dtype(p.dtype())));
}

// Runs 3 steps and checks the parameter after each against `expected`.
void run_and_check(Optimizer& opt, Tensor& p, const std::vector<std::vector<double>>& expected, double tol) {
  for (size_t s = 0; s < kGrads.size(); ++s) {
    set_grad(p, kGrads[s]);
    opt.step();
    auto v = p.to_vector<double>();
    INFO("step ", s + 1);
    CHECK(v[0] == doctest::Approx(expected[s][0]).epsilon(tol));
    CHECK(v[1] == doctest::Approx(expected[s][1]).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("SGD plain") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1});
  run_and_check(opt, p, {{0.95, -1.9}, {0.925, -1.95}, {0.975, -2.1}}, 1e-12);
  CHECK(opt.state(0).empty());  // no momentum: no buffer
}

TEST_CASE("SGD momentum (first step takes the gradient undamped)") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  run_and_check(opt, p, {{0.95, -1.9}, {0.88, -1.86}, {0.867, -1.974}}, 1e-12);
  // buf after 3 steps: 0.9 * (0.9 * 0.5 + 0.25) - 0.5 = 0.13
  CHECK(opt.state(0).at("momentum_buffer").to_vector<double>()[0] == doctest::Approx(0.13));
}

TEST_CASE("SGD momentum with dampening") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
  run_and_check(opt, p, {{0.95, -1.9}, {0.8825, -1.855}, {0.86675, -1.9495}}, 1e-12);
}

TEST_CASE("SGD momentum with L2 weight decay") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  run_and_check(opt, p, {{0.94, -1.88}, {0.8516, -1.8032}, {0.813524, -1.866048}}, 1e-12);
}

TEST_CASE("SGD Nesterov with weight decay") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  run_and_check(opt, p, {{0.9031, -1.8062}, {0.81257411, -1.81514822}, {0.847869708191, -2.061378416382}}, 1e-12);
}

TEST_CASE("SGD decoupled weight decay") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .decoupled_weight_decay = true});
  run_and_check(opt, p, {{0.94, -1.88}, {0.8606, -1.8212}, {0.838994, -1.916988}}, 1e-12);
}

TEST_CASE("SGD in float32") {
  Tensor p = make_param(DType::f32);
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  run_and_check(opt, p, {{0.95, -1.9}, {0.88, -1.86}, {0.867, -1.974}}, 1e-6);
}

TEST_CASE("SGD rejects Nesterov without momentum and bad groups") {
  Tensor p = make_param();
  CHECK_THROWS_AS(SGD({p}, {.lr = 0.1, .nesterov = true}), Error);
  std::vector<ParamGroup> groups(1);
  groups[0].params = {p};
  groups[0].options = {{"betas", 0.5}};
  CHECK_THROWS_WITH_AS(SGD(groups, {}), doctest::Contains("unknown option 'betas'"), Error);
  CHECK_THROWS_WITH_AS(SGD({p, p}, {}), doctest::Contains("more than one place"), Error);
}

TEST_CASE("Adam") {
  Tensor p = make_param();
  Adam opt({p}, {.lr = 0.1});
  run_and_check(opt, p,
                {{0.900000002, -1.900000001},
                 {0.8067820404774624, -1.873366297370903},
                 {0.7957037336010943, -1.9123052759895929}},
                1e-12);
  CHECK(opt.state(0).at("step").item<double>() == 3.0);
}

TEST_CASE("Adam with L2 weight decay") {
  Tensor p = make_param();
  Adam opt({p}, {.lr = 0.1, .weight_decay = 0.1});
  run_and_check(opt, p,
                {{0.9000000016666666, -1.9000000008333333},
                 {0.8050097658613199, -1.8537472646427609},
                 {0.775511505150508, -1.8757361448065795}},
                1e-12);
}

TEST_CASE("AdamW (decoupled weight decay)") {
  Tensor p = make_param();
  AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.1});
  run_and_check(opt, p,
                {{0.890000002, -1.880000001},
                 {0.7878820404574624, -1.8345662973609032},
                 {0.7689249131765196, -1.855159613005984}},
                1e-12);
  CHECK(AdamW::adamw_defaults().weight_decay == 0.01);
}

TEST_CASE("Adam amsgrad") {
  Tensor p = make_param();
  Adam opt({p}, {.lr = 0.1, .beta2 = 0.5, .amsgrad = true});
  run_and_check(opt, p,
                {{0.900000002, -1.900000001},
                 {0.8097556452658828, -1.8742158987601771},
                 {0.7989320455504932, -1.9085629871239265}},
                1e-12);
}

TEST_CASE("parameter groups keep their own options, params without grad are skipped") {
  Tensor a = make_param(), b = make_param(), c = make_param();
  std::vector<ParamGroup> groups(2);
  groups[0].params = {a, c};
  groups[1].params = {b};
  groups[1].options = {{"lr", 0.01}, {"weight_decay", 0.0}};
  SGD opt(groups, {.lr = 0.1, .weight_decay = 0.5});
  CHECK(opt.param_groups()[0].lr() == 0.1);
  CHECK(opt.param_groups()[0].get("weight_decay") == 0.5);
  CHECK(opt.param_groups()[1].lr() == 0.01);
  set_grad(a, {1.0, 1.0});
  set_grad(b, {1.0, 1.0});
  opt.step();
  // a: p - 0.1 * (1 + 0.5 p); b: p - 0.01 * 1; c untouched
  CHECK(a.to_vector<double>()[0] == doctest::Approx(1.0 - 0.1 * 1.5));
  CHECK(a.to_vector<double>()[1] == doctest::Approx(-2.0 - 0.1 * 0.0));
  CHECK(b.to_vector<double>()[0] == doctest::Approx(0.99));
  CHECK(c.to_vector<double>()[0] == 1.0);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("optimizer step bumps the parameter's version") {
  Tensor p = make_param();
  SGD opt({p}, {.lr = 0.1});
  const auto v0 = p.version();
  set_grad(p, {1.0, 1.0});
  opt.step();
  CHECK(p.version() > v0);
}

TEST_CASE("SGD state_dict round trip continues identically") {
  Tensor p1 = make_param();
  SGD a({p1}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  set_grad(p1, kGrads[0]);
  a.step();
  a.param_groups()[0].set_lr(0.05);
  TensorMap sd = a.state_dict();
  CHECK(sd.count("state.0.momentum_buffer") == 1);
  CHECK(sd.at("param_groups.0.lr").item<double>() == 0.05);
  CHECK(sd.at("param_groups.0.params").dtype() == DType::i64);

  Tensor p2 = make_param();
  p2.detach().copy_(p1.detach());
  SGD b({p2}, {.lr = 0.1});
  b.load_state_dict(sd);
  CHECK(b.param_groups()[0].lr() == 0.05);
  CHECK(b.param_groups()[0].get("momentum") == 0.9);
  for (int s = 1; s < 3; ++s) {
    set_grad(p1, kGrads[s]);
    set_grad(p2, kGrads[s]);
    a.step();
    b.step();
  }
  CHECK(p1.to_vector<double>() == p2.to_vector<double>());
}

TEST_CASE("Adam state_dict round trip keeps the step count") {
  Tensor p1 = make_param();
  Adam a({p1}, {.lr = 0.1});
  set_grad(p1, kGrads[0]);
  a.step();
  TensorMap sd = a.state_dict();
  CHECK(sd.at("state.0.step").item<double>() == 1.0);
  CHECK(sd.count("state.0.exp_avg") == 1);
  CHECK(sd.count("state.0.exp_avg_sq") == 1);

  Tensor p2 = make_param();
  p2.detach().copy_(p1.detach());
  Adam b({p2}, {.lr = 0.1});
  b.load_state_dict(sd);
  for (int s = 1; s < 3; ++s) {
    set_grad(p1, kGrads[s]);
    set_grad(p2, kGrads[s]);
    a.step();
    b.step();
  }
  CHECK(p1.to_vector<double>() == p2.to_vector<double>());
  CHECK(p2.to_vector<double>()[0] == doctest::Approx(0.7957037336010943));
}

TEST_CASE("optimizer load_state_dict errors name the problem") {
  Tensor p = make_param();
  SGD a({p}, {.lr = 0.1, .momentum = 0.9});
  set_grad(p, kGrads[0]);
  a.step();
  TensorMap sd = a.state_dict();

  Tensor q = zeros({3}, TensorOptions{}.dtype(DType::f64).requires_grad());
  SGD wrong_shape({q}, {.lr = 0.1});
  CHECK_THROWS_WITH_AS(wrong_shape.load_state_dict(sd), doctest::Contains("state.0.momentum_buffer"), Error);

  Tensor r = make_param();
  SGD two({p, r}, {.lr = 0.1});
  CHECK_THROWS_WITH_AS(two.load_state_dict(sd), doctest::Contains("group 0 has 2 parameters"), Error);

  TensorMap missing = sd;
  missing.erase("param_groups.0.lr");
  SGD b({make_param()}, {.lr = 0.1});
  CHECK_THROWS_WITH_AS(b.load_state_dict(missing), doctest::Contains("param_groups.0.lr"), Error);
  CHECK(b.param_groups()[0].lr() == 0.1);  // unchanged after a failed load
}

TEST_CASE("0-dim parameters (e.g. clipping alphas) keep their state through a checkpoint") {
  Tensor a1 = scalar_tensor(2.0).set_requires_grad(true);
  Adam opt1({a1}, {.lr = 0.1});
  a1.set_grad(scalar_tensor(0.5));
  opt1.step();
  // first Adam step moves by lr * sign(g) (up to eps)
  CHECK(a1.item<float>() == doctest::Approx(1.9f));
  TensorMap sd = opt1.state_dict();
  CHECK(sd.at("state.0.exp_avg").dim() == 0);
  CHECK(sd.at("state.0.exp_avg").dtype() == DType::f32);

  Tensor a2 = scalar_tensor(1.9).set_requires_grad(true);
  a2.detach().copy_(a1.detach());
  Adam opt2({a2}, {.lr = 0.1});
  opt2.load_state_dict(sd);
  CHECK(opt2.state(0).at("exp_avg").dtype() == DType::f32);
  a1.set_grad(scalar_tensor(-0.25));
  a2.set_grad(scalar_tensor(-0.25));
  opt1.step();
  opt2.step();
  CHECK(a1.item<float>() == a2.item<float>());
}
