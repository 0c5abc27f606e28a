// The integer convolution's quantizer and epilogue kernels (backends/int_conv_x86.cpp: AVX2,
// backends/int_conv_avx512.cpp: AVX-512) against the scalar definition, byte for byte: every book size from 1 to 16
// codes (0 to 4 binary-search steps) and a 256-code book, on values at and next to every threshold, -0.0, +-inf,
// NaN, huge values; the epilogue with random sums, residuals carrying those edge values, ReLU on and off, one and two
// consumers, channel counts off the 16-lane vectors. Each level the environment's cap (MINIDL_CPU_ISA) allows is
// compared with the baseline level. Named "cpu ISA: " so scripts/isa-matrix runs it on every leg; skipped where only
// the baseline level runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "backends/int_conv.h"
#include "core/cpu_isa.h"
#include "test_scopes.h"
#include "test_skip.h"

using namespace minidl;
using backends::CodeThresholds;
using cpu::CpuIsa;
using minidl::test::CapGuard;

namespace {

// A book of `codes` entries over ascending thresholds (uneven gaps, one at 0 so that -0.0 meets it); codes with
// gaps, or 0, 1, 2, ... (identity: the AVX-512 kernels skip the book's lookup then).
CodeThresholds book_of(int codes, std::mt19937& rng, bool identity = false) {
  std::vector<float> t;
  std::vector<uint8_t> b{static_cast<uint8_t>(identity ? 0 : rng() % 4)};
  float at = 0.0f;
  for (int c = 1; c < codes; ++c) {
    t.push_back(at);
    at += 0.05f + 0.3f * static_cast<float>(rng() % 5);
    b.push_back(static_cast<uint8_t>(identity ? c : b.back() + 1 + rng() % 3));
  }
  if (!t.empty()) {
    const float mid = t[t.size() / 2];
    for (float& v : t) v -= mid;
  }
  return CodeThresholds(t, b);
}

// The values every quantizer level must agree on: each threshold and its float neighbours, signed zeros,
// infinities, NaNs, huge values, and random values around the thresholds.
std::vector<float> edge_values(const CodeThresholds& q, std::mt19937& rng) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x{0.0f,
                       -0.0f,
                       inf,
                       -inf,
                       std::numeric_limits<float>::quiet_NaN(),
                       -std::nanf("1"),
                       3e38f,
                       -3e38f,
                       std::numeric_limits<float>::denorm_min(),
                       -std::numeric_limits<float>::denorm_min()};
  for (float t : q.thresholds()) x.insert(x.end(), {t, std::nextafter(t, -inf), std::nextafter(t, inf)});
  const float lo = q.thresholds().empty() ? -1.0f : q.thresholds().front() - 1.0f;
  const float hi = q.thresholds().empty() ? 1.0f : q.thresholds().back() + 1.0f;
  std::uniform_real_distribution<float> u(lo, hi);
  for (int i = 0; i < 301; ++i) x.push_back(u(rng));  // a vector body and a tail at every level
  std::shuffle(x.begin(), x.end(), rng);
  return x;
}

// The levels the environment's cap allows, above the baseline.
std::vector<CpuIsa> fast_levels() {
  std::vector<CpuIsa> levels;
  cpu::set_cpu_isa_cap(std::nullopt);
  for (CpuIsa l : {CpuIsa::Avx2, CpuIsa::Avx512})
    if (cpu::isa_enabled(l)) levels.push_back(l);
  return levels;
}

