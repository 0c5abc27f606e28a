// The quantizer ops against spec/quant.md section 6 (A2-A9, C1, C2): forward values on hand-made inputs, the
// straight-through gradients where the function is piecewise constant, and finite differences (gradcheck)
// where it is differentiable (weight standardisation; the saturated regions where out = +-alpha).
#include <doctest/doctest.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "optim/sgd.h"
#include "quant/ops.h"
#include "test_scopes.h"

using namespace minidl;
using namespace minidl::quant;

namespace {
Tensor leaf(std::initializer_list<double> v, DType dt = DType::f64) {
  return tensor(v, {static_cast<int64_t>(v.size())}, TensorOptions().dtype(dt).requires_grad());
}
Tensor alpha_leaf(double a, DType dt = DType::f64) {
  return scalar_tensor(a, TensorOptions().dtype(dt).requires_grad());
}
void check_vec(const Tensor& t, const std::vector<double>& want, double tol = 1e-6) {
  const auto got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    CHECK_MESSAGE(std::abs(got[i] - want[i]) <= tol, "element ", i, ": ", got[i], " vs ", want[i]);
}
// Backward of sum(y) (upstream gradient 1 everywhere).
void backward_ones(const Tensor& y) { y.sum().backward(); }
LevelSet set(Scheme s, int bits, bool sgn, DType dt = DType::f64) { return LevelSet::make(s, bits, sgn, dt); }
}  // namespace

TEST_CASE("A2: weight standardisation forward and both gradient conventions") {
  for (bool detach : {false, true}) {
    Tensor w = leaf({1, 2, 3, 4});
    Tensor z = weight_standardize(w, detach);
    check_vec(z, {-1.1618950, -0.3872983, 0.3872983, 1.1618950});
    (z * tensor({1, 0, 0, 0}, {4}, TensorOptions().dtype(DType::f64))).sum().backward();
    if (detach) {
      check_vec(w.grad(), {1 / 1.2909944, 0, 0, 0});
    } else {
      check_vec(w.grad(), {0.2323790, -0.3098387, -0.0774597, 0.1549193});
    }
  }
  // Quantizing it as 4-bit weights with alpha 1.
  Tensor z = weight_standardize(tensor({1, 2, 3, 4}, {4}), true);
  check_vec(quantize_weight(z, scalar_tensor(1.0), set(Scheme::APoT, 4, true, DType::f32), Semantics::APoT_I),
            {-1, -0.4, 0.4, 1});
}

TEST_CASE("weight standardisation with live statistics passes gradcheck") {
  Tensor w = randn({3, 2, 3, 3}, TensorOptions().dtype(DType::f64)).set_requires_grad();
  CHECK(autograd::gradcheck([](const std::vector<Tensor>& in) { return weight_standardize(in[0], false); }, {w}));
  CHECK_THROWS_WITH_AS(weight_standardize(full({4}, 2.0), false), doctest::Contains("standard deviation 0"), Error);
}

TEST_CASE("A3: 4-bit weights (L_3), alpha 2, both semantics") {
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    Tensor w = leaf({-3.0, -0.9, 0.05, 0.52, 1.1, 2.0});
    Tensor a = alpha_leaf(2.0);
    Tensor y = quantize_weight(w, a, set(Scheme::APoT, 4, true), sem);
    check_vec(y, {-2.0, -0.8, 0.0, 0.6, 1.2, 2.0});
    backward_ones(y);
    CHECK(a.grad().item<double>() == doctest::Approx(-0.885));
    if (sem == Semantics::APoT_I)
      check_vec(w.grad(), {0, 1, 1, 1, 1, 1});
    else
      check_vec(w.grad(), {1, 1, 1, 1, 1, 1});
  }
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    Tensor w = leaf({0.9, -1.5, 3.4, 0.02, -0.16});
    Tensor a = alpha_leaf(2.0);
    Tensor y = quantize_weight(w, a, set(Scheme::APoT, 4, true), sem);
    check_vec(y, {0.8, -1.6, 2.0, 0.0, -0.2});
    backward_ones(y);
    CHECK(a.grad().item<double>() == doctest::Approx(0.87));
    if (sem == Semantics::APoT_I)
      check_vec(w.grad(), {1, 1, 0, 1, 1});
    else
      check_vec(w.grad(), {1, 1, 1, 1, 1});
  }
}

