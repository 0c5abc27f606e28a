// quantize_activation runs as one fused backend primitive each way (Backend::quantize_clip_forward /
// _backward), and pact as pact_forward + quantize_clip_backward. These tests pin it to the spec's rule on hand-made
// inputs (ties at a midpoint go to the lower level, the clip boundaries, the straight-through gradients of x and alpha)
// and to the unfused chain of primitives it replaced (x / alpha, clamp, project, * alpha, mask = x == c, coef = q - x *
// mask), bit for bit, on the ref and cpu backends, contiguous and channels-last activations, f32 and f64, both
// semantics.
#include <doctest/doctest.h>

#include <algorithm>
#include <any>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "backends/cpu/cpu_isa.h"
#include "quant/op_utils.h"
#include "quant/ops.h"
#include "tensor/allocator.h"
#include "test_scopes.h"

using namespace minidl;
using minidl::test::BackendScope;
using namespace minidl::quant;

namespace {

std::vector<std::string> cpu_backends() {
  std::vector<std::string> names;
  for (const auto& n : available_backends()) {
    if (n == "ref" || n == "cpu") names.push_back(n);
  }
  return names;
}

// The unfused forward the op used to run, primitive by primitive (spec/quant.md section 1.7).
struct Unfused {
  Tensor out, mask, coef;
};
Unfused unfused(const Tensor& X, const Tensor& alpha, const LevelSet& ls, Semantics sem) {
  using namespace minidl::quant::detail;
  const Tensor a = alpha_scalar(alpha);
  const Tensor x = div_raw(X, a);
  const double lo = sem == Semantics::APoT_I ? 0.0 : -std::numeric_limits<double>::infinity();
  const Tensor c = unary_raw(UnaryOp::Clamp, x, lo, 1.0);
  const Tensor q = project(c, ls);
  const Tensor mask = binary_raw(BinaryOp::Eq, x, c, "test");
  return {mul_raw(q, a), mask, sub_raw(q, mul_raw(x, mask))};
}

Tensor random_activation(const Shape& s, DType dt, bool channels_last, double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-0.4 * alpha, 1.4 * alpha);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (auto& e : v) e = d(rng);
  Tensor t = from_vector(v, s, TensorOptions().dtype(dt));
  if (!channels_last) return t;
  Tensor cl = empty(s, TensorOptions().dtype(dt), MemoryFormat::ChannelsLast);
  backend_for(cl).copy(cl, t);
  return cl;
}

void check_bits_equal(const Tensor& got, const Tensor& want, const char* what) {
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = (std::isnan(g[i]) && std::isnan(w[i])) || g[i] == w[i];
    if (!same && bad++ == 0) first = static_cast<int64_t>(i);
  }
  const std::string msg =
      std::string(what) + ": " + std::to_string(bad) + " elements differ, first at " + std::to_string(first);
  CHECK_MESSAGE(bad == 0, msg);
}

struct QuantCase {
  Scheme scheme;
  int bits;
};

// body(dt, cs, sem, channels_last) on every cpu backend (ref, cpu), f32 and f64, each case, both semantics and
// both layouts, with the combination named in the test's context.
template <typename Body>
void for_each_quantizer_case(std::initializer_list<QuantCase> cases, Body body) {
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (DType dt : {DType::f32, DType::f64}) {
      for (QuantCase cs : cases) {
        for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
          for (bool cl : {false, true}) {
            const std::string where = "backend " + be + " " + dtype_name(dt) + " " + scheme_name(cs.scheme) + " " +
                                      std::to_string(cs.bits) + "-bit " + semantics_name(sem) +
                                      (cl ? " channels-last" : " contiguous");
            INFO(where);
            body(dt, cs, sem, cl);
          }
        }
      }
    }
  }
}

// A quantizer's float32 operands on the current backend: the values v as a 1-D tensor and alpha as a scalar.
std::pair<Tensor, Tensor> f32_operands(const std::vector<double>& v, double alpha) {
  return {from_vector(v, {static_cast<int64_t>(v.size())}).to(DType::f32),
          scalar_tensor(alpha, TensorOptions().dtype(DType::f32))};
}

}  // namespace

