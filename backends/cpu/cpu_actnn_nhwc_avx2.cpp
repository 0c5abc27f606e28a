// The ActNN codec on channels-last samples in place (cpu_actnn_nhwc_avx2.h). Per sample:
//   1. the ranges: each channel's min / max folded down the pixels of each segment (pixels between two cuts of
//      any channel's plane by a group boundary), 8 channels per vector, in pixel order (vminps(v, m) is
//      `v < m ? v : m`, the reference's fold, so NaN and signed zeros come out as there); the pieces' folds are
//      combined into their groups' ranges in the logical order;
//   2. the codes of 32 pixels x 8 channels (16 at the end of a 28 x 28 plane): each vector holds 8 channels of
//      one pixel, with the hash's stream positions k * P + p per lane and each 16-pixel half's group per lane;
//      four pixels' codes become one dword per channel, an 8 x 8 dword transpose turns them into 8 channels' runs
//      of 32 codes, and each run is packed where that channel's codes go.
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

// The geometry of one sample: C channels of P pixels, groups of G. The pixels are cut into segments at every pixel
// where some channel's plane meets a group boundary (a multiple of G in the logical order k * P + p): inside a
// segment each channel stays in one group. Groups inside a plane of 32 x 32 pixels give segments of G pixels,
// groups of whole planes one segment of P, and 28 x 28 planes in groups of 256 49 segments of 16 pixels. With P
// and G multiples of 16 every cut is a multiple of 16, so each 16-pixel half of a 32-pixel block lies in one
// segment. A piece is channel k's pixels of one segment.
struct Geometry {
  int64_t C, P, G;
  std::vector<int64_t> seg;          // segment starts, then P
  std::vector<int32_t> seg_of_half;  // the segment of pixels 16 h .. 16 h + 15
  std::vector<int64_t> piece_group;  // [k * segments + s]: the group (index inside the sample) of piece (k, s)
  explicit Geometry(const ActnnNhwc& a)
      : C(a.channels), P(a.pixels), G(a.group), seg(actnn_plane_cuts(a.channels, a.pixels, a.group)) {
    seg_of_half.resize(static_cast<size_t>(P / 16));
    for (size_t s = 0; s + 1 < seg.size(); ++s)
      for (int64_t p = seg[s]; p < seg[s + 1]; p += 16)
        seg_of_half[static_cast<size_t>(p / 16)] = static_cast<int32_t>(s);
    piece_group.resize(static_cast<size_t>(C * segments()));
    for (int64_t k = 0; k < C; ++k)
      for (int64_t s = 0; s < segments(); ++s)
        piece_group[static_cast<size_t>(k * segments() + s)] = (k * P + seg[static_cast<size_t>(s)]) / G;
  }
  int64_t segments() const { return static_cast<int64_t>(seg.size()) - 1; }
  int64_t groups() const { return C * P / G; }
  // Where the codes of channel k's pixels p .. p + 15 start in the sample's codes (k * P + p is a multiple of 16).
  int64_t code_byte(int64_t k, int64_t p, int bits) const { return (k * P + p) / 8 * bits; }
};

