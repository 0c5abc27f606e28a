// ActNN bit allocation (spec/quant.md 2.4-2.7): the greedy solver against the section-6 vectors B4/B5 and a
// brute-force optimum, its tie rule and the reference's all-zero first iteration, minidl's uniform fallback,
// the per-sample and per-layer allocations, the sensitivity model (B3) and the gradient scale.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>

#include "core/error.h"
#include "quant/actnn/bit_allocation.h"
#include "quant/actnn/sensitivity.h"

using namespace minidl;
using namespace minidl::quant::actnn;
using Bits = std::vector<int>;

TEST_CASE("greedy solver: the section-6 B4 vectors (unit weights, start 8)") {
  auto run = [](std::vector<float> C, double T) { return greedy_bits(Bits(C.size(), 8), C, T); };
  CHECK(run({100, 1}, 4) == Bits{3, 1});
  CHECK(predicted_variance({3, 1}, {100, 1}) == doctest::Approx(3.0408).epsilon(1e-4));
  CHECK(predicted_variance({2, 2}, {100, 1}) == doctest::Approx(11.2222).epsilon(1e-4));
  CHECK(run({1, 100}, 4) == Bits{1, 3});
  CHECK(run({100, 1, 1, 1}, 8) == Bits{4, 2, 1, 1});
  CHECK(run({16, 4, 1, 0.25f}, 8) == Bits{3, 2, 2, 1});
  CHECK(predicted_variance({3, 2, 2, 1}, {16, 4, 1, 0.25f}) == doctest::Approx(1.1321).epsilon(1e-4));
  CHECK(predicted_variance({2, 2, 2, 2}, {16, 4, 1, 0.25f}) == doctest::Approx(2.3611).epsilon(1e-4));
  CHECK(run({1, 1}, 4) == Bits{2, 2});
  CHECK(run({1, 1, 1, 1}, 8) == Bits{2, 2, 2, 2});
  CHECK(greedy_bits({4, 4}, {1, 9}, 4) == Bits{2, 2});
  // B4.8: a start that already meets the budget comes back unchanged (ibits == cabits: no adaptivity).
  CHECK(greedy_bits({2, 2, 2}, {5, 0, 1}, 6) == Bits{2, 2, 2});
  CHECK(greedy_bits({3, 1, 2}, {5, 0, 1}, 7) == Bits{3, 1, 2});
}

TEST_CASE("greedy solver: the all-zero first iteration strips the highest indices first (reference, B4.7)") {
  CHECK(greedy_bits(Bits(4, 8), {0, 0, 0, 0}, 8) == Bits{5, 1, 1, 1});
  CHECK(greedy_bits(Bits(3, 8), {0, 0, 0}, 6) == Bits{4, 1, 1});
  // Equal non-zero keys follow the same rule: the larger index loses the bit.
  CHECK(greedy_bits({2, 2}, {1, 1}, 3) == Bits{2, 1});
}

TEST_CASE("greedy solver: weighted allocation undershoots as the reference does (B5)") {
  CHECK(greedy_bits({8, 8}, {30, 1}, {100, 300}, 800) == Bits{4, 1});  // stores 700 <= 800
  CHECK(greedy_bits({8, 8}, {300, 1}, {100, 300}, 800) == Bits{5, 1});
}

TEST_CASE("greedy solver: unit weights reach the brute-force optimum on random instances") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> c(0.0f, 100.0f);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + trial % 4, ibits = 1 + trial % 8;
    std::vector<float> C(static_cast<size_t>(n));
    for (float& v : C) v = c(rng);
    const int T = n + static_cast<int>(rng() % static_cast<unsigned>(n * ibits));
    const Bits got = greedy_bits(Bits(C.size(), ibits), C, T);
    // Best objective over every b in {1..ibits}^n with sum b <= T.
    double best = INFINITY;
    Bits b(C.size(), 1);
    std::function<void(size_t, int)> rec = [&](size_t i, int used) {
      if (i == b.size()) {
        if (used <= T) best = std::min(best, predicted_variance(b, C));
        return;
      }
      for (int v = 1; v <= ibits; ++v) {
        b[i] = v;
        rec(i + 1, used + v);
      }
    };
    rec(0, 0);
    int used = 0;
    for (int v : got) used += v;
    INFO("trial " << trial);
    CHECK(used <= T);
    CHECK(predicted_variance(got, C) <= best * (1 + 1e-5) + 1e-12);
  }
}

