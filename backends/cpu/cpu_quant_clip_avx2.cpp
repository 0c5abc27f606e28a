// The activation quantizer's AVX2 forward kernel (see cpu_quant_clip_avx2.h).
#include "backends/cpu/cpu_quant_clip_avx2.h"

#include <immintrin.h>

#include <array>
#include <cstring>

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

}  // namespace

MINIDL_AVX2_ONLY void quant_clip_levels_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                             int64_t n, float a, float lo, float hi, const float* lv, const float* mid,
                                             size_t nm) {
  // levels padded to 16 (unused entries are never selected: the count is at most nm)
  alignas(32) float table[16] = {};
  for (size_t k = 0; k <= nm; ++k) table[k] = lv[k];
  const __m256 lv_lo = _mm256_load_ps(table), lv_hi = _mm256_load_ps(table + 8);
  __m256 midv[kQuantClipAvx2MaxLevels - 1];
  for (size_t j = 0; j < nm; ++j) midv[j] = _mm256_set1_ps(mid[j]);
  const __m256 av = _mm256_set1_ps(a), lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256i seven = _mm256_set1_epi32(7);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), av);
    // t = v < lo ? lo : v; c = hi < t ? hi : t (NaN stays NaN: both compares are false)
    const __m256 t = _mm256_blendv_ps(v, lov, _mm256_cmp_ps(v, lov, _CMP_LT_OQ));
    const __m256 c = _mm256_blendv_ps(t, hiv, _mm256_cmp_ps(hiv, t, _CMP_LT_OQ));
    // k = number of midpoints m with m < c (a true compare is -1 as an integer)
    __m256i k = _mm256_setzero_si256();
    for (size_t j = 0; j < nm; ++j) k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(midv[j], c, _CMP_LT_OQ)));
    // q = table[k]: the low or high 8-entry half by k > 7
    const __m256 q_lo = _mm256_permutevar8x32_ps(lv_lo, k), q_hi = _mm256_permutevar8x32_ps(lv_hi, k);
    const __m256 q = _mm256_blendv_ps(q_lo, q_hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, seven)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(q, av));
    if (codes != nullptr) {  // k (0..15) as eight bytes
      const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(w, w));
    }
    if (mask != nullptr) {
      const __m256 inside = _mm256_cmp_ps(v, c, _CMP_EQ_OQ);
      const uint64_t bytes = kMaskBytes[static_cast<size_t>(_mm256_movemask_ps(inside))];
      std::memcpy(mask + i, &bytes, 8);
      _mm256_storeu_ps(coef + i, _mm256_sub_ps(q, _mm256_mul_ps(v, _mm256_and_ps(inside, one))));
    }
  }
}

MINIDL_AVX2_ONLY void quant_clip_levels_backward_avx2(float* gx, double* lane, const float* gy, const float* x,
                                                      int64_t n, float a, float lo, float hi, const float* lv,
                                                      const float* mid, size_t nm) {
  alignas(32) float table[16] = {};
  for (size_t k = 0; k <= nm; ++k) table[k] = lv[k];
  const __m256 lv_lo = _mm256_load_ps(table), lv_hi = _mm256_load_ps(table + 8);
  __m256 midv[kQuantClipAvx2MaxLevels - 1];
  for (size_t j = 0; j < nm; ++j) midv[j] = _mm256_set1_ps(mid[j]);
  const __m256 av = _mm256_set1_ps(a), lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256i seven = _mm256_set1_epi32(7);
  __m256d acc_lo = _mm256_loadu_pd(lane), acc_hi = _mm256_loadu_pd(lane + 4);  // lanes 0-3 and 4-7
  for (int64_t i = 0; i < n; i += 8) {
    // v, c, k and q exactly as the forward kernel above
    const __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), av);
    const __m256 t = _mm256_blendv_ps(v, lov, _mm256_cmp_ps(v, lov, _CMP_LT_OQ));
    const __m256 c = _mm256_blendv_ps(t, hiv, _mm256_cmp_ps(hiv, t, _CMP_LT_OQ));
    __m256i k = _mm256_setzero_si256();
    for (size_t j = 0; j < nm; ++j) k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(midv[j], c, _CMP_LT_OQ)));
    const __m256 q_lo = _mm256_permutevar8x32_ps(lv_lo, k), q_hi = _mm256_permutevar8x32_ps(lv_hi, k);
    const __m256 q = _mm256_blendv_ps(q_lo, q_hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, seven)));
    const __m256 m = _mm256_and_ps(_mm256_cmp_ps(v, c, _CMP_EQ_OQ), one);
    const __m256 coef = _mm256_sub_ps(q, _mm256_mul_ps(v, m));
    const __m256 g = _mm256_loadu_ps(gy + i);
    if (gx != nullptr) _mm256_storeu_ps(gx + i, _mm256_mul_ps(g, m));
    const __m256 p = _mm256_mul_ps(g, coef);
    acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
  }
  _mm256_storeu_pd(lane, acc_lo);
  _mm256_storeu_pd(lane + 4, acc_hi);
}