TEST_CASE("fused activation quantizer: ties go low, clip boundaries, straight-through gradients by hand") {
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
      INFO("backend ", be, ", ", semantics_name(sem));
      const LevelSet ls = LevelSet::make(Scheme::APoT, 4, false, DType::f64);
      const auto L = ls.magnitudes.to_vector<double>();
      const double alpha = 2.0;  // x / 2 is exact: the inputs below land exactly on midpoints and bounds
      // v = x / alpha: below the clip, 0, the midpoints between levels 2|3 and 9|10, a level, 1 and above it
      const std::vector<double> v = {-0.3, 0.0, (L[2] + L[3]) / 2, (L[9] + L[10]) / 2, L[5], 1.0, 1.25};
      std::vector<double> xv, w;
      for (size_t i = 0; i < v.size(); ++i) {
        xv.push_back(v[i] * alpha);
        w.push_back(0.5 + 0.25 * static_cast<double>(i));  // distinct upstream gradients
      }
      Tensor x = from_vector(xv, {static_cast<int64_t>(xv.size())}, TensorOptions().dtype(DType::f64).requires_grad());
      Tensor a = scalar_tensor(alpha, TensorOptions().dtype(DType::f64).requires_grad());
      Tensor y = quantize_activation(x, a, ls, sem, 0.5);
      const bool api = sem == Semantics::APoT_I;
      const double q0 = api ? 0.0 : L[0];  // APoT-C has no lower clip, but the projection clamps to level 0
      const std::vector<double> q = {q0, 0.0, L[2], L[9], L[5], 1.0, 1.0};
      const auto got = y.to_vector<double>();
      for (size_t i = 0; i < q.size(); ++i) CHECK_MESSAGE(got[i] == q[i] * alpha, "element ", i);
      minidl::sum(minidl::mul(y, from_vector(w, {static_cast<int64_t>(w.size())}, TensorOptions().dtype(DType::f64))))
          .backward();
      // dL/dX = w * 1[lo <= v <= 1]; dL/dalpha = 0.5 * sum w * (1[v > 1] + (q - v) * mask)
      double ga = 0.0;
      const auto gx = x.grad().to_vector<double>();
      for (size_t i = 0; i < v.size(); ++i) {
        const bool inside = (api ? v[i] >= 0.0 : true) && v[i] <= 1.0;
        CHECK_MESSAGE(gx[i] == (inside ? w[i] : 0.0), "gx element ", i);
        ga += w[i] * ((v[i] > 1.0 ? 1.0 : 0.0) + (inside ? q[i] - v[i] : 0.0));
      }
      CHECK(a.grad().item<double>() == doctest::Approx(0.5 * ga).epsilon(1e-14));
    }
  }
}

TEST_CASE("fused activation quantizer equals the unfused primitive chain bit for bit") {
  for_each_quantizer_case(
      {{Scheme::APoT, 4}, {Scheme::Uniform, 4}, {Scheme::APoT, 6}}, [](DType dt, QuantCase cs, Semantics sem, bool cl) {
        const LevelSet ls = LevelSet::make(cs.scheme, cs.bits, false, dt);
        const double alpha = 1.37;
        const Tensor X = random_activation({3, 16, 19, 21}, dt, cl, alpha, 7 + cs.bits);
        const Tensor A = scalar_tensor(alpha, TensorOptions().dtype(dt));
        const Unfused want = unfused(X, A, ls, sem);
        Tensor Xg = X.detach().set_requires_grad(true);
        Tensor Ag = A.detach().set_requires_grad(true);
        Tensor y = quantize_activation(Xg, Ag, ls, sem, 0.25);
        check_bits_equal(y, want.out, "forward");
        {
          autograd::NoGradGuard ng;  // not recorded: nothing saved, same values
          check_bits_equal(quantize_activation(X, A, ls, sem), want.out, "forward without grad");
        }
        const Tensor go = random_activation(X.sizes(), dt, false, 1.0, 99);
        minidl::sum(minidl::mul(y, go)).backward();
        using namespace minidl::quant::detail;
        check_bits_equal(Xg.grad(), mul_raw(go, want.mask), "gx");
        const double ga = sum_as(mul_raw(go, want.coef), {}, 0.25).item<double>();
        CHECK(Ag.grad().item<double>() == doctest::Approx(ga).epsilon(dt == DType::f32 ? 1e-6 : 1e-13));
      });
}

