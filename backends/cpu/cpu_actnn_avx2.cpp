// AVX2 kernels of the ActNN codec: 8 elements per step, the hash, the rounding and the bit packing all in
// registers (the generic loops in cpu_actnn.cpp vectorise the hash but pack and unpack codes one at a time).
// Compiled for avx2 without fma: `(x - lo) * s + r` and `lo + q * step` keep their two roundings, so the
// bytes and decoded values are the reference's (the conformance rows compare them at every ISA level).
#include "backends/cpu/cpu_actnn_avx2.h"

#include <immintrin.h>

#include <cstring>

#include "backends/cpu/cpu_actnn_bytes.h"

// avx2 without fma, on each function (GCC and clang alike)
#define MINIDL_AVX2_ONLY __attribute__((target("avx2")))

namespace minidl::cpu {
namespace {

// actnn_lowbias32 on 8 lanes.
MINIDL_AVX2_ONLY inline __m256i lowbias32(__m256i x) {
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0x846ca68bU)));
  return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

// 8 codes (u32 lanes, each < 2^BITS) as BITS bytes, code k at bit k * BITS (little-endian).
template <int BITS>
MINIDL_AVX2_ONLY inline void pack8(uint8_t* dst, __m256i q) {
  if constexpr (BITS == 8) {
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
  } else if constexpr (BITS * 8 <= 32) {
    const __m256i sh = _mm256_setr_epi32(0, BITS, 2 * BITS, 3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS);
    const __m256i v = _mm256_sllv_epi32(q, sh);
    __m128i w = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    w = _mm_or_si128(w, _mm_shuffle_epi32(w, _MM_SHUFFLE(1, 0, 3, 2)));
    w = _mm_or_si128(w, _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 3, 0, 1)));
    const uint32_t word = static_cast<uint32_t>(_mm_cvtsi128_si32(w));
    std::memcpy(dst, &word, BITS);
  } else {  // 5..7 bits: 40..56 bits in all, through 64-bit lanes
    const __m256i a = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(q)),
                                        _mm256_setr_epi64x(0, BITS, 2 * BITS, 3 * BITS));
    const __m256i b = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(q, 1)),
                                        _mm256_setr_epi64x(4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS));
    const __m256i v = _mm256_or_si256(a, b);
    __m128i w = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    w = _mm_or_si128(w, _mm_unpackhi_epi64(w, w));
    const uint64_t word = static_cast<uint64_t>(_mm_cvtsi128_si64(w));
    std::memcpy(dst, &word, BITS);
  }
}

// 32 codes (four vectors of 8, in element order) as 4 * BITS bytes, for BITS 1, 2, 4, 8: the codes become
// bytes in order first, then neighbours are merged with multiply-adds, which needs no horizontal reduction.
template <int BITS>
MINIDL_AVX2_ONLY inline void pack32(uint8_t* dst, __m256i a, __m256i b, __m256i c, __m256i d) {
  if constexpr (BITS == 1) {
    const uint32_t word =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 31)))) |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(b, 31)))) << 8 |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(c, 31)))) << 16 |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(d, 31)))) << 24;
    std::memcpy(dst, &word, 4);
    return;
  } else {
    // per 128-bit half: [a0-3 b0-3 c0-3 d0-3] and [a4-7 b4-7 c4-7 d4-7]; the permute restores element order
    const __m256i bytes =
        _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d)),
                                    _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if constexpr (BITS == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), bytes);
    } else {
      // neighbouring codes into one 16-bit lane: q[2k] + q[2k+1] << BITS (maddubs: u8 x s8 pairs, summed)
      const __m256i pairs = _mm256_maddubs_epi16(bytes, _mm256_set1_epi16(static_cast<short>((1 << BITS) << 8 | 1)));
      if constexpr (BITS == 4) {  // each pair is a byte already
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(pairs, pairs), _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(packed));
      } else {  // BITS == 2: two pairs (4 bits each) per byte, through 32-bit lanes
        const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(16 << 16 | 1));
        const __m256i w16 = _mm256_packus_epi32(quads, quads);
        const __m256i w8 = _mm256_packus_epi16(w16, w16);  // bytes 0-3 of each half
        const uint64_t word =
            static_cast<uint32_t>(_mm256_cvtsi256_si32(w8)) |
            static_cast<uint64_t>(static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(w8, 1)))) << 32;
        std::memcpy(dst, &word, 8);
      }
    }
  }
}

