// The signed weight quantizer's forward is one backend pass on the host (Backend::quantize_weight_forward). These
// tests pin it to the chain of primitives it replaced (x = w / alpha, clamp to [-1, 1], project or round, * alpha,
// the straight-through mask and the alpha coefficient), bit for bit, on the ref and cpu backends at every ISA
// level, for level sets and the rounding path, f32 and f64, with NaN, infinities, -0, the clip edges and ties at
// midpoints; and the op's gradients to the chain's.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "backends/cpu/cpu_isa.h"
#include "quant/op_utils.h"
#include "quant/ops.h"
#include "test_scopes.h"

using namespace minidl;
using namespace minidl::quant;
using minidl::test::BackendScope;

namespace {

struct Chain {
  Tensor out, coef, inside;
};

// The forward the op used to run, primitive by primitive, on the current backend.
Chain chain(const Tensor& w, const Tensor& a, const LevelSet& ls) {
  using namespace minidl::quant::detail;
  const Tensor x = div_raw(w, a);
  const Tensor c = unary_raw(UnaryOp::Clamp, x, -1.0, 1.0);
  const Tensor q = project(c, ls);
  const Tensor outside = cmp_scalar(BinaryOp::Gt, unary_raw(UnaryOp::Abs, x), 1.0, "test");
  const Tensor inside = unary_raw(UnaryOp::Affine, outside, -1.0, 1.0);
  const Tensor coef = add_raw(mul_raw(unary_raw(UnaryOp::Sign, x), outside), mul_raw(sub_raw(q, x), inside));
  return {mul_raw(q, a), coef, inside};
}

void check_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same =
        (std::isnan(g[i]) && std::isnan(w[i])) || (g[i] == w[i] && std::signbit(g[i]) == std::signbit(w[i]));
    if (!same && bad++ == 0) first = static_cast<int64_t>(i);
  }
  const std::string msg = what + ": " + std::to_string(bad) + " elements differ, first at " + std::to_string(first);
  CHECK_MESSAGE(bad == 0, msg);
}

// Weights around [-1.6 a, 1.6 a] with every special value, the clip edges and each level's midpoint (a tie) and
// level, both signs.
std::vector<double> weight_values(const LevelSet& ls, double alpha, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-1.6 * alpha, 1.6 * alpha);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& e : v) e = d(rng);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> special = {nan, inf, -inf, -0.0, 0.0, alpha, -alpha, std::nextafter(alpha, 2 * alpha), 1e-30};
  if (!ls.rounding) {
    const auto L = ls.magnitudes.to_vector<double>();
    for (size_t k = 0; k + 1 < L.size(); ++k) {
      const float m = static_cast<float>((static_cast<float>(L[k]) + static_cast<float>(L[k + 1])) / 2);
      special.insert(special.end(), {m * alpha, -m * alpha, L[k] * alpha, -L[k] * alpha});
    }
  } else {
    for (int j = 0; j < 5; ++j) special.push_back((j + 0.5) / ls.steps * alpha);  // half steps: ties to even
  }
  for (size_t i = 0; i < special.size() && i < v.size(); ++i) v[(i * 7) % v.size()] = special[i];
  return v;
}

}  // namespace

// APoT 5-bit has 16 magnitudes (15 midpoints: the AVX2 kernel's binary search), 6-bit more than its table holds.
TEST_CASE("fused weight quantizer equals the primitive chain bit for bit on ref and cpu at every ISA level") {
  for (auto [scheme, bits] :
       {std::pair{Scheme::APoT, 4}, std::pair{Scheme::APoT, 3}, std::pair{Scheme::APoT, 2}, std::pair{Scheme::PoT, 4},
        std::pair{Scheme::Uniform, 4}, std::pair{Scheme::APoT, 5}, std::pair{Scheme::APoT, 6}}) {
    for (DType dt : {DType::f32, DType::f64}) {
      const LevelSet ls = LevelSet::make(scheme, bits, true, dt);
      const double alpha = 0.75;
      for (int64_t n : {int64_t{3 * 3 * 16 * 16}, int64_t{1000 + 7}, int64_t{5}}) {
        const std::vector<double> v = weight_values(ls, alpha, n, static_cast<uint64_t>(n) + bits);
        const Tensor w = from_vector(v, {n}).to(dt);
        const Tensor a = scalar_tensor(alpha, TensorOptions().dtype(dt));
        const Tensor lv = ls.rounding ? Tensor() : ls.magnitudes;
        const std::string base = std::string(scheme_name(scheme)) + " " + std::to_string(bits) + "-bit " +
                                 std::string(dtype_name(dt)) + " n " + std::to_string(n);
        Chain want;
        {
          BackendScope scope("ref");
          want = chain(w, a, ls);
        }
        auto fused = [&](const std::string& be) {
          Chain c{empty({n}, TensorOptions().dtype(dt)), empty({n}, TensorOptions().dtype(dt)),
                  empty({n}, TensorOptions().dtype(dt))};
          backend_by_name(be).quantize_weight_forward(c.out, c.coef, c.inside, w, a, lv, ls.steps);
          return c;
        };
        const Chain ref = fused("ref");
        check_bits(ref.out, want.out, base + ", ref: out");
        check_bits(ref.coef, want.coef, base + ", ref: coef");
        check_bits(ref.inside, want.inside, base + ", ref: inside");
        for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
          if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
          cpu::set_cpu_isa_cap(cap);
          const std::string where = base + ", cpu at " + std::string(cpu::isa_name(cap));
          Chain cpu_chain;
          {
            BackendScope scope("cpu");
            cpu_chain = chain(w, a, ls);
          }
          const Chain got = fused("cpu");
          cpu::set_cpu_isa_cap(std::nullopt);
          check_bits(got.out, want.out, where + ": out");
          check_bits(got.coef, want.coef, where + ": coef");
          check_bits(got.inside, want.inside, where + ": inside");
          check_bits(cpu_chain.out, want.out, where + ": the cpu chain's out");
          Tensor out_only = empty({n}, TensorOptions().dtype(dt)), none1, none2;
          backend_by_name("cpu").quantize_weight_forward(out_only, none1, none2, w, a, lv, ls.steps);
          check_bits(out_only, want.out, where + ": out without coef");
        }
      }
    }
  }
}