TEST_CASE("cpu quantize_clip_forward equals ref with NaN, infinities, -0, ties and clip edges at every ISA level") {
  // The cpu backend picks a hand-written AVX2 kernel for float32 sets of up to 16 levels, the compiled loops
  // otherwise (more levels, float64, the uniform path, a baseline cap); each must give ref's bits.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (auto [scheme, bits] : {std::pair{Scheme::APoT, 4}, std::pair{Scheme::PoT, 3}, std::pair{Scheme::APoT, 2},
                              std::pair{Scheme::APoT, 6}, std::pair{Scheme::Uniform, 4}}) {
    const LevelSet ls = LevelSet::make(scheme, bits, false, DType::f32);
    const double alpha = 1.5;
    std::vector<double> v = {nan, inf, -inf, -0.0, 0.0, 1.0, -1.0, 1e-30, alpha, alpha * 1.0000001, 3.0};
    if (!ls.rounding) {
      const auto L = ls.magnitudes.to_vector<double>();
      for (size_t k = 0; k + 1 < L.size(); ++k) {
        const float m = static_cast<float>((static_cast<float>(L[k]) + static_cast<float>(L[k + 1])) / 2);
        v.push_back(m * alpha);  // at a midpoint (ties go low)
        v.push_back(std::nextafter(m, 2.0f) * alpha);
        v.push_back(L[k] * alpha);
      }
    }
    while (v.size() % 8 != 5) v.push_back(0.37 * static_cast<double>(v.size()));  // a partial last vector
    const int64_t n = static_cast<int64_t>(v.size());
    for (double lo : {0.0, -inf}) {
      auto run = [&](const std::string& be) {
        BackendScope scope(be);
        const auto [x, a] = f32_operands(v, alpha);
        Tensor out = empty({n}), coef = empty({n}), mask = empty({n}, TensorOptions().dtype(DType::u8));
        const Tensor lv = ls.rounding ? Tensor() : ls.magnitudes.to(DType::f32);
        backend_for(x).quantize_clip_forward(out, mask, coef, x, a, lv, ls.steps, lo, 1.0);
        return std::vector<Tensor>{out, mask.to(DType::f32), coef};
      };
      // quantize_clip_forward_coded: the codes the kernels write in the same pass, on the inputs as they are (NaN:
      // no code, both refuse) and with the non-finite ones replaced (every element has a code on APoT-I)
      auto run_coded = [&](const std::string& be, bool finite) {
        BackendScope scope(be);
        std::vector<double> w = v;
        if (finite) {
          for (auto& e : w) e = std::isfinite(e) ? e : 0.5;
        }
        const auto [x, a] = f32_operands(w, alpha);
        Tensor out = empty({n}), codes = empty({n}, TensorOptions().dtype(DType::u8));
        const Tensor lv = ls.rounding ? Tensor() : ls.magnitudes.to(DType::f32);
        const bool ok = backend_for(x).quantize_clip_forward_coded(out, codes, x, a, lv, ls.steps, lo, 1.0);
        return std::pair{ok, ok ? codes.to(DType::f32) : out};  // the codes, or the values when there are none
      };
      const auto want = run("ref");
      const auto want_coded = run_coded("ref", false), want_coded_finite = run_coded("ref", true);
      for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
        if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
        cpu::set_cpu_isa_cap(cap);
        const auto got = run("cpu");
        const auto got_coded = run_coded("cpu", false), got_coded_finite = run_coded("cpu", true);
        cpu::set_cpu_isa_cap(std::nullopt);
        const std::string where = std::string(scheme_name(scheme)) + " " + std::to_string(bits) + "-bit, lo " +
                                  std::to_string(lo) + ", isa " + cpu::isa_name(cap);
        INFO(where);
        check_bits_equal(got[0], want[0], "out");
        check_bits_equal(got[1], want[1], "mask");
        check_bits_equal(got[2], want[2], "coef");
        CHECK(got_coded.first == want_coded.first);
        if (got_coded.first == want_coded.first) check_bits_equal(got_coded.second, want_coded.second, "codes / out");
        CHECK(got_coded_finite.first == want_coded_finite.first);
        if (lo == 0.0) CHECK(got_coded_finite.first);
        if (got_coded_finite.first && want_coded_finite.first)
          check_bits_equal(got_coded_finite.second, want_coded_finite.second, "codes of finite inputs");
      }
    }
  }
}

