// LR schedulers: the lr sequences of multi-step, cosine (torch's CosineAnnealingLR values, worked out by hand)
// and linear warm-up (alone and wrapping cosine), per-group base lrs, and state-dict round trips.
#include <doctest/doctest.h>

#include <vector>

#include "optim/optim.h"

using namespace minidl;
using namespace minidl::optim;

namespace {

Tensor param() { return zeros({2}, TensorOptions{}.dtype(DType::f64).requires_grad()); }

std::vector<double> lrs(LRScheduler& s, int n, size_t group = 0) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(s.get_last_lr()[group]);
    s.step();
  }
  return out;
}

void check_seq(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step ", i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("MultiStepLR") {
  SGD opt({param()}, {.lr = 0.1});
  MultiStepLR s(opt, {2, 4}, 0.1);
  check_seq(lrs(s, 6), {0.1, 0.1, 0.01, 0.01, 0.001, 0.001});
  CHECK(s.last_step() == 6);
}

TEST_CASE("MultiStepLR takes milestones in any order, and one given twice applies gamma twice (PyTorch's Counter)") {
  SGD opt({param()}, {.lr = 1.0});
  MultiStepLR s(opt, {4, 2, 4}, 0.5);
  check_seq(lrs(s, 6), {1.0, 1.0, 0.5, 0.5, 0.125, 0.125});
}

TEST_CASE("CosineAnnealingLR over T_max steps, and past it") {
  SGD opt({param()}, {.lr = 0.1});
  CosineAnnealingLR s(opt, 4);
  check_seq(lrs(s, 7), {0.1, 0.08535533905932738, 0.05, 0.014644660940672627, 0.0, 0.014644660940672617,
                        0.04999999999999999});
}

TEST_CASE("CosineAnnealingLR with eta_min and two groups") {
  Tensor a = param(), b = param();
  std::vector<ParamGroup> groups(2);
  groups[0].params = {a};
  groups[1].params = {b};
  groups[1].options = {{"lr", 0.01}};
  SGD opt(groups, {.lr = 0.1});
  CosineAnnealingLR s(opt, 4, 0.001);
  CHECK(s.base_lrs() == std::vector<double>{0.1, 0.01});
  std::vector<double> g1;
  for (int i = 0; i < 5; ++i) {
    g1.push_back(opt.param_groups()[1].lr());
    CHECK(opt.param_groups()[0].lr() ==
          doctest::Approx(std::vector<double>{0.1, 0.0855017856687341, 0.0505, 0.0154982143312659, 0.001}[i]));
    s.step();
  }
  // group 1: 0.001 + (0.01 - 0.001) * (1 + cos(pi t / 4)) / 2
  check_seq(g1, {0.01, 0.001 + 0.009 * 0.8535533905932737, 0.0055, 0.001 + 0.009 * 0.14644660940672627, 0.001});
}

TEST_CASE("LinearWarmupLR alone and wrapping cosine") {
  {
    SGD opt({param()}, {.lr = 0.2});
    LinearWarmupLR s(opt, 4);
    check_seq(lrs(s, 6), {0.0, 0.05, 0.1, 0.15, 0.2, 0.2});
  }
  {
    SGD opt({param()}, {.lr = 0.1});
    auto cos = std::make_unique<CosineAnnealingLR>(opt, 4);
    LinearWarmupLR s(opt, 2, std::move(cos), 0.5);
    // warm-up 0.05, 0.075, then cosine from its step 0
    check_seq(lrs(s, 7), {0.05, 0.075, 0.1, 0.08535533905932738, 0.05, 0.014644660940672627, 0.0});
  }
}

TEST_CASE("scheduler state_dict round trip") {
  SGD a({param()}, {.lr = 0.1});
  CosineAnnealingLR sa(a, 10);
  for (int i = 0; i < 3; ++i) sa.step();
  TensorMap sd = sa.state_dict();
  CHECK(sd.at("last_step").dtype() == DType::i64);
  CHECK(sd.at("last_step").item<int64_t>() == 3);

  SGD b({param()}, {.lr = 0.1});
  CosineAnnealingLR sb(b, 10);
  sb.load_state_dict(sd);
  CHECK(sb.last_step() == 3);
  CHECK(b.param_groups()[0].lr() == a.param_groups()[0].lr());
  sa.step();
  sb.step();
  CHECK(b.param_groups()[0].lr() == a.param_groups()[0].lr());

  SGD c({param()}, {.lr = 0.1});
  c.add_param_group(ParamGroup{{param()}, {}});
  MultiStepLR sc(c, {1});
  CHECK_THROWS_WITH_AS(sc.load_state_dict(sd), doctest::Contains("base_lrs"), Error);
}

TEST_CASE("initial_lr survives an optimizer checkpoint") {
  SGD a({param()}, {.lr = 0.1});
  MultiStepLR sa(a, {1}, 0.5);
  sa.step();
  CHECK(a.param_groups()[0].lr() == doctest::Approx(0.05));
  TensorMap sd = a.state_dict();
  CHECK(sd.at("param_groups.0.initial_lr").item<double>() == 0.1);
  SGD b({param()}, {.lr = 0.1});
  b.load_state_dict(sd);
  CHECK(b.param_groups()[0].lr() == doctest::Approx(0.05));
  CHECK(b.param_groups()[0].get("initial_lr") == 0.1);
}
