// The activation quantizer's AVX-512 levels kernels (see cpu_quant_clip_avx512.h).
#include "backends/cpu/cpu_quant_clip_avx512.h"

#include <immintrin.h>

#include <limits>

#include "backends/cpu/cpu_quant_clip_avx2.h"

// GCC 12 reports the "undefined" pass-through operands of its AVX-512 intrinsics as maybe-uninitialized once they
// are inlined: a known false positive of its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace minidl::cpu {

#define MINIDL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace {

// The per-call constants: levels and midpoints as 16-entry tables, alpha and the clip range broadcast.
struct LevelsConsts {
  __m512 lvv, midv, av, lov, hiv;
};

MINIDL_AVX512 inline LevelsConsts levels_consts(float a, float lo, float hi, const float* lv, const float* mid,
                                                size_t nm) {
  // levels padded to 16 (unused entries are never selected: the count is at most nm); midpoints padded with +inf,
  // which no clipped value exceeds, so the search below never counts them
  alignas(64) float table[16] = {};
  alignas(64) float mids[16];
  for (size_t k = 0; k <= nm; ++k) table[k] = lv[k];
  for (size_t j = 0; j < 16; ++j) mids[j] = j < nm ? mid[j] : std::numeric_limits<float>::infinity();
  return {_mm512_load_ps(table), _mm512_load_ps(mids), _mm512_set1_ps(a), _mm512_set1_ps(lo), _mm512_set1_ps(hi)};
}

// k = the number of midpoints m with m < c, found by a four-step binary search over the 16-entry table: the
// midpoints ascend, so "m < c" holds for a prefix of them and the search lands on its length, the count the
// reference's binary search (and the AVX2 kernel's full count) gives. NaN c compares false everywhere: k = 0.
MINIDL_AVX512 inline __m512i level_index(__m512 c, __m512 midv) {
  __m512i k = _mm512_setzero_si512();
  for (int step = 8; step >= 1; step /= 2) {
    const __m512i probe = _mm512_add_epi32(k, _mm512_set1_epi32(step - 1));
    const __mmask16 below = _mm512_cmp_ps_mask(_mm512_permutexvar_ps(probe, midv), c, _CMP_LT_OQ);
    k = _mm512_mask_add_epi32(k, below, k, _mm512_set1_epi32(step));
  }
  return k;
}

// v = x / a and c = min(max(v, lo), hi) spelled as the reference's compares (NaN stays NaN: both are false).
MINIDL_AVX512 inline void clip_value(const float* x, const LevelsConsts& K, __m512& v, __m512& c) {
  v = _mm512_div_ps(_mm512_loadu_ps(x), K.av);
  const __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, K.lov, _CMP_LT_OQ), v, K.lov);
  c = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(K.hiv, t, _CMP_LT_OQ), t, K.hiv);
}

}  // namespace

MINIDL_AVX512 void quant_clip_levels_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                            int64_t n, float a, float lo, float hi, const float* lv, const float* mid,
                                            size_t nm) {
  const LevelsConsts K = levels_consts(a, lo, hi, lv, mid, nm);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m128i one8 = _mm_set1_epi8(1);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    clip_value(x + i, K, v, c);
    const __m512i k = level_index(c, K.midv);
    const __m512 q = _mm512_permutexvar_ps(k, K.lvv);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(q, K.av));
    if (codes != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(k));
    if (mask != nullptr) {
      const __mmask16 inside = _mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i), _mm_maskz_mov_epi8(inside, one8));
      // v * (1 or 0) as the reference computes it (an infinite or NaN v outside the range gives a NaN coef there)
      _mm512_storeu_ps(coef + i, _mm512_sub_ps(q, _mm512_mul_ps(v, _mm512_maskz_mov_ps(inside, one))));
    }
  }
}