TEST_CASE("greedy solver: the unit-weight selection makes the heap's removals, ties and zeros included") {
  // Unit weights take a linear-time selection; weights of 2 with twice the budget take the reference's heap on
  // keys halved exactly (same order, same ties). Both must give the same bits: sensitivities spread over six
  // decades, repeated values (ties broken by index), zeros, starts of 1..8 bits, budgets from 1 bit per item up.
  std::mt19937 rng(21);
  for (int trial = 0; trial < 400; ++trial) {
    CAPTURE(trial);
    const size_t n = 1 + rng() % 40;
    Bits start(n);
    std::vector<float> C(n);
    for (size_t i = 0; i < n; ++i) {
      start[i] = 1 + static_cast<int>(rng() % 8);
      const auto pick = rng() % 6;
      C[i] = pick == 0 ? 0.0f : pick == 1 ? 1.5f : std::pow(10.0f, static_cast<float>(rng() % 600) / 100.0f - 3.0f);
    }
    int64_t total = 0;
    for (int b : start) total += b;
    const double target = static_cast<double>(n) + static_cast<double>(rng() % (total - static_cast<int64_t>(n) + 1)) +
                          (rng() % 2 != 0 ? 0.5 : 0.0);
    CAPTURE(target);
    const Bits selected = greedy_bits(start, C, target);
    const Bits heap = greedy_bits(start, C, std::vector<int64_t>(n, 2), 2 * target);
    CHECK(selected == heap);
    int64_t left = 0;
    for (int b : selected) left += b;
    CHECK(static_cast<double>(left) <= target);
  }
}

TEST_CASE("greedy solver: bad input is a clear error") {
  CHECK_THROWS_WITH_AS(greedy_bits({8, 8}, {1}, 4), doctest::Contains("expected the same count"), Error);
  CHECK_THROWS_WITH_AS(greedy_bits({8, 8}, {1, -1}, 4), doctest::Contains("sensitivity -1"), Error);
  CHECK_THROWS_WITH_AS(greedy_bits({8, 8}, {1, NAN}, 4), doctest::Contains("finite"), Error);
  CHECK_THROWS_WITH_AS(greedy_bits({8, 0}, {1, 1}, 4), doctest::Contains("start bits 0"), Error);
  CHECK_THROWS_WITH_AS(greedy_bits({8, 8}, {1, 1}, {1, 0}, 4), doctest::Contains("weight 0"), Error);
  CHECK_THROWS_WITH_AS(greedy_bits({8, 8}, {1, 1}, 1), doctest::Contains("below 1 bit per element"), Error);
}

TEST_CASE("allocate_bits: uniform bits when every sensitivity is 0, the greedy otherwise") {
  const std::vector<int64_t> w1(4, 1);
  CHECK(allocate_bits(Bits(4, 8), {0, 0, 0, 0}, w1, 8) == Bits{2, 2, 2, 2});
  CHECK(allocate_bits(Bits(4, 8), {0, 0, 0, 0}, w1, 10) == Bits{3, 3, 2, 2});  // remainder to the lowest indices
  CHECK(allocate_bits(Bits(4, 2), {0, 0, 0, 0}, w1, 12) == Bits{2, 2, 2, 2});  // never above the start
  CHECK(allocate_bits({8, 8}, {0, 0}, {100, 300}, 800) == Bits{2, 2});
  CHECK(allocate_bits(Bits(4, 8), {100, 1, 1, 1}, w1, 8) == Bits{4, 2, 1, 1});  // one C > 0: the greedy
}

TEST_CASE("per-sample allocation inside a layer (2.5)") {
  // Budget floor(bits * N): 2.5 bits x 4 samples = 10 bits.
  const Bits b = per_sample_bits({16, 4, 1, 0.25f}, 2.5, 8);
  int sum = 0;
  for (int v : b) sum += v;
  CHECK(sum == 10);
  CHECK(b == greedy_bits(Bits(4, 8), {16, 4, 1, 0.25f}, 10));
  CHECK(b[0] >= b[1]);
  CHECK(b[1] >= b[3]);
  CHECK(per_sample_bits({16, 4, 1, 0.25f}, 2, 8) == Bits{3, 2, 2, 1});
  CHECK(per_sample_bits({16, 4, 1, 0.25f}, 2, 2) == Bits{2, 2, 2, 2});  // ibits == bits: no adaptivity
  CHECK(per_sample_bits({0, 0, 0, 0}, 2, 8) == Bits{2, 2, 2, 2});       // first iteration: uniform
  CHECK(per_sample_bits({1, 2, 3}, 2.4, 8).size() == 3);
  CHECK_THROWS_WITH_AS(per_sample_bits({}, 2, 8), doctest::Contains("no samples"), Error);
}

