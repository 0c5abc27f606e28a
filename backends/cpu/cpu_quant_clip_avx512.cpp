// The activation quantizer's AVX-512 kernels (see cpu_quant_clip_avx512.h): level sets and the uniform grid, forward
// and backward from the input, built from the per-vector steps below (the same steps as the AVX2 kernels, 16 lanes).
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

// alpha and the clip range, broadcast: v = x / a, c = min(max(v, lo), hi) spelled as the reference's compares (NaN
// stays NaN: both are false).
struct Clip {
  __m512 av, lov, hiv;
  MINIDL_AVX512 Clip(float a, float lo, float hi)
      : av(_mm512_set1_ps(a)), lov(_mm512_set1_ps(lo)), hiv(_mm512_set1_ps(hi)) {}
  MINIDL_AVX512 void operator()(const float* x, __m512& v, __m512& c) const {
    v = _mm512_div_ps(_mm512_loadu_ps(x), av);
    const __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, lov, _CMP_LT_OQ), v, lov);
    c = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(hiv, t, _CMP_LT_OQ), t, hiv);
  }
};

// A level set of at most 16 levels as 16-entry tables: levels padded with zeros (never selected: the count is at most
// nm), midpoints padded with +inf (no clipped value exceeds it). k = the number of midpoints m with m < c, found by a
// four-step binary search: the midpoints ascend, so "m < c" holds for a prefix of them and the search lands on its
// length, the count the reference's binary search (and the AVX2 kernel's full count) gives. NaN c compares false
// everywhere: k = 0. q = the level k.
struct Levels {
  __m512 lvv, midv;
  // mid null: the table alone (midv all +inf: operator() is not for such a set)
  MINIDL_AVX512 Levels(const float* lv, const float* mid, size_t nm) {
    alignas(64) float table[16] = {};
    alignas(64) float mids[16];
    for (size_t k = 0; k <= nm; ++k) table[k] = lv[k];
    for (size_t j = 0; j < 16; ++j)
      mids[j] = j < nm && mid != nullptr ? mid[j] : std::numeric_limits<float>::infinity();
    lvv = _mm512_load_ps(table);
    midv = _mm512_load_ps(mids);
  }
  MINIDL_AVX512 __m512 operator()(__m512 c, __m512i& k) const {
    k = _mm512_setzero_si512();
    for (int step = 8; step >= 1; step /= 2) {
      const __m512i probe = _mm512_add_epi32(k, _mm512_set1_epi32(step - 1));
      const __mmask16 below = _mm512_cmp_ps_mask(_mm512_permutexvar_ps(probe, midv), c, _CMP_LT_OQ);
      k = _mm512_mask_add_epi32(k, below, k, _mm512_set1_epi32(step));
    }
    return _mm512_permutexvar_ps(k, lvv);
  }
};

// The uniform grid: r = nearbyint(c * steps) in the default rounding mode (nearest, ties to even), no exception
// flags: the reference's std::nearbyint; q = r / steps.
struct Grid {
  __m512 stepsv;
  MINIDL_AVX512 explicit Grid(float steps) : stepsv(_mm512_set1_ps(steps)) {}
  MINIDL_AVX512 __m512 operator()(__m512 c, __m512& r) const {
    r = _mm512_roundscale_ps(_mm512_mul_ps(c, stepsv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_div_ps(r, stepsv);
  }
};

// The forward's straight-through outputs of 16 elements: mask (u8) = 1[v == c], coef = q - v * mask (v * 0 as the
// reference computes it: an infinite or NaN v outside the range gives a NaN coef there).
MINIDL_AVX512 inline void store_mask_coef(uint8_t* mask, float* coef, __m512 v, __m512 c, __m512 q) {
  const __mmask16 inside = _mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(mask), _mm_maskz_mov_epi8(inside, _mm_set1_epi8(1)));
  _mm512_storeu_ps(coef, _mm512_sub_ps(q, _mm512_mul_ps(v, _mm512_maskz_mov_ps(inside, _mm512_set1_ps(1.0f)))));
}

// The backward of 16 elements: gx = gy * mask, and gy * coef into the alpha sum's 8 lanes (elements 0 .. 7 to lanes
// 0 .. 7, then 8 .. 15: each lane adds its elements in order).
MINIDL_AVX512 inline void backward_step(float* gx, const float* gy, __m512 v, __m512 c, __m512 q, __m512d& acc) {
  const __m512 m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ), _mm512_set1_ps(1.0f));
  const __m512 coef = _mm512_sub_ps(q, _mm512_mul_ps(v, m));
  const __m512 g = _mm512_loadu_ps(gy);
  if (gx != nullptr) _mm512_storeu_ps(gx, _mm512_mul_ps(g, m));
  const __m512 p = _mm512_mul_ps(g, coef);
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
}

}  // namespace