MINIDL_AVX512 void quant_clip_levels_backward_avx512(float* gx, double* lane, const float* gy, const float* x,
                                                     int64_t n, float a, float lo, float hi, const float* lv,
                                                     const float* mid, size_t nm) {
  const LevelsConsts K = levels_consts(a, lo, hi, lv, mid, nm);
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512d acc = _mm512_loadu_pd(lane);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    clip_value(x + i, K, v, c);
    const __m512 q = _mm512_permutexvar_ps(level_index(c, K.midv), K.lvv);
    const __m512 m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ), one);
    const __m512 coef = _mm512_sub_ps(q, _mm512_mul_ps(v, m));
    const __m512 g = _mm512_loadu_ps(gy + i);
    if (gx != nullptr) _mm512_storeu_ps(gx + i, _mm512_mul_ps(g, m));
    // elements i .. i + 7 go to lanes 0 .. 7, then i + 8 .. i + 15: each lane adds its elements in order
    const __m512 p = _mm512_mul_ps(g, coef);
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
  }
  _mm512_storeu_pd(lane, acc);
}

namespace {

// r = nearbyint(c * steps) in the default rounding mode (nearest, ties to even), no exception flags: the
// reference's std::nearbyint
MINIDL_AVX512 inline __m512 grid_round(__m512 c, __m512 stepsv) {
  return _mm512_roundscale_ps(_mm512_mul_ps(c, stepsv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

}  // namespace

MINIDL_AVX512 bool quant_clip_grid_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                          int64_t n, float a, float lo, float hi, float steps) {
  const LevelsConsts K{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_set1_ps(a), _mm512_set1_ps(lo),
                       _mm512_set1_ps(hi)};
  const __m512 stepsv = _mm512_set1_ps(steps), zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __m512i onei = _mm512_set1_epi32(1);
  const __m128i one8 = _mm_set1_epi8(1);
  __mmask16 bad = 0;
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    clip_value(x + i, K, v, c);
    const __m512 r = grid_round(c, stepsv);
    const __m512 q = _mm512_div_ps(r, stepsv);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(q, K.av));
    if (codes != nullptr) {
      // grid point r (0 <= r <= steps; NaN fails both) -> 1 + r, -0 (sign set, equal to 0) -> 0
      const __mmask16 ok = _mm512_cmp_ps_mask(r, zero, _CMP_GE_OQ) & _mm512_cmp_ps_mask(r, stepsv, _CMP_LE_OQ);
      bad |= static_cast<__mmask16>(~ok);
      const __mmask16 negative = _mm512_movepi32_mask(_mm512_castps_si512(r));
      const __m512i code = _mm512_maskz_add_epi32(ok & static_cast<__mmask16>(~negative), _mm512_cvttps_epi32(r), onei);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(code));
    }
    if (mask != nullptr) {
      const __mmask16 inside = _mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i), _mm_maskz_mov_epi8(inside, one8));
      _mm512_storeu_ps(coef + i, _mm512_sub_ps(q, _mm512_mul_ps(v, _mm512_maskz_mov_ps(inside, one))));
    }
  }
  return bad == 0;
}

MINIDL_AVX512 void quant_clip_grid_backward_avx512(float* gx, double* lane, const float* gy, const float* x, int64_t n,
                                                   float a, float lo, float hi, float steps) {
  const LevelsConsts K{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_set1_ps(a), _mm512_set1_ps(lo),
                       _mm512_set1_ps(hi)};
  const __m512 stepsv = _mm512_set1_ps(steps), one = _mm512_set1_ps(1.0f);
  __m512d acc = _mm512_loadu_pd(lane);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    clip_value(x + i, K, v, c);
    const __m512 q = _mm512_div_ps(grid_round(c, stepsv), stepsv);
    const __m512 m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ), one);
    const __m512 coef = _mm512_sub_ps(q, _mm512_mul_ps(v, m));
    const __m512 g = _mm512_loadu_ps(gy + i);
    if (gx != nullptr) _mm512_storeu_ps(gx + i, _mm512_mul_ps(g, m));
    const __m512 p = _mm512_mul_ps(g, coef);  // lanes as in quant_clip_levels_backward_avx512
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
  }
  _mm512_storeu_pd(lane, acc);
}

}  // namespace minidl::cpu