namespace {

// v = x / a, c = min(max(v, lo), hi) (NaN stays NaN) and q = nearbyint(c * steps) / steps (nearest, ties to even, no
// exception flags: the reference's std::nearbyint); r = nearbyint(c * steps).
struct GridValue {
  __m256 v, c, r, q;
};
MINIDL_AVX2_ONLY inline GridValue grid_value(const float* x, __m256 av, __m256 lov, __m256 hiv, __m256 stepsv) {
  GridValue g;
  g.v = _mm256_div_ps(_mm256_loadu_ps(x), av);
  const __m256 t = _mm256_blendv_ps(g.v, lov, _mm256_cmp_ps(g.v, lov, _CMP_LT_OQ));
  g.c = _mm256_blendv_ps(t, hiv, _mm256_cmp_ps(hiv, t, _CMP_LT_OQ));
  g.r = _mm256_round_ps(_mm256_mul_ps(g.c, stepsv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  g.q = _mm256_div_ps(g.r, stepsv);
  return g;
}

}  // namespace

MINIDL_AVX2_ONLY bool quant_clip_grid_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x,
                                           int64_t n, float a, float lo, float hi, float steps) {
  const __m256 av = _mm256_set1_ps(a), lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
  const __m256 stepsv = _mm256_set1_ps(steps), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256i onei = _mm256_set1_epi32(1);
  int bad = 0;
  for (int64_t i = 0; i < n; i += 8) {
    const GridValue g = grid_value(x + i, av, lov, hiv, stepsv);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(g.q, av));
    if (codes != nullptr) {
      // grid point r (0 <= r <= steps; NaN fails both) -> 1 + r, -0 (sign set, equal to 0) -> 0
      const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(g.r, zero, _CMP_GE_OQ), _mm256_cmp_ps(g.r, stepsv, _CMP_LE_OQ));
      bad |= _mm256_movemask_ps(ok) ^ 0xff;
      const __m256i positive =
          _mm256_andnot_si256(_mm256_srai_epi32(_mm256_castps_si256(g.r), 31), _mm256_castps_si256(ok));
      const __m256i code = _mm256_and_si256(positive, _mm256_add_epi32(_mm256_cvttps_epi32(g.r), onei));
      const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(w, w));
    }
    if (mask != nullptr) {
      const __m256 inside = _mm256_cmp_ps(g.v, g.c, _CMP_EQ_OQ);
      const uint64_t bytes = kMaskBytes[static_cast<size_t>(_mm256_movemask_ps(inside))];
      std::memcpy(mask + i, &bytes, 8);
      _mm256_storeu_ps(coef + i, _mm256_sub_ps(g.q, _mm256_mul_ps(g.v, _mm256_and_ps(inside, one))));
    }
  }
  return bad == 0;
}

MINIDL_AVX2_ONLY void quant_clip_grid_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n,
                                                    float a, float lo, float hi, float steps) {
  const __m256 av = _mm256_set1_ps(a), lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
  const __m256 stepsv = _mm256_set1_ps(steps), one = _mm256_set1_ps(1.0f);
  __m256d acc_lo = _mm256_loadu_pd(lane), acc_hi = _mm256_loadu_pd(lane + 4);  // lanes 0-3 and 4-7
  for (int64_t i = 0; i < n; i += 8) {
    const GridValue v = grid_value(x + i, av, lov, hiv, stepsv);
    const __m256 m = _mm256_and_ps(_mm256_cmp_ps(v.v, v.c, _CMP_EQ_OQ), one);
    const __m256 coef = _mm256_sub_ps(v.q, _mm256_mul_ps(v.v, m));
    const __m256 g = _mm256_loadu_ps(gy + i);
    if (gx != nullptr) _mm256_storeu_ps(gx + i, _mm256_mul_ps(g, m));
    const __m256 p = _mm256_mul_ps(g, coef);
    acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
  }
  _mm256_storeu_pd(lane, acc_lo);
  _mm256_storeu_pd(lane + 4, acc_hi);
}

}  // namespace minidl::cpu