TEST_CASE("cpu quantize_clip_forward_coded from thresholds on x: ref's codes and values at every ulp near a boundary") {
  // With AVX-512 the forward without mask / coef finds the level from thresholds on x (no division): each threshold
  // is the first float whose x / a lands above a midpoint. Sweep +-3 ulps around every midpoint * alpha, for alphas
  // whose products round both ways, on both clip ranges and at every cap: codes and values must be ref's.
  const double inf = std::numeric_limits<double>::infinity();
  for (auto [scheme, bits] : {std::pair{Scheme::APoT, 4}, std::pair{Scheme::PoT, 4}, std::pair{Scheme::APoT, 3}}) {
    const LevelSet ls = LevelSet::make(scheme, bits, false, DType::f32);
    const auto L = ls.magnitudes.to_vector<double>();
    for (double alpha : {1.5, 0.8137, 6.0, 0.0123, 3.3e4, 1.0 / 3.0}) {
      const float af = static_cast<float>(alpha);
      std::vector<double> v = {-0.0, 0.0, 1e-45, -1e-45, -inf, inf, -2.0 * alpha, alpha, 2.0 * alpha};
      for (size_t k = 0; k + 1 < L.size(); ++k) {
        const float m = static_cast<float>((static_cast<float>(L[k]) + static_cast<float>(L[k + 1])) / 2);
        for (float x : {m * af, static_cast<float>(L[k]) * af}) {
          float lo_x = x, hi_x = x;
          v.push_back(x);
          for (int u = 0; u < 3; ++u) {
            lo_x = std::nextafter(lo_x, -1.0f);
            hi_x = std::nextafter(hi_x, 2.0f * af);
            v.push_back(lo_x);
            v.push_back(hi_x);
          }
        }
      }
      while (v.size() % 16 != 7) v.push_back(0.11 * alpha * static_cast<double>(v.size() % 13));
      const int64_t n = static_cast<int64_t>(v.size());
      for (double lo : {0.0, -inf}) {
        auto run = [&](const std::string& be) {
          BackendScope scope(be);
          const auto [x, a] = f32_operands(v, alpha);
          Tensor out = empty({n}), codes = empty({n}, TensorOptions().dtype(DType::u8));
          REQUIRE(backend_for(x).quantize_clip_forward_coded(out, codes, x, a, ls.magnitudes.to(DType::f32), ls.steps,
                                                             lo, 1.0));
          return std::pair{out, codes.to(DType::f32)};
        };
        const auto want = run("ref");
        for (auto cap : {cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
          if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
          cpu::set_cpu_isa_cap(cap);
          const auto got = run("cpu");
          cpu::set_cpu_isa_cap(std::nullopt);
          INFO(scheme_name(scheme) << " " << bits << "-bit, alpha " << alpha << ", lo " << lo << ", isa "
                                   << cpu::isa_name(cap));
          check_bits_equal(got.first, want.first, "out");
          check_bits_equal(got.second, want.second, "codes");
        }
      }
    }
  }
}

TEST_CASE(
    "fused activation quantizer: the backward from the input equals the saved mask / coef path at every ISA "
    "level, with NaN, infinities, -0, ties and chunk tails") {
  // The cpu backward from the input runs, for float32 sets of up to 16 levels, one fused AVX2 or AVX-512 pass
  // (v, the level, mask and coef in registers, the alpha sum's eight lanes continued across vectors), its tail
  // through the forward loops; the compiled loops otherwise. Each must give the bits of the backward from a saved
  // mask and coef (ref's forward made them), gx and galpha alike.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const double alpha = 1.25;
  for (auto [scheme, bits] : {std::pair{Scheme::APoT, 4}, std::pair{Scheme::PoT, 3}, std::pair{Scheme::APoT, 2},
                              std::pair{Scheme::Uniform, 4}}) {
    const LevelSet ls = LevelSet::make(scheme, bits, false, DType::f32);
    // two full 4096-element sum chunks and tails of 13 (a vector and a half lane group) and 5 elements
    for (int64_t n : {int64_t{2 * 4096 + 13}, int64_t{4096 + 5}, int64_t{3}}) {
      // with non-finite inputs (galpha is then NaN: they check gx) or without (galpha finite)
      for (bool non_finite : {true, false}) {
        std::mt19937_64 rng(static_cast<uint64_t>(n) + static_cast<uint64_t>(bits));
        std::uniform_real_distribution<double> d(-0.4 * alpha, 1.4 * alpha), dg(-1.0, 1.0);
        std::vector<double> xv(static_cast<size_t>(n)), gv(static_cast<size_t>(n));
        for (auto& e : xv) e = d(rng);
        for (auto& e : gv) e = dg(rng);
        std::vector<double> special = {-0.0, 0.0, alpha, -alpha, 1e-30};
        if (non_finite) special.insert(special.end(), {nan, inf, -inf});
        if (!ls.rounding) {
          const auto L = ls.magnitudes.to_vector<double>();
          for (size_t k = 0; k + 1 < L.size(); ++k) {
            const float m = static_cast<float>((static_cast<float>(L[k]) + static_cast<float>(L[k + 1])) / 2);
            special.push_back(m * alpha);  // a tie at a midpoint (goes low)
            special.push_back(L[k] * alpha);
          }
        }
        // specials spread over vector bodies and the last elements (the tail path)
        for (size_t i = 0; i < special.size(); ++i) {
          xv[(i * 37) % xv.size()] = special[i];
          xv[xv.size() - 1 - (i % xv.size())] = special[(i + 3) % special.size()];
        }
        if (non_finite) {
          gv[1 % gv.size()] = inf;  // times a zero mask: NaN in gx, as the saved path
          gv[gv.size() - 1] = -0.0;
        }
        if (n > 64) {
          // the alpha sum's lane order: lane 0 gets elements 32, 40, 48, 56 (coef 1: x above alpha) in this order,
          // 1e30 + 0 + 1 - 1e30 = 0 in double, where any other order of them keeps the 1
          for (int64_t j : {32, 40, 48, 56}) xv[static_cast<size_t>(j)] = 2 * alpha;
          gv[32] = 1e30;
          gv[40] = 0.0;
          gv[48] = 1.0;
          gv[56] = -1e30;
        }
        const Tensor x = from_vector(xv, {n}).to(DType::f32), gy = from_vector(gv, {n}).to(DType::f32);
        const Tensor a = scalar_tensor(alpha, TensorOptions().dtype(DType::f32));
        const Tensor lv = ls.rounding ? Tensor() : ls.magnitudes.to(DType::f32);
        for (double lo : {0.0, -inf}) {
          Tensor out = empty({n}), coef = empty({n}), mask = empty({n}, TensorOptions().dtype(DType::u8));
          backend_by_name("ref").quantize_clip_forward(out, mask, coef, x, a, lv, ls.steps, lo, 1.0);
          for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
            if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
            INFO(std::string(scheme_name(scheme))
                 << " " << bits << "-bit, n " << n << ", lo " << lo << ", isa " << std::string(cpu::isa_name(cap)));
            cpu::set_cpu_isa_cap(cap);
            for (int want : {0, 1, 2}) {  // both, gx only, galpha only
              Tensor gx_s = want != 2 ? empty({n}) : Tensor(), ga_s = want != 1 ? empty({}) : Tensor();
              Tensor gx_d = want != 2 ? empty({n}) : Tensor(), ga_d = want != 1 ? empty({}) : Tensor();
              backend_by_name("cpu").quantize_clip_backward(gx_s, ga_s, gy, mask, coef, 0.5);
              backend_by_name("cpu").quantize_clip_backward_from_input(gx_d, ga_d, gy, x, a, lv, ls.steps, lo, 1.0,
                                                                       0.5);
              if (gx_d.defined()) check_bits_equal(gx_d, gx_s, "gx");
              if (ga_d.defined()) check_bits_equal(ga_d, ga_s, "galpha");
              if (ga_d.defined() && !non_finite) CHECK(std::isfinite(ga_d.item<double>()));
              // from the forward's codes (a level set: every element has one, NaN included: index 0) in place of
              // the level search: the AVX2 / AVX-512 kernels take them, the baseline declines
              Tensor out_c = empty({n}), codes = empty({n}, TensorOptions().dtype(DType::u8));
              if (lv.defined() &&
                  backend_by_name("cpu").quantize_clip_forward_coded(out_c, codes, x, a, lv, ls.steps, lo, 1.0)) {
                Tensor gx_c = want != 2 ? empty({n}) : Tensor(), ga_c = want != 1 ? empty({}) : Tensor();
                const bool took = backend_by_name("cpu").quantize_clip_backward_from_codes(gx_c, ga_c, gy, x, codes, a,
                                                                                           lv, lo, 1.0, 0.5);
                CHECK(took == (cap >= cpu::CpuIsa::Avx2));
                if (took && gx_c.defined()) check_bits_equal(gx_c, gx_s, "gx from the codes");
                if (took && ga_c.defined()) check_bits_equal(ga_c, ga_s, "galpha from the codes");
              }
              if (want == 0) {
                // gx written over gy itself (the op hands over a gradient it owns alone): the same bits, both paths
                Tensor g_in = gy.clone(), ga_in = empty({});
                backend_by_name("cpu").quantize_clip_backward_from_input(g_in, ga_in, g_in, x, a, lv, ls.steps, lo, 1.0,
                                                                         0.5);
                check_bits_equal(g_in, gx_s, "gx over gy (from the input)");
                check_bits_equal(ga_in, ga_s, "galpha with gx over gy (from the input)");
                Tensor g_sv = gy.clone(), ga_sv = empty({});
                backend_by_name("cpu").quantize_clip_backward(g_sv, ga_sv, g_sv, mask, coef, 0.5);
                check_bits_equal(g_sv, gx_s, "gx over gy (saved)");
                check_bits_equal(ga_sv, ga_s, "galpha with gx over gy (saved)");
              }
            }
            cpu::set_cpu_isa_cap(std::nullopt);
          }
        }
      }
    }
  }
}

