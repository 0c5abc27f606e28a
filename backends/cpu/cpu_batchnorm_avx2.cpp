// The channels-last batch norm's AVX2 kernels (see cpu_batchnorm_avx2.h): the AVX-512 kernels' structure at 8 lanes.
// The sums keep 8 channels' double accumulators (two registers of 4) in registers across a block of rows; the
// affine and dx passes are plain 8-lane streams. Built for "avx2" without "fma" (and with -ffp-contract=off), so no
// multiply + add is fused: the portable loops multiply and add separately.
#include "backends/cpu/cpu_batchnorm_avx2.h"

#include <immintrin.h>

#include <bit>

namespace minidl::cpu {

#define MINIDL_AVX2_ONLY __attribute__((target("avx2")))

namespace {

constexpr int64_t kLanes = 8;  // floats per ymm

// The ReLU backward mask of the portable loops (cpu_batchnorm.cpp, relu_mask): g where y > 0, else +0.
inline float relu_mask(float g, float y) {
  const uint32_t keep = 0u - static_cast<uint32_t>(y > 0.0f);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(g) & keep);
}

MINIDL_AVX2_ONLY inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
MINIDL_AVX2_ONLY inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

}  // namespace

MINIDL_AVX2_ONLY void bn_sum_rows_avx2(const float* x, int64_t r0, int64_t r1, int64_t C, double* m) {
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    __m256d s0 = _mm256_loadu_pd(m + c), s1 = _mm256_loadu_pd(m + c + 4);
    for (int64_t r = r0; r < r1; ++r) {
      const __m256 v = _mm256_loadu_ps(x + r * C + c);
      s0 = _mm256_add_pd(s0, lo_pd(v));
      s1 = _mm256_add_pd(s1, hi_pd(v));
    }
    _mm256_storeu_pd(m + c, s0);
    _mm256_storeu_pd(m + c + 4, s1);
  }
  for (; c < C; ++c)
    for (int64_t r = r0; r < r1; ++r) m[c] += static_cast<double>(x[r * C + c]);
}

MINIDL_AVX2_ONLY void bn_sqdev_rows_avx2(const float* x, int64_t r0, int64_t r1, int64_t C, const double* m,
                                         double* q) {
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    const __m256d m0 = _mm256_loadu_pd(m + c), m1 = _mm256_loadu_pd(m + c + 4);
    __m256d q0 = _mm256_loadu_pd(q + c), q1 = _mm256_loadu_pd(q + c + 4);
    for (int64_t r = r0; r < r1; ++r) {
      const __m256 v = _mm256_loadu_ps(x + r * C + c);
      const __m256d d0 = _mm256_sub_pd(lo_pd(v), m0), d1 = _mm256_sub_pd(hi_pd(v), m1);
      q0 = _mm256_add_pd(q0, _mm256_mul_pd(d0, d0));
      q1 = _mm256_add_pd(q1, _mm256_mul_pd(d1, d1));
    }
    _mm256_storeu_pd(q + c, q0);
    _mm256_storeu_pd(q + c + 4, q1);
  }
  for (; c < C; ++c) {
    for (int64_t r = r0; r < r1; ++r) {
      const double d = static_cast<double>(x[r * C + c]) - m[c];
      q[c] += d * d;
    }
  }
}

MINIDL_AVX2_ONLY void bn_affine_rows_avx2(float* y, const float* x, const float* res, int64_t r0, int64_t r1, int64_t C,
                                          const float* a, const float* b, bool relu) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    const float* rr = res ? res + r * C : nullptr;
    float* yr = y + r * C;
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes) {
      __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(a + c)), _mm256_loadu_ps(b + c));
      if (rr) v = _mm256_add_ps(v, _mm256_loadu_ps(rr + c));
      // max(v, 0) returns its second operand when v is NaN (and for -0): 0, as `v > 0 ? v : 0` does
      if (relu) v = _mm256_max_ps(v, zero);
      _mm256_storeu_ps(yr + c, v);
    }
    for (; c < C; ++c) {
      float v = xr[c] * a[c] + b[c];
      if (rr) v += rr[c];
      if (relu) v = v > 0.0f ? v : 0.0f;
      yr[c] = v;
    }
  }
}

namespace {

// The mask's three sources as a template argument (the row loops stay branch-free): 0 none, 1 y > 0, 2 x * a + b > 0.
enum MaskFrom { kNoMask = 0, kFromY = 1, kFromX = 2 };

// g where the mask holds, +0 elsewhere (an all-ones / all-zeros compare ANDed with g's bits, as relu_mask)
template <int From>
MINIDL_AVX2_ONLY inline __m256 masked(__m256 g, __m256 xv, const BnReluMask& mask, int64_t o, int64_t c) {
  const __m256 zero = _mm256_setzero_ps();
  if constexpr (From == kFromY) return _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(mask.y + o), zero, _CMP_GT_OQ));
  if constexpr (From == kFromX) {
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(xv, _mm256_loadu_ps(mask.a + c)), _mm256_loadu_ps(mask.b + c));
    return _mm256_and_ps(g, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
  }
  return g;
}

