// AVX-512 kernels of the ActNN codec: 16 elements per step, the hash, the rounding and the bit packing in
// registers. The arithmetic is the AVX2 kernels' (cpu_actnn_avx2.cpp) on twice the lanes: `(x - lo) * s + r` and
// `lo + q * step` keep their two roundings (this file is compiled with -ffp-contract=off: AVX-512F has FMA), so
// the bytes and decoded values are the reference's (the conformance rows compare them at every ISA level). A last
// 8 elements of a chunk (chunks are multiples of 8 long) go to the AVX2 kernels.
#include "backends/cpu/cpu_actnn_avx512.h"

#include <immintrin.h>

#include <cstring>

#include "backends/cpu/cpu_actnn_avx2.h"
#include "backends/cpu/cpu_actnn_bytes.h"

// GCC 12 reports the "undefined" pass-through operands of its AVX-512 intrinsics (_mm512_srli_epi32, ...) as
// maybe-uninitialized once they are inlined here: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define MINIDL_AVX512_ONLY __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace minidl::cpu {
namespace {

// actnn_lowbias32 on 16 lanes.
MINIDL_AVX512_ONLY inline __m512i lowbias32(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846ca68bU)));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

// Per 8-lane half, lane i shifted by (i % 8) * BITS.
template <int BITS>
MINIDL_AVX512_ONLY inline __m512i half_shifts32() {
  return _mm512_setr_epi32(0, BITS, 2 * BITS, 3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS, 0, BITS, 2 * BITS,
                           3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS);
}
template <int BITS>
MINIDL_AVX512_ONLY inline __m512i shifts64() {
  return _mm512_setr_epi64(0, BITS, 2 * BITS, 3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS);
}

// 16 codes (u32 lanes, each < 2^BITS) as 2 * BITS bytes, code k at bit k * BITS (little-endian).
template <int BITS>
MINIDL_AVX512_ONLY inline void pack16(uint8_t* dst, __m512i q) {
  if constexpr (BITS == 1) {
    const uint16_t word = static_cast<uint16_t>(_mm512_test_epi32_mask(q, q));
    std::memcpy(dst, &word, 2);
  } else if constexpr (BITS == 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(q));
  } else if constexpr (BITS == 2 || BITS == 4) {
    // codes as bytes in order, then neighbours merged with multiply-adds: q[2k] + q[2k+1] << BITS per 16-bit lane
    const __m128i pairs =
        _mm_maddubs_epi16(_mm512_cvtepi32_epi8(q), _mm_set1_epi16(static_cast<short>((1 << BITS) << 8 | 1)));
    if constexpr (BITS == 4) {  // each pair is a byte
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_cvtepi16_epi8(pairs));
    } else {  // two pairs (4 bits each) per byte
      const __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(16 << 16 | 1));
      const uint32_t word = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_cvtepi32_epi8(quads)));
      std::memcpy(dst, &word, 4);
    }
  } else {  // 3, 5, 6, 7 bits: each half's 8 codes (24..56 bits) through 64-bit lanes
    const __m512i a = _mm512_sllv_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(q)), shifts64<BITS>());
    const __m512i b = _mm512_sllv_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(q, 1)), shifts64<BITS>());
    const uint64_t wa = static_cast<uint64_t>(_mm512_reduce_or_epi64(a));
    const uint64_t wb = static_cast<uint64_t>(_mm512_reduce_or_epi64(b));
    std::memcpy(dst, &wa, BITS);
    std::memcpy(dst + BITS, &wb, BITS);
  }
}

// The inverse of pack16: 16 codes from 2 * BITS bytes at src.
template <int BITS>
MINIDL_AVX512_ONLY inline __m512i unpack16(const uint8_t* src) {
  if constexpr (BITS == 1) {
    return _mm512_maskz_mov_epi32(static_cast<__mmask16>(load_le<2, uint32_t>(src)), _mm512_set1_epi32(1));
  } else if constexpr (BITS == 8) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  } else if constexpr (BITS <= 4) {  // each half's 8 codes fit one 32-bit lane
    const uint64_t w = load_le<2 * BITS, uint64_t>(src);
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(static_cast<int>(w))),
                                         _mm256_set1_epi32(static_cast<int>(w >> (8 * BITS))), 1);
    return _mm512_and_si512(_mm512_srlv_epi32(v, half_shifts32<BITS>()), _mm512_set1_epi32((1 << BITS) - 1));
  } else {  // 5..7 bits: each half through 64-bit lanes
    const __m512i mask = _mm512_set1_epi64((1 << BITS) - 1);
    const __m512i a = _mm512_and_si512(
        _mm512_srlv_epi64(_mm512_set1_epi64(static_cast<long long>(load_le<BITS, uint64_t>(src))), shifts64<BITS>()),
        mask);
    const __m512i b = _mm512_and_si512(
        _mm512_srlv_epi64(_mm512_set1_epi64(static_cast<long long>(load_le<BITS, uint64_t>(src + BITS))),
                          shifts64<BITS>()),
        mask);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)), _mm512_cvtepi64_epi32(b), 1);
  }
}