TEST_CASE(
    "fused PACT: the backward from the input equals the saved mask / coef path at every ISA level, with "
    "NaN, infinities, -0, the clip edges and chunk tails") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const double alpha = 1.375, k = 15;
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t n : {int64_t{2 * 4096 + 13}, int64_t{3}}) {
      for (bool non_finite : {true, false}) {
        std::mt19937_64 rng(static_cast<uint64_t>(n));
        std::uniform_real_distribution<double> d(-0.5 * alpha, 1.5 * alpha), dg(-1.0, 1.0);
        std::vector<double> xv(static_cast<size_t>(n)), gv(static_cast<size_t>(n));
        for (auto& e : xv) e = d(rng);
        for (auto& e : gv) e = dg(rng);
        std::vector<double> special = {-0.0, 0.0, alpha, -alpha, 1e-30, std::nextafter(alpha, 2.0)};
        if (non_finite) special.insert(special.end(), {nan, inf, -inf});
        for (size_t i = 0; i < special.size(); ++i) {
          xv[(i * 37) % xv.size()] = special[i];
          xv[xv.size() - 1 - (i % xv.size())] = special[(i + 2) % special.size()];
        }
        if (non_finite) gv[1 % gv.size()] = inf;
        if (n > 64) {  // the lane-order probe of the test above (coef 1: x above alpha)
          for (int64_t j : {32, 40, 48, 56}) xv[static_cast<size_t>(j)] = 2 * alpha;
          gv[32] = 1e30;
          gv[40] = 0.0;
          gv[48] = 1.0;
          gv[56] = -1e30;
        }
        const Tensor x = from_vector(xv, {n}).to(dt), gy = from_vector(gv, {n}).to(dt);
        const Tensor a = scalar_tensor(alpha, TensorOptions().dtype(dt));
        Tensor out = empty({n}, TensorOptions().dtype(dt)), coef = empty({n}, TensorOptions().dtype(dt));
        Tensor mask = empty({n}, TensorOptions().dtype(DType::u8));
        backend_by_name("ref").pact_forward(out, mask, coef, x, a, k);
        // the coded forward: the same output, and codes into pact_forward_codebook (refused with a NaN output)
        auto coded = [&](const std::string& be) {
          Tensor o = empty({n}, TensorOptions().dtype(dt)), cd = empty({n}, TensorOptions().dtype(DType::u8));
          const bool ok = backend_by_name(be).pact_forward_coded(o, cd, x, a, k);
          return std::tuple{ok, o, cd.to(DType::f32)};
        };
        const auto [ok_ref, out_ref, codes_ref] = coded("ref");
        CHECK(ok_ref == std::none_of(xv.begin(), xv.end(), [](double e) { return std::isnan(e); }));
        for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
          if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
          INFO(std::string(dtype_name(dt)) << ", n " << n << ", isa " << std::string(cpu::isa_name(cap)));
          cpu::set_cpu_isa_cap(cap);
          const auto [ok_cpu, out_cpu, codes_cpu] = coded("cpu");
          CHECK(ok_cpu == ok_ref);
          check_bits_equal(out_cpu, out_ref, "coded forward's output");
          if (ok_cpu && ok_ref) check_bits_equal(codes_cpu, codes_ref, "codes");
          for (int want : {0, 1, 2}) {  // both, gx only, galpha only
            const TensorOptions o = TensorOptions().dtype(dt);
            Tensor gx_s = want != 2 ? empty({n}, o) : Tensor(), ga_s = want != 1 ? empty({}, o) : Tensor();
            Tensor gx_d = want != 2 ? empty({n}, o) : Tensor(), ga_d = want != 1 ? empty({}, o) : Tensor();
            backend_by_name("cpu").quantize_clip_backward(gx_s, ga_s, gy, mask, coef, 0.5);
            backend_by_name("cpu").pact_backward_from_input(gx_d, ga_d, gy, x, a, k, 0.5);
            if (gx_d.defined()) check_bits_equal(gx_d, gx_s, "gx");
            if (ga_d.defined()) check_bits_equal(ga_d, ga_s, "galpha");
            if (ga_d.defined() && !non_finite) CHECK(std::isfinite(ga_d.item<double>()));
            if (want == 0) {  // gx written over gy itself (as the op does with a gradient it owns alone)
              Tensor g_in = gy.clone(), ga_in = empty({}, o);
              backend_by_name("cpu").pact_backward_from_input(g_in, ga_in, g_in, x, a, k, 0.5);
              check_bits_equal(g_in, gx_s, "gx over gy");
              check_bits_equal(ga_in, ga_s, "galpha with gx over gy");
            }
          }
          cpu::set_cpu_isa_cap(std::nullopt);
        }
      }
    }
  }
}

