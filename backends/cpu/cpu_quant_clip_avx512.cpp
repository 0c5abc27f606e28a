// The activation quantizer's AVX-512 levels kernel (see cpu_quant_clip_avx512.h).
#include "backends/cpu/cpu_quant_clip_avx512.h"

#include <immintrin.h>

#include "backends/cpu/cpu_quant_clip_avx2.h"

// GCC 12 reports the "undefined" pass-through operands of its AVX-512 intrinsics as maybe-uninitialized once they
// are inlined: a known false positive of its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace minidl::cpu {

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void quant_clip_levels_avx512(
    float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x, int64_t n, float a, float lo, float hi,
    const float* lv, const float* mid, size_t nm) {
  // levels padded to 16 (unused entries are never selected: the count is at most nm)
  alignas(64) float table[16] = {};
  for (size_t k = 0; k <= nm; ++k) table[k] = lv[k];
  const __m512 lvv = _mm512_load_ps(table);
  __m512 midv[kQuantClipAvx2MaxLevels - 1];
  for (size_t j = 0; j < nm; ++j) midv[j] = _mm512_set1_ps(mid[j]);
  const __m512 av = _mm512_set1_ps(a), lov = _mm512_set1_ps(lo), hiv = _mm512_set1_ps(hi);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512i onei = _mm512_set1_epi32(1);
  const __m128i one8 = _mm_set1_epi8(1);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_div_ps(_mm512_loadu_ps(x + i), av);
    // t = v < lo ? lo : v; c = hi < t ? hi : t (NaN stays NaN: both compares are false)
    const __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, lov, _CMP_LT_OQ), v, lov);
    const __m512 c = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(hiv, t, _CMP_LT_OQ), t, hiv);
    // k = number of midpoints m with m < c
    __m512i k = _mm512_setzero_si512();
    for (size_t j = 0; j < nm; ++j) k = _mm512_mask_add_epi32(k, _mm512_cmp_ps_mask(midv[j], c, _CMP_LT_OQ), k, onei);
    const __m512 q = _mm512_permutexvar_ps(k, lvv);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(q, av));
    if (codes != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(k));
    if (mask != nullptr) {
      const __mmask16 inside = _mm512_cmp_ps_mask(v, c, _CMP_EQ_OQ);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i), _mm_maskz_mov_epi8(inside, one8));
      // v * (1 or 0) as the reference computes it (an infinite or NaN v outside the range gives a NaN coef there)
      _mm512_storeu_ps(coef + i, _mm512_sub_ps(q, _mm512_mul_ps(v, _mm512_maskz_mov_ps(inside, one))));
    }
  }
}

}  // namespace minidl::cpu