template <int BITS>
MINIDL_AVX512_ONLY void quant_chunk(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s,
                                    uint32_t e0lo, uint32_t klo, uint32_t khi) {
  const __m512 lov = _mm512_set1_ps(lo), sv = _mm512_set1_ps(s), B = _mm512_set1_ps(float((1 << BITS) - 1)),
               two_m24 = _mm512_set1_ps(0x1p-24f);
  const __m512i kl = _mm512_set1_epi32(static_cast<int>(klo)), kh = _mm512_set1_epi32(static_cast<int>(khi));
  const __m512i e0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(e0lo)),
                                      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  int64_t i = 0;
  for (; i + 16 <= m; i += 16) {
    __m512i q = _mm512_setzero_si512();
    if (i < mv) {
      const __m512i e = _mm512_add_epi32(e0, _mm512_set1_epi32(static_cast<int>(i)));
      const __m512i h = lowbias32(_mm512_xor_si512(lowbias32(_mm512_xor_si512(e, kl)), kh));
      const __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(h, 8)), two_m24);
      // the group's last real elements, then padding (code 0, x not read)
      const __mmask16 live = i + 16 <= mv ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (mv - i)) - 1);
      const __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + i), lov), sv), r);
      q = _mm512_maskz_cvttps_epi32(live, _mm512_min_ps(t, B));  // min_ps is `t < B ? t : B`: NaN -> B, as ref
    }
    pack16<BITS>(dst + i / 8 * BITS, q);
  }
  if (i < m) {
    actnn_quant_chunk_avx2(dst + i / 8 * BITS, x + i, m - i, mv > i ? mv - i : 0, lo, s, BITS,
                           e0lo + static_cast<uint32_t>(i), klo, khi);
  }
}

template <int BITS>
MINIDL_AVX512_ONLY void dequant_chunk(float* out, const uint8_t* src, int64_t m, int64_t mv, float lo, float step) {
  const __m512 lov = _mm512_set1_ps(lo), stepv = _mm512_set1_ps(step);
  int64_t i = 0;
  for (; i + 16 <= mv; i += 16) {
    const __m512 q = _mm512_cvtepi32_ps(unpack16<BITS>(src + i / 8 * BITS));
    _mm512_storeu_ps(out + i, _mm512_add_ps(lov, _mm512_mul_ps(q, stepv)));
  }
  if (i < mv && i + 16 <= m) {  // 16 codes are stored (padding codes past mv): decode them, store the real ones
    const __m512 q = _mm512_cvtepi32_ps(unpack16<BITS>(src + i / 8 * BITS));
    _mm512_mask_storeu_ps(out + i, static_cast<__mmask16>((1u << (mv - i)) - 1),
                          _mm512_add_ps(lov, _mm512_mul_ps(q, stepv)));
  } else if (i < mv) {  // at most 8 left, and only 8 codes stored
    actnn_dequant_chunk_avx2(out + i, src + i / 8 * BITS, mv - i, lo, step, BITS);
  }
}

}  // namespace

void actnn_quant_chunk_avx512(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s, int bits,
                              uint32_t e0lo, uint32_t klo, uint32_t khi) {
  using Fn = void (*)(uint8_t*, const float*, int64_t, int64_t, float, float, uint32_t, uint32_t, uint32_t);
  static constexpr Fn kByBits[8] = {quant_chunk<1>, quant_chunk<2>, quant_chunk<3>, quant_chunk<4>,
                                    quant_chunk<5>, quant_chunk<6>, quant_chunk<7>, quant_chunk<8>};
  kByBits[bits - 1](dst, x, m, mv, lo, s, e0lo, klo, khi);  // bits is 1..8 (ActnnCodec::validate)
}

void actnn_dequant_chunk_avx512(float* out, const uint8_t* src, int64_t m, int64_t mv, float lo, float step, int bits) {
  using Fn = void (*)(float*, const uint8_t*, int64_t, int64_t, float, float);
  static constexpr Fn kByBits[8] = {dequant_chunk<1>, dequant_chunk<2>, dequant_chunk<3>, dequant_chunk<4>,
                                    dequant_chunk<5>, dequant_chunk<6>, dequant_chunk<7>, dequant_chunk<8>};
  kByBits[bits - 1](out, src, m, mv, lo, step);
}

}  // namespace minidl::cpu