namespace {
// Hooks that keep every saved tensor as is: the op then takes its hooked path (saves the mask and coefficient).
autograd::SavedTensorHooks keep_as_is() {
  autograd::SavedTensorHooks h;
  h.pack = [](const Tensor& t, const autograd::SaveInfo&) { return std::any(t); };
  h.unpack = [](const std::any& p) { return std::any_cast<Tensor>(p); };
  return h;
}
}  // namespace

TEST_CASE("activation quantizer: the backward derived from the saved input equals the saved mask / coef path") {
  // Without saved-tensor hooks the op saves X (which the batch norm + ReLU before it keeps anyway) and derives
  // the mask and the alpha coefficient in backward; under hooks it saves them. Both give the same bits.
  for_each_quantizer_case({{Scheme::APoT, 4}, {Scheme::Uniform, 3}, {Scheme::PoT, 4}, {Scheme::APoT, 6}},
                          [](DType dt, QuantCase cs, Semantics sem, bool cl) {
                            const LevelSet ls = LevelSet::make(cs.scheme, cs.bits, false, dt);
                            const double alpha = 0.93;
                            // 3 * 16 * 19 * 23 elements: several 4096-element sum chunks and a partial one
                            const Tensor X = random_activation({3, 16, 19, 23}, dt, cl, alpha, 11 + cs.bits);
                            const Tensor go = random_activation(X.sizes(), dt, !cl, 1.0, 5);  // the other layout
                            auto run = [&](bool hooked, Tensor& gx, Tensor& ga) {
                              std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
                              if (hooked) guard = std::make_unique<autograd::SavedTensorHooksGuard>(keep_as_is());
                              Tensor Xg = X.detach().set_requires_grad(true);
                              Tensor Ag = scalar_tensor(alpha, TensorOptions().dtype(dt).requires_grad());
                              Tensor y = quantize_activation(Xg, Ag, ls, sem, 0.25);
                              guard.reset();
                              minidl::sum(minidl::mul(y, go)).backward();
                              gx = Xg.grad();
                              ga = Ag.grad();
                              return y;
                            };
                            Tensor gx_saved, ga_saved, gx_derived, ga_derived;
                            const Tensor y_saved = run(true, gx_saved, ga_saved);
                            const Tensor y_derived = run(false, gx_derived, ga_derived);
                            check_bits_equal(y_derived, y_saved, "forward");
                            check_bits_equal(gx_derived, gx_saved, "gx");
                            check_bits_equal(ga_derived, ga_saved, "galpha");
                          });
}

