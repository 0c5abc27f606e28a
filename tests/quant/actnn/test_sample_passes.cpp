// ActNN's per-sample pass kernels (quant/actnn/sample_passes.h) at every ISA level the environment allows
// against the scalar definition, bit for bit: channel counts below, at and across the 16-channel blocks, empty and
// single-pixel runs, NaN (never wins, also in the first pixel), infinities, zeros of both signs. Named "cpu ISA: "
// so scripts/isa-matrix runs it on every leg.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "core/cpu_isa.h"
#include "quant/actnn/sample_passes.h"
#include "test_scopes.h"

using namespace minidl;
using minidl::quant::actnn::channel_min_max_kernel;
using minidl::quant::actnn::squared_norm_kernel;

namespace {

// The definition: per channel, over the pixels in order, v < m ? v : m (and m < v ? v : m).
void reference(const std::vector<float>& px, int64_t pixels, int64_t ch, std::vector<float>& mn,
               std::vector<float>& mx) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  mn.assign(static_cast<size_t>(ch), inf);
  mx.assign(static_cast<size_t>(ch), -inf);
  for (int64_t i = 0; i < pixels; ++i)
    for (int64_t k = 0; k < ch; ++k) {
      const float v = px[static_cast<size_t>(i * ch + k)];
      float& lo = mn[static_cast<size_t>(k)];
      float& hi = mx[static_cast<size_t>(k)];
      lo = v < lo ? v : lo;
      hi = hi < v ? v : hi;
    }
}

// The baseline and each level above it that the environment's cap (MINIDL_CPU_ISA) allows on this host.
std::vector<cpu::CpuIsa> allowed_levels() {
  std::vector<cpu::CpuIsa> levels{cpu::CpuIsa::Baseline};
  cpu::set_cpu_isa_cap(std::nullopt);
  for (cpu::CpuIsa l : {cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512})
    if (cpu::isa_enabled(l)) levels.push_back(l);
  return levels;
}

}  // namespace

TEST_CASE("cpu ISA: actnn channel ranges give the scalar min / max at every level") {
  test::CapGuard guard;
  const std::vector<cpu::CpuIsa> levels = allowed_levels();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t ch : {1, 3, 15, 16, 17, 32, 33, 64})
    for (int64_t pixels : {0, 1, 7, 256}) {
      CAPTURE(ch);
      CAPTURE(pixels);
      std::vector<float> px(static_cast<size_t>(pixels * ch));
      for (float& v : px) {
        const auto pick = rng() % 40;
        v = pick == 0 ? nan : pick == 1 ? inf : pick == 2 ? -inf : pick == 3 ? 0.0f : pick == 4 ? -0.0f : normal(rng);
      }
      if (pixels > 0) px[0] = nan;  // a NaN first: it must not seed the channel's range
      if (pixels > 1 && ch > 5) {   // a channel that is all NaN, one of zeros of both signs
        for (int64_t i = 0; i < pixels; ++i) px[static_cast<size_t>(i * ch + 5)] = nan;
        for (int64_t i = 0; i < pixels; ++i) px[static_cast<size_t>(i * ch + 4)] = i % 2 ? 0.0f : -0.0f;
      }
      std::vector<float> want_mn, want_mx;
      reference(px, pixels, ch, want_mn, want_mx);
      for (cpu::CpuIsa level : levels) {
        INFO("level " << cpu::isa_name(level));
        cpu::set_cpu_isa_cap(level);
        std::vector<float> mn(static_cast<size_t>(ch) + 1, 7.0f), mx(mn.size(), 7.0f);
        channel_min_max_kernel()(px.data(), pixels, ch, mn.data(), mx.data());
        CHECK(std::memcmp(mn.data(), want_mn.data(), static_cast<size_t>(ch) * sizeof(float)) == 0);
        CHECK(std::memcmp(mx.data(), want_mx.data(), static_cast<size_t>(ch) * sizeof(float)) == 0);
        CHECK(mn.back() == 7.0f);  // nothing past ch
        CHECK(mx.back() == 7.0f);
      }
    }
}

TEST_CASE("cpu ISA: actnn squared norms give the 16-sum definition's bits at every level") {
  test::CapGuard guard;
  const std::vector<cpu::CpuIsa> levels = allowed_levels();
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n : {0, 1, 15, 16, 17, 33, 1000}) {
    CAPTURE(n);
    std::vector<float> x(static_cast<size_t>(n));
    // magnitudes from 1e-20 to 1e18: sums whose order matters in the last bits of a double
    for (float& v : x) v = normal(rng) * std::pow(10.0f, static_cast<float>(static_cast<int>(rng() % 39) - 20));
    double sums[16] = {};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
      for (int l = 0; l < 16; ++l)
        sums[l] += static_cast<double>(x[static_cast<size_t>(j + l)]) * x[static_cast<size_t>(j + l)];
    for (; j < n; ++j) sums[0] += static_cast<double>(x[static_cast<size_t>(j)]) * x[static_cast<size_t>(j)];
    double want = 0;
    for (double s : sums) want += s;
    for (cpu::CpuIsa level : levels) {
      INFO("level " << cpu::isa_name(level));
      cpu::set_cpu_isa_cap(level);
      const double got = squared_norm_kernel()(x.data(), n);
      CHECK(std::memcmp(&got, &want, sizeof got) == 0);
    }
  }
}