// Per-sample scratch: each piece's fold ([s * C + k]), each group's lo and scale (or step), and each piece's
// copy of its group's two (segment-major, so 8 channels' values are one vector load).
struct SampleScratch {
  std::vector<float> mn, mx, group_lo, group_factor, lo, factor;
  explicit SampleScratch(const Geometry& g)
      : mn(static_cast<size_t>(g.segments() * g.C)),
        mx(mn.size()),
        group_lo(static_cast<size_t>(g.groups())),
        group_factor(group_lo.size()),
        lo(mn.size()),
        factor(mn.size()) {}
  void spread_groups(const Geometry& g) {
    for (int64_t k = 0; k < g.C; ++k)
      for (int64_t s = 0; s < g.segments(); ++s) {
        const auto gi = static_cast<size_t>(g.piece_group[static_cast<size_t>(k * g.segments() + s)]);
        lo[static_cast<size_t>(s * g.C + k)] = group_lo[gi];
        factor[static_cast<size_t>(s * g.C + k)] = group_factor[gi];
      }
  }
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

// The reference's fold over group gi, element by element in the logical order (for the rare group below).
void fold_group_elements(const float* x, const Geometry& g, int64_t gi, float& mn, float& mx) {
  const int64_t e0 = gi * g.G;
  mn = mx = x[(e0 % g.P) * g.C + e0 / g.P];
  for (int64_t e = e0; e < e0 + g.G; ++e) {
    const float v = x[(e % g.P) * g.C + e / g.P];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
}

// Every group's range from its pieces' folds, combined in the logical order: that is the reference's fold over
// the group, except when a piece after the group's first starts with NaN (its fold is stuck at NaN while the
// reference's skips it). Such a group is folded element by element. f(group, mn, mx) takes each group in order.
template <class F>
void group_ranges(const float* x, const Geometry& g, const SampleScratch& s, F&& f) {
  const int64_t S = g.segments();
  int64_t cur = -1;
  float mn = 0, mx = 0;
  bool later_nan = false;
  auto finish = [&] {
    if (cur < 0) return;
    if (later_nan) fold_group_elements(x, g, cur, mn, mx);
    f(cur, mn, mx);
  };
  for (int64_t k = 0; k < g.C; ++k)
    for (int64_t q = 0; q < S; ++q) {
      const int64_t gi = g.piece_group[static_cast<size_t>(k * S + q)];
      const float a = s.mn[static_cast<size_t>(q * g.C + k)], b = s.mx[static_cast<size_t>(q * g.C + k)];
      if (gi != cur) {
        finish();
        cur = gi;
        mn = a;
        mx = b;
        later_nan = false;
        continue;
      }
      const float first = x[g.seg[static_cast<size_t>(q)] * g.C + k];
      later_nan |= first != first;
      mn = a < mn ? a : mn;
      mx = b > mx ? b : mx;
    }
  finish();
}

// One dword of 4 pixels' codes per lane: pixels 4q .. 4q + 3 after xr (rows C floats apart), each lane's channel
// coded with L's lanes; e (the stream positions of pixel 4q) moves on by 4.
template <int BITS>
MINIDL_AVX2_ONLY inline __m256i codes4(const QuantLanes<BITS>& L, const float* xr, int q, int64_t C, __m256i& e) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i c0 = L.full_codes(xr, (4 * q) * C, e);
  e = _mm256_add_epi32(e, one);
  const __m256i c1 = L.full_codes(xr, (4 * q + 1) * C, e);
  e = _mm256_add_epi32(e, one);
  const __m256i c2 = L.full_codes(xr, (4 * q + 2) * C, e);
  e = _mm256_add_epi32(e, one);
  const __m256i c3 = L.full_codes(xr, (4 * q + 3) * C, e);
  e = _mm256_add_epi32(e, one);
  return _mm256_or_si256(_mm256_or_si256(c0, _mm256_slli_epi32(c1, 8)),
                         _mm256_or_si256(_mm256_slli_epi32(c2, 16), _mm256_slli_epi32(c3, 24)));
}

template <int BITS>
MINIDL_AVX2_ONLY void quant_sample(uint8_t* codes, uint8_t* meta, int64_t meta_group0, const float* x,
                                   const ActnnNhwc& a, const Geometry& g, uint32_t e0, SampleScratch& s) {
  for (int64_t q = 0; q < g.segments(); ++q) {
    const int64_t p0 = g.seg[static_cast<size_t>(q)];
    fold_block(x, g, p0, g.seg[static_cast<size_t>(q + 1)] - p0, s.mn.data() + q * g.C, s.mx.data() + q * g.C);
  }
  group_ranges(x, g, s, [&](int64_t gi, float mn, float mx) {
    float lo, hi;
    actnn_range(mn, mx, a.bf16, lo, hi);
    actnn_store_meta(meta, meta_group0 + gi, a.bf16, lo, hi);
    s.group_lo[static_cast<size_t>(gi)] = lo;
    s.group_factor[static_cast<size_t>(gi)] = actnn_scale(lo, hi, BITS);
  });
  s.spread_groups(g);
  QuantLanes<BITS> L{_mm256_setzero_ps(),
                     _mm256_setzero_ps(),
                     _mm256_set1_ps(float((1 << BITS) - 1)),
                     _mm256_set1_ps(0x1p-24f),
                     _mm256_set1_epi32(static_cast<int>(a.klo)),
                     _mm256_set1_epi32(static_cast<int>(a.khi))};
  const __m256i lane_pos =  // lane i codes channel k0 + i: its stream positions are i * P further on
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(g.P)));
  for (int64_t p = 0; p < g.P; p += 32) {
    const int halves = g.P - p >= 32 ? 2 : 1;  // the plane's last block may be 16 pixels (28 x 28)
    const int64_t seg0 = g.seg_of_half[static_cast<size_t>(p / 16)],
                  seg1 = halves == 2 ? g.seg_of_half[static_cast<size_t>(p / 16 + 1)] : seg0;
    for (int64_t k0 = 0; k0 < g.C; k0 += 8) {
      __m256i e =
          _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(e0 + static_cast<uint32_t>(k0 * g.P + p))), lane_pos);
      const float* xr = x + p * g.C + k0;
      __m256i r[8];  // r[q] lane i: channel k0 + i's codes of pixels p + 4q .. p + 4q + 3, one byte each
      const int64_t piece0 = seg0 * g.C + k0;
      L.lo = _mm256_loadu_ps(s.lo.data() + piece0);
      L.s = _mm256_loadu_ps(s.factor.data() + piece0);
      for (int q = 0; q < 4; ++q) r[q] = codes4(L, xr, q, g.C, e);
      if (halves == 2) {
        if (seg1 != seg0) {  // the second half's lanes: another group for some channels
          const int64_t piece1 = seg1 * g.C + k0;
          L.lo = _mm256_loadu_ps(s.lo.data() + piece1);
          L.s = _mm256_loadu_ps(s.factor.data() + piece1);
        }
        for (int q = 4; q < 8; ++q) r[q] = codes4(L, xr, q, g.C, e);
      } else {
        for (int q = 4; q < 8; ++q) r[q] = _mm256_setzero_si256();
      }
      transpose8x8_epi32(r);  // r[i]: channel k0 + i's 32 (or 16) codes in pixel order
      for (int i = 0; i < 8; ++i) {
        uint8_t* dst = codes + g.code_byte(k0 + i, p, BITS);
        if (halves == 2) {
          pack_bytes32<BITS>(dst, r[i]);
        } else {  // 16 codes: 2 * BITS bytes (the next channel's codes follow)
          uint8_t t[32];
          pack_bytes32<BITS>(t, r[i]);
          std::memcpy(dst, t, 2 * BITS);
        }
      }
    }
  }
}