TEST_CASE("activation quantizer without hooks keeps no mask or coefficient alive") {
  const LevelSet ls = LevelSet::make(Scheme::APoT, 4, false, DType::f32);
  const Tensor X = random_activation({8, 16, 32, 32}, DType::f32, false, 1.0, 3);
  Allocator& alloc = allocator_for(kCPU);
  auto held_by_graph = [&](bool hooked) {
    std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
    if (hooked) guard = std::make_unique<autograd::SavedTensorHooksGuard>(keep_as_is());
    Tensor Xg = X.detach().set_requires_grad(true);
    Tensor A = scalar_tensor(1.0, TensorOptions().requires_grad());
    const size_t before = alloc.stats().live_bytes;
    Tensor y = quantize_activation(Xg, A, ls, Semantics::APoT_I);
    return alloc.stats().live_bytes - before - y.nbytes();  // what the graph holds besides the output
  };
  const size_t derived = held_by_graph(false), saved = held_by_graph(true);
  const size_t n = static_cast<size_t>(X.numel());
  CHECK(derived < n);     // X is the caller's: nothing activation-sized is added
  CHECK(saved >= 5 * n);  // u8 mask + f32 coefficient
  CHECK(saved - derived >= 5 * n);
}

TEST_CASE("fused PACT equals the unfused primitive chain bit for bit") {
  using namespace minidl::quant::detail;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (DType dt : {DType::f32, DType::f64}) {
      for (int bits : {2, 4, 8}) {
        for (bool cl : {false, true}) {
          INFO("backend ", be, " ", std::string(dtype_name(dt)), " ", bits, "-bit",
               std::string(cl ? " channels-last" : " contiguous"));
          const double alpha = 1.37, k = static_cast<double>((1 << bits) - 1);
          const Tensor X = random_activation({3, 16, 19, 21}, dt, cl, alpha, 11 + bits);
          const Tensor A = scalar_tensor(alpha, TensorOptions().dtype(dt));
          const double a = A.item<double>();
          // the op's former chain: * k, / (alpha + 1e-6), round, clamp, * alpha, / k; masks on x
          Tensor t = div_raw(unary_raw(UnaryOp::MulScalar, X, k), scalar_like(a + 1e-6, X));
          t = unary_raw(UnaryOp::Clamp, unary_raw(UnaryOp::Round, t), 0.0, k);
          const Tensor want = div_raw(mul_raw(t, A), scalar_like(k, X));
          Tensor Xg = X.detach().set_requires_grad(true);
          Tensor Ag = A.detach().set_requires_grad(true);
          Tensor y = pact(Xg, Ag, bits);
          check_bits_equal(y, want, "forward");
          const Tensor go = random_activation(X.sizes(), dt, false, 1.0, 5);
          minidl::sum(minidl::mul(y, go)).backward();
          const Tensor inside = mul_raw(cmp_scalar(BinaryOp::Gt, X, 0.0, "t"), cmp_scalar(BinaryOp::Lt, X, a, "t"));
          check_bits_equal(Xg.grad(), mul_raw(go, inside), "gx");
          const double ga = sum_as(mul_raw(go, cmp_scalar(BinaryOp::Gt, X, a, "t")), {}, 1.0).item<double>();
          CHECK(Ag.grad().item<double>() == doctest::Approx(ga).epsilon(dt == DType::f32 ? 1e-6 : 1e-13));
        }
      }
    }
  }
}

