// Register-level pieces of the AVX2 ActNN codec kernels, shared by the chunk kernels of cpu_actnn_avx2.cpp and
// the channels-last sample kernels of cpu_actnn_nhwc_avx2.cpp: the hash on 8 lanes, the rounding of 8 elements,
// and code packing / unpacking at every width. Each function is built for avx2 without fma, so the including
// file's kernels keep the reference's separate multiply and add (backends/actnn_codec.h).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/cpu/cpu_actnn_bytes.h"

// avx2 without fma, on each function (GCC and clang alike)
#define MINIDL_AVX2_ONLY __attribute__((target("avx2")))

namespace minidl::cpu::actnn_avx2 {

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

// 32 codes (four vectors of 8 u32 lanes, in element order) as 32 bytes in element order.
MINIDL_AVX2_ONLY inline __m256i bytes32(__m256i a, __m256i b, __m256i c, __m256i d) {
  // per 128-bit half: [a0-3 b0-3 c0-3 d0-3] and [a4-7 b4-7 c4-7 d4-7]; the permute restores element order
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d)),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 32 codes (bytes in element order, each < 2^BITS) as 4 * BITS bytes at dst. Widths 2 and 4 merge neighbours
// with multiply-adds, which needs no horizontal reduction; 1 takes the bytes' low bits as a mask; 3, 5, 6 and 7
// go through pack8, 8 codes at a time.
template <int BITS>
MINIDL_AVX2_ONLY inline void pack_bytes32(uint8_t* dst, __m256i bytes) {
  if constexpr (BITS == 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), bytes);
  } else if constexpr (BITS == 1) {
    const uint32_t word = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(bytes, 7)));
    std::memcpy(dst, &word, 4);
  } else if constexpr (BITS == 2 || BITS == 4) {
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
  } else {
    const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
    pack8<BITS>(dst, _mm256_cvtepu8_epi32(lo));
    pack8<BITS>(dst + BITS, _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
    pack8<BITS>(dst + 2 * BITS, _mm256_cvtepu8_epi32(hi));
    pack8<BITS>(dst + 3 * BITS, _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
  }
}

// 32 codes (four vectors of 8, in element order) as 4 * BITS bytes, for BITS 1, 2, 4, 8.
template <int BITS>
MINIDL_AVX2_ONLY inline void pack32(uint8_t* dst, __m256i a, __m256i b, __m256i c, __m256i d) {
  static_assert(BITS == 1 || BITS == 2 || BITS == 4 || BITS == 8);
  if constexpr (BITS == 1) {  // straight from the u32 lanes: no byte stage
    const uint32_t word =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 31)))) |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(b, 31)))) << 8 |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(c, 31)))) << 16 |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(d, 31)))) << 24;
    std::memcpy(dst, &word, 4);
  } else {
    pack_bytes32<BITS>(dst, bytes32(a, b, c, d));
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

// The inverse of pack_bytes32: 32 codes packed at BITS bits from src, as bytes in element order.
template <int BITS>
MINIDL_AVX2_ONLY inline __m256i unpack_bytes32(const uint8_t* src) {
  if constexpr (BITS == 8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  } else if constexpr (BITS == 4) {  // low nibble first
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(w, m), hi = _mm_and_si128(_mm_srli_epi16(w, 4), m);
    return _mm256_setr_m128i(_mm_unpacklo_epi8(lo, hi), _mm_unpackhi_epi8(lo, hi));
  } else if constexpr (BITS == 1 || BITS == 2) {
    // dword i gets the 4 * BITS bits of codes 4i .. 4i + 3 (w), then code k of them moves to byte k: copies of w
    // shifted by k * (8 - BITS) put bit k * BITS at bit 8k, and no copy reaches another byte's low BITS bits
    __m256i w;
    if constexpr (BITS == 2) {
      w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
    } else {
      const uint32_t word = load_le<4, uint32_t>(src);
      w = _mm256_and_si256(
          _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
          _mm256_set1_epi32(0xF));
    }
    constexpr int kShift = 8 - BITS;
    const __m256i spread =
        _mm256_or_si256(_mm256_or_si256(w, _mm256_slli_epi32(w, kShift)),
                        _mm256_or_si256(_mm256_slli_epi32(w, 2 * kShift), _mm256_slli_epi32(w, 3 * kShift)));
    return _mm256_and_si256(spread, _mm256_set1_epi8(static_cast<char>((1 << BITS) - 1)));
  } else {
    return bytes32(unpack8<BITS>(src), unpack8<BITS>(src + BITS), unpack8<BITS>(src + 2 * BITS),
                   unpack8<BITS>(src + 3 * BITS));
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

// r[i] lane j <-> r[j] lane i: pairs, quads, then the two 128-bit halves (pure data movement, so float data
// passes through it bit for bit).
MINIDL_AVX2_ONLY inline void transpose8x8_epi32(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
    u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
    u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
    u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    r[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

// f(std::integral_constant<int, bits>{}) for a codec width of 1..8 (anything else is taken as 8, as the callers
// have validated it): one instantiation of a BITS-templated kernel per width.
template <class F>
inline void with_bits(int bits, F&& f) {
  switch (bits) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

}  // namespace minidl::cpu::actnn_avx2