TEST_CASE("A3 in float32 gives the same values") {
  Tensor y = quantize_weight(tensor({-3.0, -0.9, 0.05, 0.52, 1.1, 2.0}, {6}), scalar_tensor(2.0),
                             set(Scheme::APoT, 4, true, DType::f32), Semantics::APoT_C);
  CHECK(y.dtype() == DType::f32);
  check_vec(y, {-2.0, -0.8, 0.0, 0.6, 1.2, 2.0});
}

TEST_CASE("A4: 2-bit ternary weights with the calibrated (unclipped) gradient") {
  for (Scheme s : {Scheme::APoT, Scheme::Uniform, Scheme::PoT}) {
    Tensor w = leaf({-1.7, -0.6, -0.3, 0.5, 0.49, 1.2});
    Tensor a = alpha_leaf(1.0);
    Tensor y = quantize_weight(w, a, set(s, 2, true), Semantics::APoT_I);  // I, yet unclipped at 2 bits
    check_vec(y, {-1, -1, 0, 0, 0, 1});
    backward_ones(y);
    check_vec(w.grad(), {1, 1, 1, 1, 1, 1});
    CHECK(a.grad().item<double>() == doctest::Approx(-1.09));
  }
  Tensor w = leaf({0.3, 0.5, 0.51, -0.7, 1.8});
  Tensor a = alpha_leaf(1.0);
  Tensor y = quantize_weight(w, a, set(Scheme::APoT, 2, true), Semantics::APoT_C);
  check_vec(y, {0, 0, 1, -1, 1});
  backward_ones(y);
  CHECK(a.grad().item<double>() == doctest::Approx(0.39));
}

TEST_CASE("a 0-dim weight quantizes on both backends, in both dtypes") {
  // found by tests/tools/quant_vs_torch.py: the ref backend built its result as 1-D and failed to copy it back
  for (const char* be : {"ref", "cpu"})
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(be);
      CAPTURE(dtype_name(dt));
      test::BackendScope scope(be);
      Tensor w = scalar_tensor(-1.5, TensorOptions().dtype(dt).requires_grad());
      Tensor a = alpha_leaf(2.0, dt);
      Tensor y = quantize_weight(w, a, set(Scheme::APoT, 4, true, dt), Semantics::APoT_I);
      CHECK(y.dim() == 0);
      CHECK(y.item<double>() == doctest::Approx(-1.6));  // -0.75 projects onto -0.8 of L_3, times alpha 2
      y.backward();
      CHECK(w.grad().dim() == 0);
      CHECK(w.grad().item<double>() == 1.0);
      CHECK(a.grad().item<double>() == doctest::Approx(-0.05));  // q - x = -0.8 + 0.75
    }
}

TEST_CASE("A5: 4-bit activations (L_4), alpha 1") {
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    Tensor x = leaf({-0.2, 0.03, 0.2, 0.7, 1.5});
    Tensor a = alpha_leaf(1.0);
    Tensor y = quantize_activation(x, a, set(Scheme::APoT, 4, false), sem);
    check_vec(y, {0, 0.0208333, 0.1875, 0.6875, 1.0});
    backward_ones(y);
    if (sem == Semantics::APoT_I) {
      check_vec(x.grad(), {0, 1, 1, 1, 0});
      CHECK(a.grad().item<double>() == doctest::Approx(0.9658333));
    } else {
      check_vec(x.grad(), {1, 1, 1, 1, 0});
      CHECK(a.grad().item<double>() == doctest::Approx(1.1658333));
    }
  }
}

TEST_CASE("A6: 2-bit activations (L_2), alpha 4") {
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    Tensor x = leaf({-1.0, 0.4, 1.2, 2.8, 3.3, 5.0});
    Tensor a = alpha_leaf(4.0);
    Tensor y = quantize_activation(x, a, set(Scheme::APoT, 2, false), sem);
    check_vec(y, {0, 0, 1, 2, 4, 4});
    backward_ones(y);
    const bool api = sem == Semantics::APoT_I;
    CHECK(a.grad().item<double>() == doctest::Approx(api ? 0.825 : 1.075));
    check_vec(x.grad(), api ? std::vector<double>{0, 1, 1, 1, 1, 0} : std::vector<double>{1, 1, 1, 1, 1, 0});
  }
}