int64_t nan_count(const std::vector<float>& x) {
  int64_t n = 0;
  for (float v : x) n += std::isnan(v) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("cpu ISA: int conv quantizer kernels give the scalar codes for every book size") {
  CapGuard guard;
  const std::vector<CpuIsa> levels = fast_levels();
  if (levels.empty()) MINIDL_SKIP("only the baseline level runs here (" << cpu::isa_name(cpu::active_isa()) << ")");
  std::mt19937 rng(5);
  std::vector<int> sizes;
  for (int c = 1; c <= 16; ++c) sizes.push_back(c);
  sizes.push_back(256);
  for (int codes : sizes)
    for (bool identity : {false, true}) {
      CAPTURE(codes);
      CAPTURE(identity);
      const CodeThresholds q = book_of(codes, rng, identity);
      const std::vector<float> x = edge_values(q, rng);
      const auto n = static_cast<int64_t>(x.size());
      cpu::set_cpu_isa_cap(CpuIsa::Baseline);
      std::vector<uint8_t> want(x.size());
      REQUIRE(backends::quantize_to_codes(q, x.data(), n, want.data()) == nan_count(x));
      for (size_t i = 0; i < x.size(); ++i) REQUIRE(want[i] == q.code(x[i]));
      for (CpuIsa level : levels) {
        INFO("level " << cpu::isa_name(level));
        cpu::set_cpu_isa_cap(level);
        for (int64_t len : {n, n - 1, int64_t{15}, int64_t{1}}) {  // full vectors and every tail shape
          CAPTURE(len);
          std::vector<uint8_t> got(x.size(), 0xee);
          CHECK(backends::quantize_to_codes(q, x.data(), len, got.data()) ==
                nan_count(std::vector<float>(x.begin(), x.begin() + len)));
          CHECK(std::memcmp(got.data(), want.data(), static_cast<size_t>(len)) == 0);
          CHECK(std::all_of(got.begin() + len, got.end(), [](uint8_t c) { return c == 0xee; }));  // nothing past n
        }
      }
    }
}

TEST_CASE("cpu ISA: int conv epilogue kernels give the scalar values and codes") {
  CapGuard guard;
  const std::vector<CpuIsa> levels = fast_levels();
  if (levels.empty()) MINIDL_SKIP("only the baseline level runs here (" << cpu::isa_name(cpu::active_isa()) << ")");
  std::mt19937 rng(9);
  const CodeThresholds q4 = book_of(16, rng), q2 = book_of(4, rng), q1 = book_of(2, rng), q8 = book_of(256, rng);
  const CodeThresholds q4i = book_of(16, rng, true), q3i = book_of(8, rng, true), q0 = book_of(1, rng);
  struct Consumers {
    const CodeThresholds* a;
    const CodeThresholds* b;
  };
  const Consumers consumer_sets[] = {{&q4, nullptr}, {&q4, &q2},      {&q1, &q4}, {&q4, &q8},
                                     {&q4i, &q3i},   {&q3i, nullptr}, {&q0, &q2}, {nullptr, nullptr}};
  for (int64_t out_c : {16, 64, 5, 37}) {
    // 13 rows: at 16 and 64 channels the AVX-512 epilogue's 128-value blocks and its 64-value tail both run
    const int64_t rows = 13, p0 = 3, total = (p0 + rows) * out_c;
    std::vector<int32_t> acc(static_cast<size_t>(rows * out_c));
    for (auto& a : acc) a = static_cast<int32_t>(rng() % 20001) - 10000;
    std::vector<float> scale(static_cast<size_t>(out_c)), shift(scale.size()), residual(static_cast<size_t>(total));
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (auto& s : scale) s = u(rng);
    for (auto& s : shift) s = u(rng);
    // residuals: random, and the edge values of the 16-code book (with unit 0 below they are the values themselves)
    const std::vector<float> edges = edge_values(q4, rng);
    for (size_t i = 0; i < residual.size(); ++i) residual[i] = i % 3 == 0 ? edges[i % edges.size()] : u(rng);
    for (double unit : {0.0123456789, 0.0})
      for (int variant = 0; variant < 4; ++variant)
        for (const Consumers& cs : consumer_sets) {
          CAPTURE(out_c);
          CAPTURE(unit);
          CAPTURE(variant);
          backends::IntConvEpilogue e;
          e.unit = unit;
          e.scale = scale.data();
          const std::vector<float> zero_shift(scale.size(), 0.0f);
          e.shift = unit == 0.0 ? zero_shift.data() : shift.data();
          e.residual = variant >= 2 || unit == 0.0 ? residual.data() : nullptr;
          e.relu = variant % 2 == 1;
          e.quant[0] = cs.a;
          e.quant[1] = cs.b;
          const bool with_out = cs.a == nullptr || variant != 0;  // variant 0: codes only, as conv1 -> conv2
          auto run = [&](std::vector<float>& out, std::vector<uint8_t>& c0, std::vector<uint8_t>& c1) {
            out.assign(static_cast<size_t>(total), -7.0f);
            c0.assign(static_cast<size_t>(total), 0xee);
            c1.assign(static_cast<size_t>(total), 0xee);
            e.out = with_out ? out.data() : nullptr;
            e.codes[0] = cs.a ? c0.data() : nullptr;
            e.codes[1] = cs.b ? c1.data() : nullptr;
            std::vector<float> scratch(static_cast<size_t>(rows * out_c));
            const backends::detail::EpiloguePlan plan(e, out_c);  // at the level set now
            return backends::detail::int_conv_epilogue(e, plan, out_c, p0, rows, acc.data(), scratch.data());
          };
          std::vector<float> out_ref, out;
          std::vector<uint8_t> c0_ref, c1_ref, c0, c1;
          cpu::set_cpu_isa_cap(CpuIsa::Baseline);
          const int64_t nan_ref = run(out_ref, c0_ref, c1_ref);
          for (CpuIsa level : levels) {
            INFO("level " << cpu::isa_name(level));
            cpu::set_cpu_isa_cap(level);
            CHECK(run(out, c0, c1) == nan_ref);
            CHECK(std::memcmp(out.data(), out_ref.data(), out.size() * sizeof(float)) == 0);
            CHECK(c0 == c0_ref);
            CHECK(c1 == c1_ref);
          }
        }
  }
}