template <int From>
inline float masked(float g, float xv, const BnReluMask& mask, int64_t o, int64_t c) {
  if constexpr (From == kFromY) return relu_mask(g, mask.y[o]);
  if constexpr (From == kFromX) return relu_mask(g, xv * mask.a[c] + mask.b[c]);
  return g;
}

int mask_from(const BnReluMask& mask) { return mask.y ? kFromY : mask.a ? kFromX : kNoMask; }

template <int From>
MINIDL_AVX2_ONLY void sums_rows(const float* x, const float* gy, const BnReluMask& mask, float* mask_out, int64_t r0,
                                int64_t r1, int64_t C, const double* m, double* acc, double* acc2) {
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    const __m256d m0 = _mm256_loadu_pd(m + c), m1 = _mm256_loadu_pd(m + c + 4);
    __m256d s0 = _mm256_loadu_pd(acc + c), s1 = _mm256_loadu_pd(acc + c + 4);
    __m256d t0 = _mm256_loadu_pd(acc2 + c), t1 = _mm256_loadu_pd(acc2 + c + 4);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r * C + c;
      const __m256 xv = _mm256_loadu_ps(x + o);
      const __m256 g = masked<From>(_mm256_loadu_ps(gy + o), xv, mask, o, c);
      if (mask_out) _mm256_storeu_ps(mask_out + o, g);
      const __m256d g0 = lo_pd(g), g1 = hi_pd(g);
      s0 = _mm256_add_pd(s0, g0);
      s1 = _mm256_add_pd(s1, g1);
      t0 = _mm256_add_pd(t0, _mm256_mul_pd(g0, _mm256_sub_pd(lo_pd(xv), m0)));
      t1 = _mm256_add_pd(t1, _mm256_mul_pd(g1, _mm256_sub_pd(hi_pd(xv), m1)));
    }
    _mm256_storeu_pd(acc + c, s0);
    _mm256_storeu_pd(acc + c + 4, s1);
    _mm256_storeu_pd(acc2 + c, t0);
    _mm256_storeu_pd(acc2 + c + 4, t1);
  }
  for (; c < C; ++c) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r * C + c;
      const float g = masked<From>(gy[o], x[o], mask, o, c);
      if (mask_out) mask_out[o] = g;
      const double gv = static_cast<double>(g);
      acc[c] += gv;
      acc2[c] += gv * (static_cast<double>(x[o]) - m[c]);
    }
  }
}

template <int From>
MINIDL_AVX2_ONLY void dx_rows(float* gx, const float* gy, const BnReluMask& mask, const float* x, int64_t r0,
                              int64_t r1, int64_t C, const float* a, const float* b, const float* d, const float* mu) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t row = r * C;
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes) {
      const int64_t o = row + c;
      const __m256 xv = _mm256_loadu_ps(x + o);
      const __m256 g = masked<From>(_mm256_loadu_ps(gy + o), xv, mask, o, c);
      const __m256 t1 = _mm256_mul_ps(_mm256_loadu_ps(a + c), g);
      const __m256 t2 = _mm256_mul_ps(_mm256_loadu_ps(b + c), _mm256_sub_ps(xv, _mm256_loadu_ps(mu + c)));
      _mm256_storeu_ps(gx + o, _mm256_add_ps(_mm256_add_ps(t1, t2), _mm256_loadu_ps(d + c)));
    }
    for (; c < C; ++c) {
      const int64_t o = row + c;
      const float g = masked<From>(gy[o], x[o], mask, o, c);
      gx[o] = a[c] * g + b[c] * (x[o] - mu[c]) + d[c];
    }
  }
}

}  // namespace

MINIDL_AVX2_ONLY void bn_bwd_sums_rows_avx2(const float* x, const float* gy, const BnReluMask& mask, float* mask_out,
                                            int64_t r0, int64_t r1, int64_t C, const double* m, double* acc,
                                            double* acc2) {
  switch (mask_from(mask)) {
    case kFromY: return sums_rows<kFromY>(x, gy, mask, mask_out, r0, r1, C, m, acc, acc2);
    case kFromX: return sums_rows<kFromX>(x, gy, mask, mask_out, r0, r1, C, m, acc, acc2);
    default: return sums_rows<kNoMask>(x, gy, mask, mask_out, r0, r1, C, m, acc, acc2);
  }
}

MINIDL_AVX2_ONLY void bn_bwd_dx_rows_avx2(float* gx, const float* gy, const BnReluMask& mask, const float* x,
                                          int64_t r0, int64_t r1, int64_t C, const float* a, const float* b,
                                          const float* d, const float* mu) {
  switch (mask_from(mask)) {
    case kFromY: return dx_rows<kFromY>(gx, gy, mask, x, r0, r1, C, a, b, d, mu);
    case kFromX: return dx_rows<kFromX>(gx, gy, mask, x, r0, r1, C, a, b, d, mu);
    default: return dx_rows<kNoMask>(gx, gy, mask, x, r0, r1, C, a, b, d, mu);
  }
}

}  // namespace minidl::cpu
