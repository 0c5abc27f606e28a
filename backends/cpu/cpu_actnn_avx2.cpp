// AVX2 kernels of the ActNN codec: 8 elements per step, the hash, the rounding and the bit packing all in
// registers (the generic loops in cpu_actnn.cpp vectorise the hash but pack and unpack codes one at a time).
// Compiled for avx2 without fma: `(x - lo) * s + r` and `lo + q * step` keep their two roundings, so the
// bytes and decoded values are the reference's (the conformance rows compare them at every ISA level).
#include "backends/cpu/cpu_actnn_avx2.h"

#include <immintrin.h>

#include <cstring>

#include "backends/cpu/cpu_actnn_avx2_lanes.h"

namespace minidl::cpu {
namespace {

using namespace actnn_avx2;

template <int BITS>
MINIDL_AVX2_ONLY void quant_chunk(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s, uint32_t e0lo,
                                  uint32_t klo, uint32_t khi) {
  const QuantLanes<BITS> L{_mm256_set1_ps(lo),
                           _mm256_set1_ps(s),
                           _mm256_set1_ps(float((1 << BITS) - 1)),
                           _mm256_set1_ps(0x1p-24f),
                           _mm256_set1_epi32(static_cast<int>(klo)),
                           _mm256_set1_epi32(static_cast<int>(khi))};
  const __m256i e0 =
      _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(e0lo)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  int64_t i = 0;
  if constexpr (BITS == 1 || BITS == 2 || BITS == 4 || BITS == 8) {
    // whole blocks of 32 real elements: no padding tests, the stream positions stepped in a register
    __m256i e = e0;
    const __m256i eight = _mm256_set1_epi32(8);
    for (; i + 32 <= mv; i += 32) {
      const __m256i e8 = _mm256_add_epi32(e, eight), e16 = _mm256_add_epi32(e8, eight);
      const __m256i e24 = _mm256_add_epi32(e16, eight);
      pack32<BITS>(dst + i / 8 * BITS, L.full_codes(x, i, e), L.full_codes(x, i + 8, e8), L.full_codes(x, i + 16, e16),
                   L.full_codes(x, i + 24, e24));
      e = _mm256_add_epi32(e24, eight);
    }
    for (; i + 32 <= m; i += 32) {
      pack32<BITS>(dst + i / 8 * BITS, L.codes(x, i, mv, stream_pos(e0, i)),
                   L.codes(x, i + 8, mv, stream_pos(e0, i + 8)), L.codes(x, i + 16, mv, stream_pos(e0, i + 16)),
                   L.codes(x, i + 24, mv, stream_pos(e0, i + 24)));
    }
  }
  for (; i < m; i += 8) pack8<BITS>(dst + i / 8 * BITS, L.codes(x, i, mv, stream_pos(e0, i)));
}

template <int BITS>
MINIDL_AVX2_ONLY void dequant_chunk(float* out, const uint8_t* src, int64_t mv, float lo, float step) {
  const __m256 lov = _mm256_set1_ps(lo), stepv = _mm256_set1_ps(step);
  int64_t i = 0;
  for (; i + 8 <= mv; i += 8) {
    const __m256 q = _mm256_cvtepi32_ps(unpack8<BITS>(src + i / 8 * BITS));
    _mm256_storeu_ps(out + i, _mm256_add_ps(lov, _mm256_mul_ps(q, stepv)));
  }
  if (i < mv) {
    const __m256 q = _mm256_cvtepi32_ps(unpack8<BITS>(src + i / 8 * BITS));
    _mm256_maskstore_ps(out + i, first_lanes(mv - i), _mm256_add_ps(lov, _mm256_mul_ps(q, stepv)));
  }
}

}  // namespace

MINIDL_AVX2_ONLY void actnn_quant_chunk_avx2(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s,
                                             int bits, uint32_t e0lo, uint32_t klo, uint32_t khi) {
  with_bits(bits, [&](auto b) { quant_chunk<b()>(dst, x, m, mv, lo, s, e0lo, klo, khi); });
}

MINIDL_AVX2_ONLY void actnn_dequant_chunk_avx2(float* out, const uint8_t* src, int64_t mv, float lo, float step,
                                               int bits) {
  with_bits(bits, [&](auto b) { dequant_chunk<b()>(out, src, mv, lo, step); });
}

MINIDL_AVX2_ONLY void pack_mask_f32_avx2(uint8_t* dst, const float* x, int64_t b, int64_t e) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i = b; i < e; ++i) {
    // NEQ_UQ: true for NaN as `x != 0` is; -0.0 compares equal to 0 in both
    const __m256 ne = _mm256_cmp_ps(_mm256_loadu_ps(x + 8 * i), zero, _CMP_NEQ_UQ);
    dst[i] = static_cast<uint8_t>(_mm256_movemask_ps(ne));
  }
}

MINIDL_AVX2_ONLY void pack_mask_u8_avx2(uint8_t* dst, const uint8_t* x, int64_t b, int64_t e) {
  int64_t i = b;
  for (; i + 4 <= e; i += 4) {  // 32 elements -> 4 bytes
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 8 * i));
    const uint32_t zero_bits =
        static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_setzero_si256())));
    const uint32_t word = ~zero_bits;
    std::memcpy(dst + i, &word, 4);
  }
  for (; i < e; ++i) {
    uint8_t v = 0;
    for (int k = 0; k < 8; ++k) v = static_cast<uint8_t>(v | ((x[8 * i + k] != 0) << k));
    dst[i] = v;
  }
}

MINIDL_AVX2_ONLY void unpack_mask_f32_avx2(float* out, const uint8_t* bits, int64_t b, int64_t e) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = b; i < e; ++i) {
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits[i]), lane_bit), lane_bit);
    _mm256_storeu_ps(out + 8 * i, _mm256_and_ps(_mm256_castsi256_ps(set), one));
  }
}

MINIDL_AVX2_ONLY void mask_from_bits_f32_avx2(float* g, const uint8_t* bits, int64_t b, int64_t e) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t i = b; i < e; ++i) {
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits[i]), lane_bit), lane_bit);
    _mm256_storeu_ps(g + 8 * i, _mm256_and_ps(_mm256_castsi256_ps(set), _mm256_loadu_ps(g + 8 * i)));
  }
}

MINIDL_AVX2_ONLY void transpose_f32_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                                         int64_t dst_ld) {
  const int64_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
  for (int64_t i = 0; i < r8; i += 8) {
    for (int64_t j = 0; j < c8; j += 8) {
      const float* s = src + i * src_ld + j;
      __m256i r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_castps_si256(_mm256_loadu_ps(s + k * src_ld));
      transpose8x8_epi32(r);  // rows of the block -> columns
      float* d = dst + j * dst_ld + i;
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d + k * dst_ld, _mm256_castsi256_ps(r[k]));
    }
    for (int64_t k = i; k < i + 8; ++k)
      for (int64_t j = c8; j < cols; ++j) dst[j * dst_ld + k] = src[k * src_ld + j];
  }
  for (int64_t k = r8; k < rows; ++k)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_ld + k] = src[k * src_ld + j];
}

}  // namespace minidl::cpu
