// optim::Hysteresis step by step: the reference code's one-step rule against spec/quant.md test vector C3,
// the classical hysteresis loop (flip only past +-t), the flip ratio, weight decay on P, float groups as SGD,
// dampening and Nesterov momentum, and the latent weights surviving a state-dict round trip.
#include <doctest/doctest.h>

#include "optim/hysteresis.h"

using namespace minidl;
using namespace minidl::optim;

namespace {
Tensor param(std::initializer_list<double> v) {
  return tensor(v, {static_cast<int64_t>(v.size())}, TensorOptions().dtype(DType::f64).requires_grad());
}
void set_grad(const Tensor& p, std::initializer_list<double> g) {
  p.set_grad(tensor(g, {static_cast<int64_t>(g.size())}, TensorOptions().dtype(DType::f64)));
}
void check_vec(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  const auto got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    CHECK_MESSAGE(std::abs(got[i] - want[i]) <= tol, "element ", i, ": ", got[i], " vs ", want[i]);
}
HysteresisOptions opts(HysteresisMode mode, double lr = 0.1) {
  HysteresisOptions o;
  o.lr = lr;
  o.momentum = 0.0;
  o.threshold = 0.1;
  o.mode = mode;
  return o;
}
std::vector<ParamGroup> one(const Tensor& p) {
  std::vector<ParamGroup> g(1);
  g[0].params = {p};
  return g;
}
}  // namespace

TEST_CASE("C3: the reference's one-step rule") {
  Tensor p = param({0.3, -0.05, 0.02, -0.2, 0.15});
  Hysteresis opt(one(p), opts(HysteresisMode::OneStep));
  check_vec(opt.latent(0), {0.3, -0.05, 0.02, -0.2, 0.15});
  set_grad(p, {1, -1, 1, -1, 3});
  opt.step();
  check_vec(opt.latent(0), {0.2, 0.05, -0.08, -0.1, -0.15});
  check_vec(p, {0.116, 0.0058, -0.00928, -0.116, -0.116});
  // Binarised at construction: signs were [+, -, +, -, +]; now [+, +, -, -, -]: 3 of 5 changed.
  CHECK(opt.last_flips() == 3);
  CHECK(opt.last_flip_ratio() == doctest::Approx(0.6));

  Tensor q = param({0.5, -0.3, 0.05, -0.02, 0.2, 0.0});
  Hysteresis opt2(one(q), opts(HysteresisMode::OneStep));
  set_grad(q, {1, 0.5, 2, -0.5, 2.5, -1});  // V = V_old - 0.1 * d
  opt2.step();
  check_vec(opt2.latent(0), {0.4, -0.35, -0.15, 0.03, -0.05, 0.1});
  check_vec(q, {0.18, -0.18, -0.18, 0.0054, -0.009, 0.018});
}

TEST_CASE("classical hysteresis: a sign flips only when the latent weight passes +-t") {
  Tensor p = param({0.05, -0.05, 0.3});
  Hysteresis opt(one(p), opts(HysteresisMode::Classical, 1.0));
  const double a0 = (0.05 + 0.05 + 0.3) / 3;
  check_vec(p, {a0, -a0, a0});     // binarised at construction
  set_grad(p, {-0.1, 0.1, 0.35});  // V -> [0.15, -0.15, -0.05]: the third crossed zero but not -t
  opt.step();
  double a = (0.15 + 0.15 + 0.05) / 3;
  check_vec(opt.latent(0), {0.15, -0.15, -0.05}, 1e-12);
  check_vec(p, {a, -a, a});
  CHECK(opt.last_flips() == 0);
  set_grad(p, {0.3, -0.3, 0.1});  // V -> [-0.15, 0.15, -0.15]: all three pass the threshold
  opt.step();
  a = 0.15;
  check_vec(p, {-a, a, -a});
  CHECK(opt.last_flip_ratio() == doctest::Approx(1.0));
  set_grad(p, {-0.1, 0.0, 0.0});  // V -> [-0.05, 0.15, -0.15]: back inside the band, keeps -1
  opt.step();
  a = (0.05 + 0.15 + 0.15) / 3;
  check_vec(p, {-a, a, -a});
  CHECK(opt.last_flips() == 0);
}