template <int BITS>
MINIDL_AVX2_ONLY void dequant_sample(float* out, const uint8_t* codes, const uint8_t* meta, int64_t meta_group0,
                                     const ActnnNhwc& a, const Geometry& g, SampleScratch& s) {
  for (int64_t gi = 0; gi < g.groups(); ++gi) {
    float lo, hi;
    actnn_load_meta(meta, meta_group0 + gi, a.bf16, lo, hi);
    s.group_lo[static_cast<size_t>(gi)] = lo;
    s.group_factor[static_cast<size_t>(gi)] = actnn_step(lo, hi, BITS);
  }
  s.spread_groups(g);
  const __m256i low_byte = _mm256_set1_epi32(0xFF);
  for (int64_t p = 0; p < g.P; p += 32) {
    const int halves = g.P - p >= 32 ? 2 : 1;
    for (int64_t k0 = 0; k0 < g.C; k0 += 8) {
      __m256i r[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* src = codes + g.code_byte(k0 + i, p, BITS);
        if (halves == 2) {
          r[i] = unpack_bytes32<BITS>(src);
        } else {  // 16 codes: read no further than their 2 * BITS bytes
          uint8_t t[32] = {};
          std::memcpy(t, src, 2 * BITS);
          r[i] = unpack_bytes32<BITS>(t);
        }
      }
      transpose8x8_epi32(r);  // r[q] lane i: channel k0 + i's codes of pixels p + 4q .. p + 4q + 3
      float* o = out + p * g.C + k0;
      for (int h = 0; h < halves; ++h) {
        const int64_t piece = g.seg_of_half[static_cast<size_t>(p / 16 + h)] * g.C + k0;
        const __m256 lov = _mm256_loadu_ps(s.lo.data() + piece), stepv = _mm256_loadu_ps(s.factor.data() + piece);
        for (int q = 4 * h; q < 4 * h + 4; ++q) {
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
  return pixels % 16 == 0 && group % 16 == 0 && channels * pixels % group == 0;
}

void actnn_quant_nhwc_avx2(uint8_t* codes, uint8_t* meta, const float* x, const ActnnNhwc& a, int64_t n0, int64_t n1) {
  const Geometry g(a);
  SampleScratch s(g);
  const int64_t f = g.C * g.P, groups = g.groups();
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
  SampleScratch s(g);
  const int64_t f = g.C * g.P, groups = g.groups();
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* c = codes + a.off[n];
    float* os = out + n * f;
    with_bits(a.bits[n], [&](auto bits) { dequant_sample<bits()>(os, c, meta, n * groups, a, g, s); });
  }
}

}  // namespace minidl::cpu
