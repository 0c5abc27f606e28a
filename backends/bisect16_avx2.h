// How many of at most 15 ascending float thresholds each of 8 floats passes, by a 4-step binary search in AVX2
// registers: 4 compares and 3 selects per 8 values instead of one compare per threshold. Used where a value's code
// or level index is "the number of thresholds it passes" (the packed convolutions' quantizer, backends/
// int_conv_x86.cpp; the activation quantizer's level sets, backends/cpu/cpu_quant_clip_avx2.cpp).
//
// Exactness: the thresholds are padded to 15 slots with NaN, which no value passes (ordered compares), so "passes
// slot k" stays true for a prefix of the slots and the search's count is exactly the count of the linear loop, for
// every x: ties, -0, infinities, and NaN (which passes nothing, count 0).
#pragma once

#include <immintrin.h>

#include <limits>

namespace minidl::backends {

/// Pred: _CMP_GE_OQ counts t[k] <= x, _CMP_GT_OQ counts t[k] < x. Build once per call (a few broadcasts).
template <int Pred>
struct Bisect16Avx2 {
  static constexpr int kMaxThresholds = 15;
  __m256 t7, t3, t11, odd, even;  // slot 7; slots 3 and 11; slots 1, 5, 9, 13; slots 0, 2, ..., 14

  /// n <= 15 thresholds t[0] < ... < t[n - 1].
  __attribute__((target("avx2"))) Bisect16Avx2(const float* t, int n) {
    float slot[kMaxThresholds];
    for (int k = 0; k < kMaxThresholds; ++k) slot[k] = k < n ? t[k] : std::numeric_limits<float>::quiet_NaN();
    t7 = _mm256_set1_ps(slot[7]);
    t3 = _mm256_set1_ps(slot[3]);
    t11 = _mm256_set1_ps(slot[11]);
    odd = _mm256_setr_ps(slot[1], slot[5], slot[9], slot[13], 0.0f, 0.0f, 0.0f, 0.0f);
    even = _mm256_setr_ps(slot[0], slot[2], slot[4], slot[6], slot[8], slot[10], slot[12], slot[14]);
  }

  /// The 8 counts (0..n) as int32 lanes.
  __attribute__((target("avx2"))) __m256i operator()(__m256 x) const {
    const __m256 p8 = _mm256_cmp_ps(x, t7, Pred);
    __m256i c = _mm256_and_si256(_mm256_castps_si256(p8), _mm256_set1_epi32(8));
    const __m256 p4 = _mm256_cmp_ps(x, _mm256_blendv_ps(t3, t11, p8), Pred);
    c = _mm256_or_si256(c, _mm256_and_si256(_mm256_castps_si256(p4), _mm256_set1_epi32(4)));
    const __m256 p2 = _mm256_cmp_ps(x, _mm256_permutevar8x32_ps(odd, _mm256_srli_epi32(c, 2)), Pred);
    c = _mm256_or_si256(c, _mm256_and_si256(_mm256_castps_si256(p2), _mm256_set1_epi32(2)));
    const __m256 p1 = _mm256_cmp_ps(x, _mm256_permutevar8x32_ps(even, _mm256_srli_epi32(c, 1)), Pred);
    return _mm256_sub_epi32(c, _mm256_castps_si256(p1));
  }
};

}  // namespace minidl::backends
