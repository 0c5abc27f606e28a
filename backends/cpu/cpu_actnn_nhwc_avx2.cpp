// The ActNN codec on channels-last samples in place (cpu_actnn_nhwc_avx2.h). Per block of pixels whose groups
// are fixed per channel (a group's pixels of one channel, or whole channels):
//   1. the range: each channel's min / max folded down the block's pixels, 8 channels per vector, in pixel order
//      (vminps(v, m) is `v < m ? v : m`, the reference's fold, so NaN and signed zeros come out as there);
//   2. the codes of 32 pixels x 8 channels: each vector holds 8 channels of one pixel, with the hash's stream
//      positions k * P + p per lane; four pixels' codes become one dword per channel, an 8 x 8 dword transpose
//      turns them into 8 channels' runs of 32 codes, and each run is packed where that channel's codes go.
// Decoding runs the same steps backwards. Built for avx2 without fma, as cpu_actnn_avx2.cpp.
#include "backends/cpu/cpu_actnn_nhwc_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "backends/actnn_codec.h"
#include "backends/cpu/cpu_actnn_avx2_lanes.h"

namespace minidl::cpu {
namespace {

using namespace actnn_avx2;

// Per-channel values of the block being coded: the folds, then each channel's group's lo and scale (or step).
struct ChannelScratch {
  std::vector<float> mn, mx, lo, factor;
  explicit ChannelScratch(int64_t c)
      : mn(static_cast<size_t>(c)),
        mx(static_cast<size_t>(c)),
        lo(static_cast<size_t>(c)),
        factor(static_cast<size_t>(c)) {}
};

// The geometry of one sample: C channels of P pixels, groups of G, ranges taken over blocks of `block` pixels,
// `cpg` whole channels per group (1 when a group lies inside one channel).
struct Geometry {
  int64_t C, P, G, block, cpg;
  explicit Geometry(const ActnnNhwc& a)
      : C(a.channels),
        P(a.pixels),
        G(a.group),
        block(std::min(a.pixels, a.group)),
        cpg(a.group / std::min(a.pixels, a.group)) {}
  // The group (index inside the sample) of channel k's pixels [p0, p0 + block).
  int64_t group(int64_t k, int64_t p0) const { return (k * P + p0) / G; }
  // Where the codes of channel k's pixels p .. p + 31 start in the sample's codes (k * P + p is a multiple of 8).
  int64_t code_byte(int64_t k, int64_t p, int bits) const { return (k * P + p) / 8 * bits; }
};

// mn[k] / mx[k] = min / max of channel k over pixels [p0, p0 + n) of the sample x, folded in pixel order.
MINIDL_AVX2_ONLY void fold_block(const float* x, const Geometry& g, int64_t p0, int64_t n, float* mn, float* mx) {
  const int64_t C = g.C;
  int64_t k = 0;
  for (; k + 16 <= C; k += 16) {  // two independent vectors per pixel
    const float* r = x + p0 * C + k;
    __m256 a0 = _mm256_loadu_ps(r), a1 = _mm256_loadu_ps(r + 8);
    __m256 b0 = a0, b1 = a1;
    for (int64_t p = 1; p < n; ++p) {
      const __m256 v0 = _mm256_loadu_ps(r + p * C), v1 = _mm256_loadu_ps(r + p * C + 8);
      a0 = _mm256_min_ps(v0, a0);
      b0 = _mm256_max_ps(v0, b0);
      a1 = _mm256_min_ps(v1, a1);
      b1 = _mm256_max_ps(v1, b1);
    }
    _mm256_storeu_ps(mn + k, a0);
    _mm256_storeu_ps(mn + k + 8, a1);
    _mm256_storeu_ps(mx + k, b0);
    _mm256_storeu_ps(mx + k + 8, b1);
  }
  for (; k < C; k += 8) {
    const float* r = x + p0 * C + k;
    __m256 a = _mm256_loadu_ps(r), b = a;
    for (int64_t p = 1; p < n; ++p) {
      const __m256 v = _mm256_loadu_ps(r + p * C);
      a = _mm256_min_ps(v, a);
      b = _mm256_max_ps(v, b);
    }
    _mm256_storeu_ps(mn + k, a);
    _mm256_storeu_ps(mx + k, b);
  }
}

// The range of the group of whole channels k .. k + cpg - 1. Combining the channels' folds in channel order is
// the reference's fold over the group, except when a later channel's first pixel is NaN: that channel's fold
// is stuck at NaN while the reference's skips it. Such a group is folded element by element.
void group_of_channels_range(const float* x, const Geometry& g, int64_t k, const ChannelScratch& s, float& mn,
                             float& mx) {
  mn = s.mn[static_cast<size_t>(k)];
  mx = s.mx[static_cast<size_t>(k)];
  bool later_nan = false;
  for (int64_t i = k + 1; i < k + g.cpg; ++i) later_nan |= x[i] != x[i];
  if (later_nan) {
    mn = mx = x[k];
    for (int64_t i = k; i < k + g.cpg; ++i)
      for (int64_t p = 0; p < g.P; ++p) {
        const float v = x[p * g.C + i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
      }
    return;
  }
  for (int64_t i = k + 1; i < k + g.cpg; ++i) {
    const float a = s.mn[static_cast<size_t>(i)], b = s.mx[static_cast<size_t>(i)];
    mn = a < mn ? a : mn;
    mx = b > mx ? b : mx;
  }
}

template <int BITS>
MINIDL_AVX2_ONLY void quant_sample(uint8_t* codes, uint8_t* meta, int64_t meta_group0, const float* x,
                                   const ActnnNhwc& a, const Geometry& g, uint32_t e0, ChannelScratch& s) {
  QuantLanes<BITS> L{_mm256_setzero_ps(),
                     _mm256_setzero_ps(),
                     _mm256_set1_ps(float((1 << BITS) - 1)),
                     _mm256_set1_ps(0x1p-24f),
                     _mm256_set1_epi32(static_cast<int>(a.klo)),
                     _mm256_set1_epi32(static_cast<int>(a.khi))};
  const __m256i lane_pos =  // lane i codes channel k0 + i: its stream positions are i * P further on
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(g.P)));
  const __m256i one = _mm256_set1_epi32(1);
  for (int64_t p0 = 0; p0 < g.P; p0 += g.block) {
    fold_block(x, g, p0, g.block, s.mn.data(), s.mx.data());
    for (int64_t k = 0; k < g.C; k += g.cpg) {
      float mn = s.mn[static_cast<size_t>(k)], mx = s.mx[static_cast<size_t>(k)];
      if (g.cpg > 1) group_of_channels_range(x, g, k, s, mn, mx);
      float lo, hi;
      actnn_range(mn, mx, a.bf16, lo, hi);
      actnn_store_meta(meta, meta_group0 + g.group(k, p0), a.bf16, lo, hi);
      const float scale = actnn_scale(lo, hi, BITS);
      std::fill_n(s.lo.begin() + k, g.cpg, lo);
      std::fill_n(s.factor.begin() + k, g.cpg, scale);
    }
    for (int64_t p = p0; p < p0 + g.block; p += 32) {
      for (int64_t k0 = 0; k0 < g.C; k0 += 8) {
        L.lo = _mm256_loadu_ps(s.lo.data() + k0);
        L.s = _mm256_loadu_ps(s.factor.data() + k0);
        __m256i e =
            _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(e0 + static_cast<uint32_t>(k0 * g.P + p))), lane_pos);
        const float* xr = x + p * g.C + k0;
        __m256i r[8];  // r[q] lane i: channel k0 + i's codes of pixels p + 4q .. p + 4q + 3, one byte each
        for (int q = 0; q < 8; ++q) {
          const __m256i c0 = L.full_codes(xr, (4 * q) * g.C, e);
          e = _mm256_add_epi32(e, one);
          const __m256i c1 = L.full_codes(xr, (4 * q + 1) * g.C, e);
          e = _mm256_add_epi32(e, one);
          const __m256i c2 = L.full_codes(xr, (4 * q + 2) * g.C, e);
          e = _mm256_add_epi32(e, one);
          const __m256i c3 = L.full_codes(xr, (4 * q + 3) * g.C, e);
          e = _mm256_add_epi32(e, one);
          r[q] = _mm256_or_si256(_mm256_or_si256(c0, _mm256_slli_epi32(c1, 8)),
                                 _mm256_or_si256(_mm256_slli_epi32(c2, 16), _mm256_slli_epi32(c3, 24)));
        }
        transpose8x8_epi32(r);  // r[i]: channel k0 + i's 32 codes in pixel order
        for (int i = 0; i < 8; ++i) pack_bytes32<BITS>(codes + g.code_byte(k0 + i, p, BITS), r[i]);
      }
    }
  }
}

