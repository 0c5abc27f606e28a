// A level set of at most kQuantClipAvx2MaxLevels levels in AVX2 registers, for the kernels that map a value to its
// level (the activation quantizer's, cpu_quant_clip_avx2.cpp; the weight quantizer's, cpu_quant_weight.cpp):
// k = the number of midpoints m with m < c (a true compare is -1 as an integer; from kBisectFromMidpoints on by
// binary search, backends/bisect16_avx2.h, the same count), q = table[k] from the low or high 8-entry half by
// k > 7. Levels are padded to 16 (unused entries are never selected: the count is at most nm).
#pragma once

#include <immintrin.h>

#include <cstddef>

#include "backends/bisect16_avx2.h"
#include "backends/cpu/cpu_quant_clip_avx2.h"

namespace minidl::cpu {

constexpr size_t kBisectFromMidpoints = 8;

struct LevelsAvx2 {
  __m256 lv_lo, lv_hi;
  __m256 midv[kQuantClipAvx2MaxLevels - 1];
  size_t nm;
  backends::Bisect16Avx2<_CMP_GT_OQ> bisect;  // c > m for the midpoints m (used when nm >= kBisectFromMidpoints)
  /// lv: nmid + 1 levels (nmid + 1 <= kQuantClipAvx2MaxLevels). mid null: the table alone, for pick() (no count:
  /// operator() is not for such a set).
  __attribute__((target("avx2"))) LevelsAvx2(const float* lv, const float* mid, size_t nmid)
      : nm(mid == nullptr ? 0 : nmid), bisect(mid, static_cast<int>(nm)) {
    alignas(32) float table[kQuantClipAvx2MaxLevels] = {};
    for (size_t k = 0; k <= nmid; ++k) table[k] = lv[k];
    lv_lo = _mm256_load_ps(table);
    lv_hi = _mm256_load_ps(table + 8);
    for (size_t j = 0; j < nm; ++j) midv[j] = _mm256_set1_ps(mid[j]);
  }
  /// The level of c, and its index in k.
  __attribute__((target("avx2"))) __m256 operator()(__m256 c, __m256i& k) const {
    if (nm >= kBisectFromMidpoints) {
      k = bisect(c);
    } else {
      k = _mm256_setzero_si256();
      for (size_t j = 0; j < nm; ++j)
        k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(midv[j], c, _CMP_LT_OQ)));
    }
    return pick(k);
  }
  /// q = table[k] for level indices k (0 .. 15)
  __attribute__((target("avx2"))) __m256 pick(__m256i k) const {
    const __m256 q_lo = _mm256_permutevar8x32_ps(lv_lo, k), q_hi = _mm256_permutevar8x32_ps(lv_hi, k);
    return _mm256_blendv_ps(q_lo, q_hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(7))));
  }
};

}  // namespace minidl::cpu