MINIDL_AVX512 void quant_clip_levels_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                            int64_t n, float a, float lo, float hi, const float* lv, const float* mid,
                                            size_t nm) {
  const Clip clip(a, lo, hi);
  const Levels levels(lv, mid, nm);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    __m512i k;
    clip(x + i, v, c);
    const __m512 q = levels(c, k);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(q, clip.av));
    if (codes != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(k));
    if (mask != nullptr) store_mask_coef(mask + i, coef + i, v, c, q);
  }
}

MINIDL_AVX512 void quant_clip_levels_by_thresholds_avx512(float* out, uint8_t* codes, const float* x, int64_t n,
                                                          const float* t, const float* outs) {
  const __m512 tv = _mm512_loadu_ps(t), ov = _mm512_loadu_ps(outs);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 xv = _mm512_loadu_ps(x + i);
    __m512i k = _mm512_setzero_si512();
    for (int step = 8; step >= 1; step /= 2) {
      const __m512i probe = _mm512_add_epi32(k, _mm512_set1_epi32(step - 1));
      const __mmask16 reached = _mm512_cmp_ps_mask(xv, _mm512_permutexvar_ps(probe, tv), _CMP_GE_OQ);
      k = _mm512_mask_add_epi32(k, reached, k, _mm512_set1_epi32(step));
    }
    _mm512_storeu_ps(out + i, _mm512_permutexvar_ps(k, ov));
    if (codes != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(k));
  }
}

MINIDL_AVX512 void quant_clip_levels_backward_avx512(float* gx, double* lane, const float* gy, const float* x,
                                                     int64_t n, float a, float lo, float hi, const float* lv,
                                                     const float* mid, size_t nm) {
  const Clip clip(a, lo, hi);
  const Levels levels(lv, mid, nm);
  __m512d acc = _mm512_loadu_pd(lane);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    __m512i k;
    clip(x + i, v, c);
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, levels(c, k), acc);
  }
  _mm512_storeu_pd(lane, acc);
}

MINIDL_AVX512 void quant_clip_levels_backward_codes_avx512(float* gx, double* lane, const float* gy, const float* x,
                                                           const uint8_t* codes, int64_t n, float a, float lo, float hi,
                                                           const float* lv, size_t nm) {
  const Clip clip(a, lo, hi);
  const Levels levels(lv, nullptr, nm);  // the table only: the codes are the indices
  __m512d acc = _mm512_loadu_pd(lane);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c;
    clip(x + i, v, c);
    const __m512i k = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)));
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, _mm512_permutexvar_ps(k, levels.lvv), acc);
  }
  _mm512_storeu_pd(lane, acc);
}

MINIDL_AVX512 bool quant_clip_grid_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                          int64_t n, float a, float lo, float hi, float steps) {
  const Clip clip(a, lo, hi);
  const Grid grid(steps);
  const __m512 zero = _mm512_setzero_ps();
  const __m512i onei = _mm512_set1_epi32(1);
  __mmask16 bad = 0;
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c, r;
    clip(x + i, v, c);
    const __m512 q = grid(c, r);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(q, clip.av));
    if (codes != nullptr) {
      // grid point r (0 <= r <= steps; NaN fails both) -> 1 + r, -0 (sign set, equal to 0) -> 0
      const __mmask16 ok = _mm512_cmp_ps_mask(r, zero, _CMP_GE_OQ) & _mm512_cmp_ps_mask(r, grid.stepsv, _CMP_LE_OQ);
      bad |= static_cast<__mmask16>(~ok);
      const __mmask16 negative = _mm512_movepi32_mask(_mm512_castps_si512(r));
      const __m512i code = _mm512_maskz_add_epi32(ok & static_cast<__mmask16>(~negative), _mm512_cvttps_epi32(r), onei);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(code));
    }
    if (mask != nullptr) store_mask_coef(mask + i, coef + i, v, c, q);
  }
  return bad == 0;
}

MINIDL_AVX512 void quant_clip_grid_backward_avx512(float* gx, double* lane, const float* gy, const float* x, int64_t n,
                                                   float a, float lo, float hi, float steps) {
  const Clip clip(a, lo, hi);
  const Grid grid(steps);
  __m512d acc = _mm512_loadu_pd(lane);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 v, c, r;
    clip(x + i, v, c);
    backward_step(gx == nullptr ? nullptr : gx + i, gy + i, v, c, grid(c, r), acc);
  }
  _mm512_storeu_pd(lane, acc);
}

}  // namespace minidl::cpu