template <int BITS>
MINIDL_AVX2_ONLY void dequant_sample(float* out, const uint8_t* codes, const uint8_t* meta, int64_t meta_group0,
                                     const ActnnNhwc& a, const Geometry& g, ChannelScratch& s) {
  const __m256i low_byte = _mm256_set1_epi32(0xFF);
  for (int64_t p0 = 0; p0 < g.P; p0 += g.block) {
    for (int64_t k = 0; k < g.C; k += g.cpg) {
      float lo, hi;
      actnn_load_meta(meta, meta_group0 + g.group(k, p0), a.bf16, lo, hi);
      std::fill_n(s.lo.begin() + k, g.cpg, lo);
      std::fill_n(s.factor.begin() + k, g.cpg, actnn_step(lo, hi, BITS));
    }
    for (int64_t p = p0; p < p0 + g.block; p += 32) {
      for (int64_t k0 = 0; k0 < g.C; k0 += 8) {
        const __m256 lov = _mm256_loadu_ps(s.lo.data() + k0), stepv = _mm256_loadu_ps(s.factor.data() + k0);
        __m256i r[8];
        for (int i = 0; i < 8; ++i) r[i] = unpack_bytes32<BITS>(codes + g.code_byte(k0 + i, p, BITS));
        transpose8x8_epi32(r);  // r[q] lane i: channel k0 + i's codes of pixels p + 4q .. p + 4q + 3
        float* o = out + p * g.C + k0;
        for (int q = 0; q < 8; ++q) {
          for (int j = 0; j < 4; ++j) {
            const __m256i code = _mm256_and_si256(_mm256_srli_epi32(r[q], 8 * j), low_byte);
            _mm256_storeu_ps(o + (4 * q + j) * g.C, _mm256_add_ps(lov, _mm256_mul_ps(_mm256_cvtepi32_ps(code), stepv)));
          }
        }
      }
    }
  }
}

}  // namespace