TEST_CASE("A7: uniform paths round half to even") {
  check_vec(quantize_weight(tensor({0.5, -0.2, 0.9}, {3}), scalar_tensor(1.0),
                            set(Scheme::Uniform, 3, true, DType::f32), Semantics::APoT_I),
            {2.0 / 3, -1.0 / 3, 1});
  check_vec(quantize_activation(tensor({0.5, 0.3, 1.2}, {3}), scalar_tensor(1.0),
                                set(Scheme::Uniform, 3, false, DType::f32), Semantics::APoT_I),
            {4.0 / 7, 2.0 / 7, 1});
}

TEST_CASE("A8: first/last 8-bit signed-max rule") {
  Tensor w = leaf({0.5, -1.0, 0.25, 0.003});
  Tensor y = signed_max_int8(w, false);  // APoT-C: no clamp, code -254
  check_vec(y, {0.5, -1.0, 0.2519685, 0.0039370});
  backward_ones(y);
  check_vec(w.grad(), {1, 1, 1, 1});
  check_vec(signed_max_int8(tensor({0.5, -1.0, 0.25, 0.003}, {4}), true), {0.5, -0.5, 0.2519685, 0.0039370});
  check_vec(signed_max_int8(tensor({0.5, -1.0, 0.25, 1.0}, {4}), false), {0.5039370, -1, 0.2519685, 1});
  CHECK_THROWS_WITH_AS(signed_max_int8(tensor({-0.5, -1.0}, {2}), true), doctest::Contains("positive maximum"), Error);
}

TEST_CASE("A9: grad_scale multiplies the alpha gradient only") {
  Tensor x = leaf({5.0, 7.0});
  Tensor a = alpha_leaf(3.0);
  Tensor y = quantize_activation(x, a, set(Scheme::APoT, 4, false), Semantics::APoT_I, 0.1);
  check_vec(y, {3, 3});
  backward_ones(y);  // upstream alpha-gradient 2.0
  CHECK(a.grad().item<double>() == doctest::Approx(0.2));
}

TEST_CASE("alpha gradients match finite differences where the quantizer saturates") {
  autograd::GradcheckOptions o;
  o.eps = 1e-6;
  // Activations above alpha: out = alpha, d/dalpha = 1; d/dX = 0 (masked by both semantics).
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    Tensor x = leaf({2.5, 3.0, 4.2});
    Tensor a = alpha_leaf(1.7);
    const LevelSet ls = set(Scheme::APoT, 3, false);
    CHECK(autograd::gradcheck([&](const std::vector<Tensor>& in) { return quantize_activation(in[0], in[1], ls, sem); },
                              {x, a}, o));
  }
  // Weights beyond +-alpha: out = sign(w) * alpha, d/dalpha = sign(w); APoT-I also clips the input gradient.
  {
    Tensor w = leaf({2.5, -3.0, 4.2, -1.9});
    Tensor a = alpha_leaf(1.5);
    const LevelSet ls = set(Scheme::APoT, 4, true);
    CHECK(autograd::gradcheck(
        [&](const std::vector<Tensor>& in) { return quantize_weight(in[0], in[1], ls, Semantics::APoT_I); }, {w, a},
        o));
  }
  // PACT above alpha: y = alpha, d/dalpha = 1, d/dx = 0; below 0: y = 0.
  {
    Tensor x = leaf({2.5, 3.0, -0.7});
    Tensor a = alpha_leaf(1.3);
    CHECK(autograd::gradcheck([&](const std::vector<Tensor>& in) { return pact(in[0], in[1], 2); }, {x, a}, o));
  }
}

TEST_CASE("alpha <= 0 is a clear error") {
  CHECK_THROWS_WITH_AS(quantize_activation(tensor({1.0}, {1}), scalar_tensor(0.0),
                                           set(Scheme::APoT, 4, false, DType::f32), Semantics::APoT_I),
                       doctest::Contains("alpha must be a finite value > 0"), Error);
  CHECK_THROWS_WITH_AS(quantize_weight(tensor({1.0}, {1}), scalar_tensor(-1.0), set(Scheme::APoT, 4, true, DType::f32),
                                       Semantics::APoT_I),
                       doctest::Contains("got -1"), Error);
  CHECK_THROWS_WITH_AS(quantize_weight(tensor({1.0}, {1}), scalar_tensor(1.0), set(Scheme::APoT, 4, false, DType::f32),
                                       Semantics::APoT_I),
                       doctest::Contains("signed level set"), Error);
}