TEST_CASE("per-layer allocation across layers (2.6)") {
  SUBCASE("ibits == group bits: one greedy over layers from 8 bits; integer bits become the new ibits") {
    const PerLayerBits r = allocate_per_layer({{{30}, 100}, {{1}, 300}}, 2, 2);  // B5 through the layer API
    CHECK(r.bits == std::vector<double>{4, 1});
    CHECK(r.initial_bits == Bits{4, 1});
    // C_l is the sum over the layer's samples.
    const PerLayerBits s = allocate_per_layer({{{10, 20}, 100}, {{0.5f, 0.5f}, 300}}, 2, 2);
    CHECK(s.bits == std::vector<double>{4, 1});
    // First iteration: every layer gets the group's bits.
    const PerLayerBits z = allocate_per_layer({{{0}, 100}, {{0}, 300}}, 2, 2);
    CHECK(z.bits == std::vector<double>{2, 2});
  }
  SUBCASE("ibits > group bits: one greedy over (layer, sample) pairs; bits_l is the mean (a float)") {
    const std::vector<LayerSensitivity> layers = {{{40, 10}, 100}, {{1, 0.5f}, 200}, {{2, 2}, 100}};
    const PerLayerBits r = allocate_per_layer(layers, 2, 8);
    CHECK(r.initial_bits == Bits{8, 8, 8});
    // The pairs' greedy, by hand: the same call on the flattened problem.
    const Bits pairs = greedy_bits(Bits(6, 8), {40, 10, 1, 0.5f, 2, 2}, {100, 100, 200, 200, 100, 100}, 400.0 * 2 * 2);
    CHECK(r.bits[0] == doctest::Approx((pairs[0] + pairs[1]) / 2.0));
    CHECK(r.bits[1] == doctest::Approx((pairs[2] + pairs[3]) / 2.0));
    CHECK(r.bits[2] == doctest::Approx((pairs[4] + pairs[5]) / 2.0));
    // The budget: stored code bits <= group bits x elements.
    CHECK(r.bits[0] * 100 + r.bits[1] * 200 + r.bits[2] * 100 <= 2.0 * 400 + 1e-9);
    CHECK(r.bits[0] > r.bits[1]);  // the sensitive layer keeps more bits
    CHECK_THROWS_WITH_AS(allocate_per_layer({{{1, 2}, 10}, {{1}, 10}}, 2, 8), doctest::Contains("samples"), Error);
  }
  CHECK_THROWS_WITH_AS(allocate_per_layer({}, 2, 8), doctest::Contains("no layers"), Error);
  CHECK_THROWS_WITH_AS(allocate_per_layer({{{}, 10}}, 2, 8), doctest::Contains("no sensitivities"), Error);
}

TEST_CASE("sensitivity model: the section-6 B3 vector") {
  // x of shape [2, 3, 10, 10], G = 256: F = 300 -> F' = 512, 2 groups per sample, P = 100.
  const float mn[] = {-1.0f, 0.0f, -2.0f, 0.5f}, mx[] = {1.0f, 0.5f, 2.0f, 1.5f};
  const std::vector<float> r2 = range_sqr(mn, mx, 2, 2, 256, 100);
  CHECK(r2[0] == doctest::Approx(2.56 * (4.0 + 0.25)));
  CHECK(r2[1] == doctest::Approx(2.56 * (16.0 + 1.0)));
  // conv 3x3, groups 1, S = 1: C_n = 2.25 R^2_n
  const std::vector<float> C = conv_sensitivity(r2, {1.0f}, 9, 1);
  CHECK(C[0] == doctest::Approx(2.25 * r2[0]));
  CHECK(C[1] == doctest::Approx(2.25 * r2[1]));
  // Per-sample S, depthwise correction, linear (K = 1), BN (R^2 only).
  const std::vector<float> Cs = conv_sensitivity(r2, {2.0f, 0.5f}, 9, 3);
  CHECK(Cs[0] == doctest::Approx(9.0 / 4 / 3 * r2[0] * 2));
  CHECK(Cs[1] == doctest::Approx(9.0 / 4 / 3 * r2[1] * 0.5));
  CHECK(conv_sensitivity(r2, {1.0f}, 1, 1)[0] == doctest::Approx(r2[0] / 4));
  CHECK(bn_sensitivity(r2) == r2);
  CHECK_THROWS_WITH_AS(conv_sensitivity(r2, {1, 2, 3}, 9, 1), doctest::Contains("3 gradient scales for 2"), Error);
}

TEST_CASE("gradient scale: one running scalar, or per dataset sample with --usegradient") {
  GradientScale layer;
  CHECK(layer.get({}) == std::vector<float>{0.0f});  // 0 before the first backward: all C are 0
  CHECK(!layer.seen());
  layer.update({1, 3}, {});
  CHECK(layer.get({}) == std::vector<float>{2.0f});
  layer.update({10, 30}, {});
  CHECK(layer.get({}) == std::vector<float>{20.0f});  // overwritten, not averaged
  CHECK(layer.seen());

  GradientScale per(true, 6);
  per.update({4, 8}, {1, 3});
  per.update({12}, {3});
  const std::vector<float> s = per.get({1, 3, 5});
  CHECK(s[0] == doctest::Approx(2.0));                           // 0.5 * 0 + 0.5 * 4
  CHECK(s[1] == doctest::Approx(8.0));                           // 0.5 * (0.5 * 0 + 0.5 * 8) + 0.5 * 12
  CHECK(s[2] == doctest::Approx((2.0 + 8.0 + 0.0) / 3 + 1e-9));  // never seen: the batch mean + 1e-9
  CHECK_THROWS_WITH_AS(per.update({1}, {}), doctest::Contains("sample indices"), Error);
  CHECK_THROWS_WITH_AS(per.get({6}), doctest::Contains("outside the dataset of 6"), Error);
  CHECK_THROWS_WITH_AS(GradientScale(true, 0), doctest::Contains("dataset size"), Error);
}
