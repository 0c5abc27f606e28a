// The per-sample pass kernels of ActNN's adaptive bits (see sample_passes.h).
#include "quant/actnn/sample_passes.h"

#include <cstring>
#include <limits>

#include "core/cpu_isa.h"

namespace minidl::quant::actnn {
namespace {

// 16 channels at a time with the block's running min / max in registers (a zmm, two ymm or four xmm, by the target
// the body is built for). The portable loop this replaced kept both per-channel arrays in memory and ran at the
// baseline target's 4 lanes: ~5 % of an L3 ResNet-20 step on Zen 4.
typedef float Float16 __attribute__((vector_size(64)));

[[gnu::always_inline]] inline void channel_min_max_impl(const float* px, int64_t pixels, int64_t ch, float* mn,
                                                        float* mx) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  int64_t k0 = 0;
  for (; k0 + 16 <= ch; k0 += 16) {
    Float16 lo = Float16{} + inf, hi = Float16{} - inf;
    for (int64_t i = 0; i < pixels; ++i) {
      Float16 v;
      std::memcpy(&v, px + i * ch + k0, sizeof v);
      lo = v < lo ? v : lo;
      hi = hi < v ? v : hi;
    }
    std::memcpy(mn + k0, &lo, sizeof lo);
    std::memcpy(mx + k0, &hi, sizeof hi);
  }
  for (; k0 < ch; ++k0) {
    float lo = inf, hi = -inf;
    for (int64_t i = 0; i < pixels; ++i) {
      const float v = px[i * ch + k0];
      lo = v < lo ? v : lo;
      hi = hi < v ? v : hi;
    }
    mn[k0] = lo;
    mx[k0] = hi;
  }
}

void channel_min_max_base(const float* px, int64_t pixels, int64_t ch, float* mn, float* mx) {
  channel_min_max_impl(px, pixels, ch, mn, mx);
}

#if defined(__x86_64__)
[[gnu::target("avx2")]] void channel_min_max_avx2(const float* px, int64_t pixels, int64_t ch, float* mn, float* mx) {
  channel_min_max_impl(px, pixels, ch, mn, mx);
}
[[gnu::target("avx512f")]] void channel_min_max_avx512(const float* px, int64_t pixels, int64_t ch, float* mn,
                                                       float* mx) {
  channel_min_max_impl(px, pixels, ch, mn, mx);
}
#endif

// 16 running sums as two vectors of 8 doubles (lane l holds sum l).
typedef double Double8 __attribute__((vector_size(64)));
typedef float Float8 __attribute__((vector_size(32)));

[[gnu::always_inline]] inline double squared_norm_impl(const float* x, int64_t n) {
  Double8 lo = {}, hi = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    Float8 a, b;
    std::memcpy(&a, x + j, sizeof a);
    std::memcpy(&b, x + j + 8, sizeof b);
    const Double8 da = __builtin_convertvector(a, Double8), db = __builtin_convertvector(b, Double8);
    lo += da * da;
    hi += db * db;
  }
  for (; j < n; ++j) lo[0] += static_cast<double>(x[j]) * x[j];
  double s = 0;
  for (int l = 0; l < 8; ++l) s += lo[l];
  for (int l = 0; l < 8; ++l) s += hi[l];
  return s;
}

double squared_norm_base(const float* x, int64_t n) { return squared_norm_impl(x, n); }

#if defined(__x86_64__)
[[gnu::target("avx2")]] double squared_norm_avx2(const float* x, int64_t n) { return squared_norm_impl(x, n); }
[[gnu::target("avx512f")]] double squared_norm_avx512(const float* x, int64_t n) { return squared_norm_impl(x, n); }
#endif

}  // namespace

SquaredNorm squared_norm_kernel() {
#if defined(__x86_64__)
  if (cpu::isa_enabled(cpu::CpuIsa::Avx512)) return squared_norm_avx512;
  if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) return squared_norm_avx2;
#endif
  return squared_norm_base;
}

ChannelMinMax channel_min_max_kernel() {
#if defined(__x86_64__)
  if (cpu::isa_enabled(cpu::CpuIsa::Avx512)) return channel_min_max_avx512;
  if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) return channel_min_max_avx2;
#endif
  return channel_min_max_base;
}

}  // namespace minidl::quant::actnn