TEST_CASE("C1: BinActive integer grid, 2 bits") {
  Tensor x = leaf({-0.5, 0.4, 0.5, 1.5, 2.49, 2.5, 2.6, 3.7});
  Tensor y = int_grid_activation(x, 2);
  check_vec(y, {0, 0, 0, 2, 2, 2, 3, 3});
  backward_ones(y);
  check_vec(x.grad(), {0, 1, 1, 1, 1, 1, 1, 0});
}

TEST_CASE("integer grid: the gradient window is open, 0 < x < k, on both backends") {
  // the window's ends exactly (a mutation to x >= 0 survived every test but the random quantization programs)
  for (const char* be : {"ref", "cpu"}) {
    CAPTURE(be);
    test::BackendScope scope(be);
    Tensor x = leaf({0.0, -0.0, 3.0, 0.25, 2.75});
    Tensor y = int_grid_activation(x, 2);
    check_vec(y, {0, 0, 3, 0, 3});
    backward_ones(y);
    check_vec(x.grad(), {0, 0, 0, 1, 1});
  }
}

TEST_CASE("C2: PACT forward, STE and the alpha update through an optimizer group") {
  struct Case {
    double alpha;
    std::vector<double> x, y, mask;
    double ga, updated;
  };
  for (const Case& c :
       {Case{6.0, {1.0, 2.9, 7.0}, {0, 2, 6}, {1, 1, 0}, 1.0, 5.989988},
        Case{1.5, {-0.2, 0.3, 0.76, 1.2, 2.0}, {0, 0.5, 1.0, 1.0, 1.5}, {0, 1, 1, 1, 0}, 1.0, 1.489997}}) {
    Tensor x =
        from_vector(c.x, {static_cast<int64_t>(c.x.size())}, TensorOptions().dtype(DType::f64)).set_requires_grad();
    Tensor a = alpha_leaf(c.alpha);
    Tensor y = pact(x, a, 2);
    check_vec(y, c.y);
    backward_ones(y);
    check_vec(x.grad(), c.mask);
    CHECK(a.grad().item<double>() == doctest::Approx(c.ga));
    // The reference's in-backward update alpha -= 0.01 * (g + 2e-4 * alpha) is SGD with lr 0.01, L2 2e-4.
    optim::SGDOptions so;
    so.lr = 0.01;
    so.weight_decay = 2e-4;
    optim::SGD opt({a}, so);
    opt.step();
    CHECK(a.item<double>() == doctest::Approx(c.updated).epsilon(1e-9));
  }
}

TEST_CASE("binarize: per-layer scale mean|w|, sign(0) = 0, identity STE") {
  Tensor w = leaf({0.5, -1.5, 0.0, 2.0});
  Tensor y = binarize(w);
  check_vec(y, {1, -1, 0, 1});
  (y * tensor({2, 3, 4, 5}, {4}, TensorOptions().dtype(DType::f64))).sum().backward();
  check_vec(w.grad(), {2, 3, 4, 5});
}

TEST_CASE("grad_scale on the weight alpha, APoT-C uniform activations keep negative codes as the reference") {
  Tensor w = leaf({-3.0, -0.9, 0.05, 0.52, 1.1, 2.0});
  Tensor a = alpha_leaf(2.0);
  backward_ones(quantize_weight(w, a, set(Scheme::APoT, 4, true), Semantics::APoT_C, 0.5));
  CHECK(a.grad().item<double>() == doctest::Approx(-0.885 * 0.5));
  // c = min(x, 1) without a lower clamp, then round(c * 15) / 15: -0.2 -> -3/15.
  Tensor x = leaf({-0.2, 0.5, 2.0});
  Tensor al = alpha_leaf(1.0);
  Tensor y = quantize_activation(x, al, set(Scheme::Uniform, 4, false), Semantics::APoT_C);
  check_vec(y, {-0.2, 8.0 / 15, 1.0});
  backward_ones(y);
  check_vec(x.grad(), {1, 1, 0});
  CHECK(al.grad().item<double>() == doctest::Approx((-0.2 + 0.2) + (8.0 / 15 - 0.5) + 1.0));
  // APoT-I clamps at 0.
  check_vec(quantize_activation(tensor({-0.2, 0.5}, {2}, TensorOptions().dtype(DType::f64)), alpha_leaf(1.0),
                                set(Scheme::Uniform, 4, false), Semantics::APoT_I),
            {0.0, 8.0 / 15});
}