TEST_CASE("weight decay acts on P, momentum on the latent update, float groups are plain SGD") {
  Tensor b = param({0.4, -0.2});
  Tensor f = param({1.0, 2.0});
  std::vector<ParamGroup> groups(2);
  groups[0].params = {b};
  groups[1].params = {f};
  groups[1].options["binary"] = 0.0;
  HysteresisOptions o = opts(HysteresisMode::Classical, 0.1);
  o.weight_decay = 0.5;
  o.momentum = 0.9;
  Hysteresis opt(groups, o);
  // P = 0.3 * [1, -1]; d = g + 0.5 * P
  set_grad(b, {1.0, 1.0});
  set_grad(f, {1.0, 1.0});
  opt.step();
  check_vec(opt.latent(0), {0.4 - 0.1 * (1 + 0.15), -0.2 - 0.1 * (1 - 0.15)});
  check_vec(f, {1.0 - 0.1 * (1 + 0.5), 2.0 - 0.1 * (1 + 1.0)});
  CHECK_THROWS_WITH_AS(opt.latent(1), doctest::Contains("not binary"), Error);
  // Second step: momentum buffer = 0.9 * d1 + d2 on the latent copy.
  const auto v1 = opt.latent(0).to_vector<double>();
  const auto p1 = b.to_vector<double>();
  set_grad(b, {0.0, 0.0});
  set_grad(f, {0.0, 0.0});
  opt.step();
  const double d1a = 1 + 0.15, d2a = 0.5 * p1[0];
  check_vec(opt.latent(0).narrow(0, 0, 1), {v1[0] - 0.1 * (0.9 * d1a + d2a)});
}

TEST_CASE("dampening and Nesterov momentum on the latent update, as SGD's (the first step undamped)") {
  SUBCASE("dampening") {
    Tensor b = param({0.4, -0.2});
    HysteresisOptions o = opts(HysteresisMode::Classical, 0.1);
    o.momentum = 0.9;
    o.dampening = 0.5;
    Hysteresis opt(one(b), o);
    set_grad(b, {1.0, 1.0});
    opt.step();  // buffer = d = [1, 1]
    check_vec(opt.latent(0), {0.3, -0.3});
    set_grad(b, {2.0, -1.0});
    opt.step();  // buffer = 0.9 * [1, 1] + 0.5 * [2, -1] = [1.9, 0.4]
    check_vec(opt.latent(0), {0.3 - 0.19, -0.3 - 0.04});
  }
  SUBCASE("Nesterov") {
    Tensor b = param({0.4, -0.2});
    HysteresisOptions o = opts(HysteresisMode::Classical, 0.1);
    o.momentum = 0.9;
    o.nesterov = true;
    Hysteresis opt(one(b), o);
    set_grad(b, {1.0, 1.0});
    opt.step();  // buffer = [1, 1]; step d + 0.9 * buffer = [1.9, 1.9]
    check_vec(opt.latent(0), {0.4 - 0.19, -0.2 - 0.19});
    set_grad(b, {2.0, -1.0});
    opt.step();  // buffer = [2.9, -0.1]; step [2 + 2.61, -1 - 0.09]
    check_vec(opt.latent(0), {0.21 - 0.461, -0.39 + 0.109});
  }
  SUBCASE("Nesterov needs a momentum and no dampening") {
    Tensor b = param({0.4, -0.2});
    HysteresisOptions o = opts(HysteresisMode::Classical, 0.1);
    o.nesterov = true;
    o.momentum = 0.9;
    o.dampening = 0.1;
    CHECK_THROWS_WITH_AS(Hysteresis(one(b), o), doctest::Contains("Nesterov"), Error);
    o.dampening = 0.0;
    o.momentum = 0.0;
    CHECK_THROWS_WITH_AS(Hysteresis(one(b), o), doctest::Contains("Nesterov"), Error);
  }
}

TEST_CASE("latent weights are saved in the state dict, so a resumed run continues identically") {
  Tensor p = param({0.3, -0.05, 0.02});
  Hysteresis opt(one(p), opts(HysteresisMode::Classical));
  set_grad(p, {1, -1, 1});
  opt.step();
  TensorMap sd = opt.state_dict();  // like PyTorch, it shares storage with the live state: snapshot it
  for (auto& [k, v] : sd) v = v.clone();
  REQUIRE(sd.count("state.0.latent"));
  REQUIRE(sd.count("state.0.sign"));
  const std::vector<double> saved_p = p.to_vector<double>();

  // Continue the original.
  set_grad(p, {2, 2, -2});
  opt.step();
  const auto want = p.to_vector<double>();

  // Resume: a fresh parameter with the saved P, a fresh optimizer, then the state dict.
  Tensor p2 = from_vector(saved_p, {3}, TensorOptions().dtype(DType::f64)).set_requires_grad();
  Hysteresis opt2(one(p2), opts(HysteresisMode::Classical));
  opt2.load_state_dict(sd);
  {
    // The constructor re-binarised p2 from itself; restore the saved P (the model checkpoint holds it).
    Tensor h = p2.detach();
    h.copy_(from_vector(saved_p, {3}, TensorOptions().dtype(DType::f64)));
  }
  set_grad(p2, {2, 2, -2});
  opt2.step();
  check_vec(p2, want);
  check_vec(opt2.latent(0), opt.latent(0).to_vector<double>());
}
