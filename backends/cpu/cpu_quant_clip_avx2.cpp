// The activation quantizer's AVX2 kernels (see cpu_quant_clip_avx2.h): level sets and the uniform grid, forward and
// backward from the input, built from the per-vector steps below so that the four kernels compute v, c, q, the mask
// and the coefficient in one place.
#include "backends/cpu/cpu_quant_clip_avx2.h"

#include <immintrin.h>

#include <array>
#include <cstring>

#include "backends/bisect16_avx2.h"
#include "backends/cpu/cpu_levels_avx2.h"

namespace minidl::cpu {

#define MINIDL_AVX2_ONLY __attribute__((target("avx2")))

namespace {

// Byte k of kMaskBytes[m] is bit k of m: eight u8 mask values from one movemask.
constexpr std::array<uint64_t, 256> make_mask_bytes() {
  std::array<uint64_t, 256> t{};
  for (int m = 0; m < 256; ++m) {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= static_cast<uint64_t>((m >> k) & 1) << (8 * k);
    t[static_cast<size_t>(m)] = v;
  }
  return t;
}
constexpr std::array<uint64_t, 256> kMaskBytes = make_mask_bytes();

// alpha and the clip range, broadcast: v = x / a, c = min(max(v, lo), hi) spelled as the reference's compares (NaN
// stays NaN: both are false).
struct Clip {
  __m256 av, lov, hiv;
  MINIDL_AVX2_ONLY Clip(float a, float lo, float hi)
      : av(_mm256_set1_ps(a)), lov(_mm256_set1_ps(lo)), hiv(_mm256_set1_ps(hi)) {}
  MINIDL_AVX2_ONLY void operator()(const float* x, __m256& v, __m256& c) const {
    v = _mm256_div_ps(_mm256_loadu_ps(x), av);
    const __m256 t = _mm256_blendv_ps(v, lov, _mm256_cmp_ps(v, lov, _CMP_LT_OQ));
    c = _mm256_blendv_ps(t, hiv, _mm256_cmp_ps(hiv, t, _CMP_LT_OQ));
  }
};

// The uniform grid: r = nearbyint(c * steps) (nearest, ties to even, no exception flags: the reference's
// std::nearbyint), q = r / steps.
struct Grid {
  __m256 stepsv;
  MINIDL_AVX2_ONLY explicit Grid(float steps) : stepsv(_mm256_set1_ps(steps)) {}
  MINIDL_AVX2_ONLY __m256 operator()(__m256 c, __m256& r) const {
    r = _mm256_round_ps(_mm256_mul_ps(c, stepsv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_div_ps(r, stepsv);
  }
};

// The forward's straight-through outputs of 8 elements: mask (u8) = 1[v == c], coef = q - v * mask (v * 0 as the
// reference computes it: an infinite or NaN v outside the range gives a NaN coef there).
MINIDL_AVX2_ONLY inline void store_mask_coef(uint8_t* mask, float* coef, __m256 v, __m256 c, __m256 q) {
  const __m256 inside = _mm256_cmp_ps(v, c, _CMP_EQ_OQ);
  const uint64_t bytes = kMaskBytes[static_cast<size_t>(_mm256_movemask_ps(inside))];
  std::memcpy(mask, &bytes, 8);
  _mm256_storeu_ps(coef, _mm256_sub_ps(q, _mm256_mul_ps(v, _mm256_and_ps(inside, _mm256_set1_ps(1.0f)))));
}

// Eight codes k (0..255 as int32) as bytes.
MINIDL_AVX2_ONLY inline void store_codes(uint8_t* codes, __m256i k) {
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(codes), _mm_packus_epi16(w, w));
}

// The backward of 8 elements: gx = gy * mask, and gy * coef into the alpha sum's lanes (elements 0-3 to lanes 0-3,
// 4-7 to lanes 4-7: each lane adds its elements in order).
struct SumLanes {
  __m256d lo, hi;
};
MINIDL_AVX2_ONLY inline void backward_step(float* gx, const float* gy, __m256 v, __m256 c, __m256 q, SumLanes& acc) {
  const __m256 m = _mm256_and_ps(_mm256_cmp_ps(v, c, _CMP_EQ_OQ), _mm256_set1_ps(1.0f));
  const __m256 coef = _mm256_sub_ps(q, _mm256_mul_ps(v, m));
  const __m256 g = _mm256_loadu_ps(gy);
  if (gx != nullptr) _mm256_storeu_ps(gx, _mm256_mul_ps(g, m));
  const __m256 p = _mm256_mul_ps(g, coef);
  acc.lo = _mm256_add_pd(acc.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
  acc.hi = _mm256_add_pd(acc.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
}

}  // namespace

MINIDL_AVX2_ONLY void quant_clip_levels_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                             int64_t n, float a, float lo, float hi, const float* lv, const float* mid,
                                             size_t nm) {
  const Clip clip(a, lo, hi);
  const LevelsAvx2 levels(lv, mid, nm);
  for (int64_t i = 0; i < n; i += 8) {
    __m256 v, c;
    __m256i k;
    clip(x + i, v, c);
    const __m256 q = levels(c, k);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, clip.av));
    if (codes != nullptr) store_codes(codes + i, k);
    if (mask != nullptr) store_mask_coef(mask + i, coef + i, v, c, q);
  }
}

MINIDL_AVX2_ONLY void quant_clip_levels_by_thresholds_avx2(float* out, uint8_t* codes, const float* x, int64_t n,
                                                           const float* t, const float* outs) {
  size_t nt = 0;  // the thresholds some x can reach (the rest are NaN padding)
  __m256 tv[16];
  for (; nt < 16 && t[nt] == t[nt]; ++nt) tv[nt] = _mm256_set1_ps(t[nt]);
  const __m256 o_lo = _mm256_loadu_ps(outs), o_hi = _mm256_loadu_ps(outs + 8);
  const bool bisecting = nt >= kBisectFromMidpoints && nt <= backends::Bisect16Avx2<_CMP_GE_OQ>::kMaxThresholds;
  const backends::Bisect16Avx2<_CMP_GE_OQ> bisect(t, bisecting ? static_cast<int>(nt) : 0);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    __m256i k = _mm256_setzero_si256();
    if (bisecting) {
      k = bisect(xv);
    } else {
      for (size_t j = 0; j < nt; ++j)
        k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(xv, tv[j], _CMP_GE_OQ)));
    }
    const __m256 q_lo = _mm256_permutevar8x32_ps(o_lo, k), q_hi = _mm256_permutevar8x32_ps(o_hi, k);
    _mm256_storeu_ps(out + i,
                     _mm256_blendv_ps(q_lo, q_hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(7)))));
    if (codes != nullptr) store_codes(codes + i, k);
  }
}

