// The per-sample pass kernels of ActNN's adaptive bits (see sample_passes.h).
#include "quant/actnn/sample_passes.h"

#include <cstring>
#include <limits>

#include "core/cpu_isa.h"

namespace minidl::quant::actnn {
namespace {

// Native vectors of N floats / doubles (GCC ignores vector_size on a type that depends on a template parameter, so
// each width is spelt out).
template <int N>
struct Vec;
template <>
struct Vec<2> {
  typedef float F __attribute__((vector_size(8)));
  typedef double D __attribute__((vector_size(16)));
};
template <>
struct Vec<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef double D __attribute__((vector_size(32)));
};
template <>
struct Vec<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef double D __attribute__((vector_size(64)));
};
template <>
struct Vec<16> {
  typedef float F __attribute__((vector_size(64)));
};

// 16 channels at a time with the block's running min / max in registers: R = 16 / W native vectors of W floats
// each (W = 4 on the baseline's SSE, 8 on AVX2, 16 on AVX-512). Arrays of native-width vectors, not one 64-byte
// vector type: GCC 12 does not split a 64-byte type into two ymm or four xmm registers but goes through the stack
// element by element (objdump of that AVX2 build: a vminss, a load and a store per channel and pixel), which made
// the AVX2 kernel 23 % of an L3 ResNet-20 step on a Zen 3 host. The portable loop before that kept both per-channel
// arrays in memory at the baseline's 4 lanes: ~5 % of an L3 step on Zen 4.
template <int W>
[[gnu::always_inline]] inline void channel_min_max_impl(const float* px, int64_t pixels, int64_t ch, float* mn,
                                                        float* mx) {
  using V = typename Vec<W>::F;
  constexpr int R = 16 / W;
  constexpr float inf = std::numeric_limits<float>::infinity();
  int64_t k0 = 0;
  for (; k0 + 16 <= ch; k0 += 16) {
    V lo[R], hi[R];
    for (int r = 0; r < R; ++r) {
      lo[r] = V{} + inf;
      hi[r] = V{} - inf;
    }
    for (int64_t i = 0; i < pixels; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        V v;
        std::memcpy(&v, px + i * ch + k0 + r * W, sizeof v);
        lo[r] = v < lo[r] ? v : lo[r];
        hi[r] = hi[r] < v ? v : hi[r];
      }
    }
    for (int r = 0; r < R; ++r) {
      std::memcpy(mn + k0 + r * W, &lo[r], sizeof(V));
      std::memcpy(mx + k0 + r * W, &hi[r], sizeof(V));
    }
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
  channel_min_max_impl<4>(px, pixels, ch, mn, mx);
}

#if defined(__x86_64__)
[[gnu::target("avx2")]] void channel_min_max_avx2(const float* px, int64_t pixels, int64_t ch, float* mn, float* mx) {
  channel_min_max_impl<8>(px, pixels, ch, mn, mx);
}
[[gnu::target("avx512f")]] void channel_min_max_avx512(const float* px, int64_t pixels, int64_t ch, float* mn,
                                                       float* mx) {
  channel_min_max_impl<16>(px, pixels, ch, mn, mx);
}
#endif

// 16 running sums as R = 16 / W native vectors of W doubles (sum l in lane l % W of vector l / W), for the reason
// above: the two 64-byte vectors this replaced went through the stack in the AVX2 build.
template <int W>
[[gnu::always_inline]] inline double squared_norm_impl(const float* x, int64_t n) {
  using D = typename Vec<W>::D;
  using F = typename Vec<W>::F;
  constexpr int R = 16 / W;
  D sums[R];
  for (int r = 0; r < R; ++r) sums[r] = D{};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      F a;
      std::memcpy(&a, x + j + r * W, sizeof a);
      const D d = __builtin_convertvector(a, D);
      sums[r] += d * d;
    }
  }
  for (; j < n; ++j) sums[0][0] += static_cast<double>(x[j]) * x[j];
  double s = 0;
  for (int r = 0; r < R; ++r)
    for (int l = 0; l < W; ++l) s += sums[r][l];
  return s;
}

double squared_norm_base(const float* x, int64_t n) { return squared_norm_impl<2>(x, n); }

#if defined(__x86_64__)
[[gnu::target("avx2")]] double squared_norm_avx2(const float* x, int64_t n) { return squared_norm_impl<4>(x, n); }
[[gnu::target("avx512f")]] double squared_norm_avx512(const float* x, int64_t n) { return squared_norm_impl<8>(x, n); }
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