TEST_CASE("fused weight quantizer: bad arguments are clear errors") {
  const LevelSet ls = LevelSet::make(Scheme::APoT, 4, true, DType::f32);
  const Tensor w = from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3}).to(DType::f32);
  const Tensor a = scalar_tensor(1.0, TensorOptions().dtype(DType::f32));
  for (const std::string be : {"ref", "cpu"}) {
    INFO(be);
    Backend& b = backend_by_name(be);
    Tensor out = empty({3}), coef = empty({3}), inside = empty({3}), none;
    CHECK_THROWS_AS(b.quantize_weight_forward(out, coef, none, w, a, ls.magnitudes, 0.0), Error);
    Tensor bad = empty({4});
    CHECK_THROWS_AS(b.quantize_weight_forward(bad, coef, inside, w, a, ls.magnitudes, 0.0), Error);
    CHECK_THROWS_AS(b.quantize_weight_forward(out, coef, inside, w, a, Tensor(), 0.0), Error);
    const Tensor a64 = scalar_tensor(1.0, TensorOptions().dtype(DType::f64));
    CHECK_THROWS_AS(b.quantize_weight_forward(out, coef, inside, w, a64, ls.magnitudes, 0.0), Error);
  }
}

TEST_CASE("fused weight quantizer: the op's outputs and gradients equal the chain's") {
  // quantize_weight runs the fused pass on the host; its gradients (from the saved coef and mask) must equal the
  // ones the chain's saved tensors give, for the clipped (APoT-I, b >= 3) and the unclipped straight-through rule
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    for (auto [scheme, bits] : {std::pair{Scheme::APoT, 4}, std::pair{Scheme::Uniform, 3}}) {
      const LevelSet ls = LevelSet::make(scheme, bits, true, DType::f32);
      const std::vector<double> v = weight_values(ls, 0.6, 16 * 16 * 9, 3);
      std::vector<double> finite;
      for (double e : v) finite.push_back(std::isfinite(e) ? e : 0.25);
      const Tensor w0 = from_vector(finite, {16, 16, 3, 3}).to(DType::f32);
      const Tensor go = from_vector(weight_values(ls, 1.0, w0.numel(), 9), w0.sizes()).to(DType::f32);
      std::vector<double> gv = go.to_vector<double>();
      for (auto& e : gv) e = std::isfinite(e) ? e : 0.5;
      const Tensor g = from_vector(gv, w0.sizes()).to(DType::f32);
      Tensor w = w0.detach().set_requires_grad(true);
      Tensor alpha = scalar_tensor(0.6, TensorOptions().dtype(DType::f32).requires_grad());
      const Tensor y = quantize_weight(w, alpha, ls, sem, 0.5);
      minidl::sum(minidl::mul(y, g)).backward();
      // the chain's values and gradients by hand
      const Chain c = chain(w0, alpha.detach(), ls);
      check_bits(y.detach(), c.out, "out");
      const bool clip = sem == Semantics::APoT_I && bits >= 3;
      const Tensor want_gw = clip ? quant::detail::mul_raw(g, c.inside) : g;
      check_bits(w.grad(), want_gw, "gw");
      const Tensor want_ga = quant::detail::sum_as(quant::detail::mul_raw(g, c.coef), alpha.sizes(), 0.5);
      check_bits(alpha.grad(), want_ga, "galpha");
    }
  }
}