// The inverse of pack8: 8 codes from BITS bytes at src.
template <int BITS>
MINIDL_AVX2_ONLY inline __m256i unpack8(const uint8_t* src) {
  if constexpr (BITS == 8) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
  } else if constexpr (BITS * 8 <= 32) {
    const uint32_t word = load_le<BITS, uint32_t>(src);
    const __m256i sh = _mm256_setr_epi32(0, BITS, 2 * BITS, 3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), sh),
                            _mm256_set1_epi32((1 << BITS) - 1));
  } else {
    const uint64_t word = load_le<BITS, uint64_t>(src);
    const __m256i w = _mm256_set1_epi64x(static_cast<long long>(word));
    const __m256i mask = _mm256_set1_epi64x((1 << BITS) - 1);
    const __m256i a = _mm256_and_si256(_mm256_srlv_epi64(w, _mm256_setr_epi64x(0, BITS, 2 * BITS, 3 * BITS)), mask);
    const __m256i b =
        _mm256_and_si256(_mm256_srlv_epi64(w, _mm256_setr_epi64x(4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS)), mask);
    // a = [q0 0 q1 0 q2 0 q3 0], b << 32 = [0 q4 0 q5 0 q6 0 q7] as u32 lanes
    const __m256i mixed = _mm256_or_si256(a, _mm256_slli_epi64(b, 32));
    return _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  }
}

// Lanes [0, valid) set (valid in 0..8).
MINIDL_AVX2_ONLY inline __m256i first_lanes(int64_t valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int BITS>
struct QuantLanes {
  __m256 lo, s, B, two_m24;
  __m256i kl, kh;

  // The uniform draws of the 8 elements with stream positions e, as floats in [0, 1).
  MINIDL_AVX2_ONLY inline __m256 draws(__m256i e) const {
    const __m256i h = lowbias32(_mm256_xor_si256(lowbias32(_mm256_xor_si256(e, kl)), kh));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(h, 8)), two_m24);
  }
  // Codes of the 8 real elements at x[i..i+8) with stream positions e.
  MINIDL_AVX2_ONLY inline __m256i full_codes(const float* x, int64_t i, __m256i e) const {
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), lo), s), draws(e));
    return _mm256_cvttps_epi32(_mm256_min_ps(t, B));  // min_ps(t, B) is `t < B ? t : B`, NaN -> B as in ref
  }
  // Codes of the 8 elements at x[i..i+8) with stream positions e; lanes at or past mv are padding (code 0).
  MINIDL_AVX2_ONLY inline __m256i codes(const float* x, int64_t i, int64_t mv, __m256i e) const {
    if (i >= mv) return _mm256_setzero_si256();
    if (i + 8 <= mv) return full_codes(x, i, e);
    const __m256 r = draws(e);
    const __m256i live = first_lanes(mv - i);  // the group's last real elements, then padding
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, live), lo), s), r);
    return _mm256_and_si256(_mm256_cvttps_epi32(_mm256_min_ps(t, B)), live);
  }
};

// The stream positions of elements i .. i + 7 (e0: those of elements 0 .. 7).
MINIDL_AVX2_ONLY inline __m256i stream_pos(__m256i e0, int64_t i) {
  return _mm256_add_epi32(e0, _mm256_set1_epi32(static_cast<int>(i)));
}

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
  switch (bits) {
    case 1: return quant_chunk<1>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 2: return quant_chunk<2>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 3: return quant_chunk<3>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 4: return quant_chunk<4>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 5: return quant_chunk<5>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 6: return quant_chunk<6>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    case 7: return quant_chunk<7>(dst, x, m, mv, lo, s, e0lo, klo, khi);
    default: return quant_chunk<8>(dst, x, m, mv, lo, s, e0lo, klo, khi);
  }
}

MINIDL_AVX2_ONLY void actnn_dequant_chunk_avx2(float* out, const uint8_t* src, int64_t mv, float lo, float step,
                                               int bits) {
  switch (bits) {
    case 1: return dequant_chunk<1>(out, src, mv, lo, step);
    case 2: return dequant_chunk<2>(out, src, mv, lo, step);
    case 3: return dequant_chunk<3>(out, src, mv, lo, step);
    case 4: return dequant_chunk<4>(out, src, mv, lo, step);
    case 5: return dequant_chunk<5>(out, src, mv, lo, step);
    case 6: return dequant_chunk<6>(out, src, mv, lo, step);
    case 7: return dequant_chunk<7>(out, src, mv, lo, step);
    default: return dequant_chunk<8>(out, src, mv, lo, step);
  }
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
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + k * src_ld);
      // rows k of the block -> columns: pairs, quads, then the two 128-bit halves
      __m256 t[8], u[8];
      for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      }
      for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* d = dst + j * dst_ld + i;
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(d + k * dst_ld, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(d + (k + 4) * dst_ld, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
      }
    }
    for (int64_t k = i; k < i + 8; ++k)
      for (int64_t j = c8; j < cols; ++j) dst[j * dst_ld + k] = src[k * src_ld + j];
  }
  for (int64_t k = r8; k < rows; ++k)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_ld + k] = src[k * src_ld + j];
}

}  // namespace minidl::cpu