TEST_CASE("PACT: the backward derived from the saved input equals the saved mask / coef path, and holds less") {
  // Without saved-tensor hooks on the cpu, pact saves x (which the ReLU before it keeps anyway) and makes mask and
  // coef again in backward; under hooks it saves them. Both give the same bits.
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (DType dt : {DType::f32, DType::f64}) {
      for (int bits : {2, 4, 8}) {
        for (bool cl : {false, true}) {
          INFO("backend ", be, " ", std::string(dtype_name(dt)), " ", bits, "-bit",
               std::string(cl ? " channels-last" : " contiguous"));
          const double alpha = 1.37;
          const Tensor X = random_activation({3, 16, 19, 23}, dt, cl, alpha, 3 + bits);
          const Tensor go = random_activation(X.sizes(), dt, !cl, 1.0, 6);  // the other layout
          Allocator& alloc = allocator_for(kCPU);
          auto run = [&](bool hooked, Tensor& gx, Tensor& ga, size_t& held) {
            std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
            if (hooked) guard = std::make_unique<autograd::SavedTensorHooksGuard>(keep_as_is());
            Tensor Xg = X.detach().set_requires_grad(true);
            Tensor Ag = scalar_tensor(alpha, TensorOptions().dtype(dt).requires_grad());
            const size_t before = alloc.stats().live_bytes;
            Tensor y = pact(Xg, Ag, bits);
            held = alloc.stats().live_bytes - before - y.nbytes();
            guard.reset();
            minidl::sum(minidl::mul(y, go)).backward();
            gx = Xg.grad();
            ga = Ag.grad();
            return y;
          };
          Tensor gx_saved, ga_saved, gx_derived, ga_derived;
          size_t held_saved = 0, held_derived = 0;
          const Tensor y_saved = run(true, gx_saved, ga_saved, held_saved);
          const Tensor y_derived = run(false, gx_derived, ga_derived, held_derived);
          check_bits_equal(y_derived, y_saved, "forward");
          check_bits_equal(gx_derived, gx_saved, "gx");
          check_bits_equal(ga_derived, ga_saved, "galpha");
          const auto n = static_cast<size_t>(X.numel());
          CHECK(held_derived < n);                        // X is the caller's: nothing activation-sized is added
          CHECK(held_saved >= (1 + dtype_size(dt)) * n);  // u8 mask + coefficient
        }
      }
    }
  }
}