MINIDL_AVX2_ONLY void quant_clip_levels_backward_avx2(float* gx, double* lane, const float* gy, const float* x,
                                                      int64_t n, float a, float lo, float hi, const float* lv,
                                                      const float* mid, size_t nm) {
  const Clip clip(a, lo, hi);
  const LevelsAvx2 levels(lv, mid, nm);
  SumLanes acc{_mm256_loadu_pd(lane), _mm256_loadu_pd(lane + 4)};
  for (int64_t i = 0; i < n; i += 8) {
    __m256 v, c;
    __m256i k;
    clip(x + i, v, c);
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, levels(c, k), acc);
  }
  _mm256_storeu_pd(lane, acc.lo);
  _mm256_storeu_pd(lane + 4, acc.hi);
}

MINIDL_AVX2_ONLY void quant_clip_levels_backward_codes_avx2(float* gx, double* lane, const float* gy, const float* x,
                                                            const uint8_t* codes, int64_t n, float a, float lo,
                                                            float hi, const float* lv, size_t nm) {
  const Clip clip(a, lo, hi);
  const LevelsAvx2 levels(lv, nullptr, nm);  // the table only: the codes are the indices
  SumLanes acc{_mm256_loadu_pd(lane), _mm256_loadu_pd(lane + 4)};
  for (int64_t i = 0; i < n; i += 8) {
    __m256 v, c;
    clip(x + i, v, c);
    const __m256i k = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, levels.pick(k), acc);
  }
  _mm256_storeu_pd(lane, acc.lo);
  _mm256_storeu_pd(lane + 4, acc.hi);
}

MINIDL_AVX2_ONLY bool quant_clip_grid_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                           int64_t n, float a, float lo, float hi, float steps) {
  const Clip clip(a, lo, hi);
  const Grid grid(steps);
  const __m256 zero = _mm256_setzero_ps();
  const __m256i onei = _mm256_set1_epi32(1);
  int bad = 0;
  for (int64_t i = 0; i < n; i += 8) {
    __m256 v, c, r;
    clip(x + i, v, c);
    const __m256 q = grid(c, r);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, clip.av));
    if (codes != nullptr) {
      // grid point r (0 <= r <= steps; NaN fails both) -> 1 + r, -0 (sign set, equal to 0) -> 0
      const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(r, zero, _CMP_GE_OQ), _mm256_cmp_ps(r, grid.stepsv, _CMP_LE_OQ));
      bad |= _mm256_movemask_ps(ok) ^ 0xff;
      const __m256i positive =
          _mm256_andnot_si256(_mm256_srai_epi32(_mm256_castps_si256(r), 31), _mm256_castps_si256(ok));
      store_codes(codes + i, _mm256_and_si256(positive, _mm256_add_epi32(_mm256_cvttps_epi32(r), onei)));
    }
    if (mask != nullptr) store_mask_coef(mask + i, coef + i, v, c, q);
  }
  return bad == 0;
}

MINIDL_AVX2_ONLY void quant_clip_grid_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n,
                                                    float a, float lo, float hi, float steps) {
  const Clip clip(a, lo, hi);
  const Grid grid(steps);
  SumLanes acc{_mm256_loadu_pd(lane), _mm256_loadu_pd(lane + 4)};
  for (int64_t i = 0; i < n; i += 8) {
    __m256 v, c, r;
    clip(x + i, v, c);
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, grid(c, r), acc);
  }
  _mm256_storeu_pd(lane, acc.lo);
  _mm256_storeu_pd(lane + 4, acc.hi);
}

MINIDL_AVX2_ONLY void pact_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a) {
  const __m256 av = _mm256_set1_ps(a), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  SumLanes acc{_mm256_loadu_pd(lane), _mm256_loadu_pd(lane + 4)};
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i), g = _mm256_loadu_ps(gy + i);
    // gy * coef first, from the loaded gradient: gx may be gy
    const __m256 p = _mm256_mul_ps(g, _mm256_and_ps(_mm256_cmp_ps(xv, av, _CMP_GT_OQ), one));
    acc.lo = _mm256_add_pd(acc.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    acc.hi = _mm256_add_pd(acc.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    if (gx != nullptr) {
      const __m256 inside = _mm256_and_ps(_mm256_cmp_ps(xv, zero, _CMP_GT_OQ), _mm256_cmp_ps(xv, av, _CMP_LT_OQ));
      _mm256_storeu_ps(gx + i, _mm256_mul_ps(g, _mm256_and_ps(inside, one)));
    }
  }
  _mm256_storeu_pd(lane, acc.lo);
  _mm256_storeu_pd(lane + 4, acc.hi);
}

}  // namespace minidl::cpu