bool actnn_nhwc_direct_fits(int64_t channels, int64_t pixels, int64_t group) {
  if (channels <= 0 || pixels <= 0 || group <= 0 || channels % 8 != 0) return false;
  if (pixels % group == 0) return group % 32 == 0;
  if (group % pixels == 0) return pixels % 32 == 0 && channels * pixels % group == 0;
  return false;
}

void actnn_quant_nhwc_avx2(uint8_t* codes, uint8_t* meta, const float* x, const ActnnNhwc& a, int64_t n0, int64_t n1) {
  const Geometry g(a);
  ChannelScratch s(g.C);
  const int64_t f = g.C * g.P, groups = f / g.G;
  for (int64_t n = n0; n < n1; ++n) {
    uint8_t* c = codes + a.off[n];
    const float* xs = x + n * f;
    const auto e0 = static_cast<uint32_t>(n * f);
    with_bits(a.bits[n], [&](auto bits) { quant_sample<bits()>(c, meta, n * groups, xs, a, g, e0, s); });
  }
}

void actnn_dequant_nhwc_avx2(float* out, const uint8_t* codes, const uint8_t* meta, const ActnnNhwc& a, int64_t n0,
                             int64_t n1) {
  const Geometry g(a);
  ChannelScratch s(g.C);
  const int64_t f = g.C * g.P, groups = f / g.G;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* c = codes + a.off[n];
    float* os = out + n * f;
    with_bits(a.bits[n], [&](auto bits) { dequant_sample<bits()>(os, c, meta, n * groups, a, g, s); });
  }
}

}  // namespace minidl::cpu
