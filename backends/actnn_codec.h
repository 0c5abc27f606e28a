// The ActNN activation codec (spec/quant.md section 2.3): layout, random stream and per-element arithmetic shared
// by every backend's actnn_quantize / actnn_dequantize (the ref oracle in the Backend base class, the cpu kernels,
// and the cuda / cuda-host kernels of backends/cuda/kernels/actnn.h: the element functions are MINIDL_HD, so nvcc
// compiles them unchanged). Every
// backend must produce the same bytes for the same codec, so everything that decides a code is defined here.
//
// Element order. The codec takes x's elements in its logical order (row-major over its sizes: N, C, H, W),
// whatever its memory layout, so a group is G consecutive elements of one channel plane as the spec's NCHW
// reference has it, and a channels-last tensor codes to the same bytes as its contiguous copy. (Taking a
// channels-last tensor in memory order would put G / C pixels of every channel into one group: ranges spanning
// channels of different scales; on ResNet-20 the weight gradients' Overall Var at fixed 2 bits was 0.0935
// that way against 0.0733 in this order, docs/actnn.md.) Backends read a channels-last sample through a
// transpose into this order and write it back the same way, or code it in place in this order (the cpu
// backend's AVX2 kernels in cpu_actnn_nhwc_avx2.cpp).
//
// Layout. x (N samples, F elements each, in that order) is padded with zeros to F' = ceil(F / G) * G per sample and cut
// into groups of G consecutive elements of one sample. Sample n has b_n bits (1..8). Its codes start at byte off_n =
// sum_{m<n} b_m * F' / 8; elements 8k..8k+7 of the sample fill bytes off_n + k*b_n .. + b_n - 1 as one little-endian
// integer, element 8k+i at bit i*b_n. Codes of padding elements are 0. Metadata per group: (lo, hi), either two bf16 (4
// bytes, the default) or two f32 (8 bytes), groups in order (sample-major).
//
// Range. mn / mx = min / max of the group's elements, padding zeros included (spec pitfall 3); with per_group =
// false one (mn, mx) over the whole padded tensor. With bf16 metadata lo = mn rounded down and hi = mx rounded
// up to bf16, so [lo, hi] still holds every element and the rounding stays unbiased (the reference rounds to
// nearest after quantizing, which biases a little); with f32 metadata lo = mn, hi = mx. The reference's 2e-6
// range epsilon is not needed: an element equal to hi maps to v = B exactly and the code is clamped to B.
//
// Rounding. B = 2^b - 1, range = hi - lo, s = B / range (0 when range == 0: a constant group codes 0 and
// decodes to lo exactly), v = (x - lo) * s, q = min(floor(v + r), B), r = actnn_uniform(key, e) in [0, 1) on a
// 2^-24 grid, e = n * F' + j the element's index in the padded tensor. P(q = floor(v) + 1) = v - floor(v), so
// E[q] = v. Decoding: x^ = lo + q * (range / B). All arithmetic is float32, no fused multiply-add.
//
// Random stream (counter-based, so any backend and any thread split draw the same r for the same (key, e)):
//   k = splitmix64(key + (e >> 32)); h = lowbias32(uint32(e) ^ uint32(k)); h = lowbias32(h ^ uint32(k >> 32));
//   r = (h >> 8) * 2^-24.
// The caller picks key per compressed tensor (the packer: splitmix64(seed) + a running save counter).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backends/cuda/kernels/hd.h"
#include "core/error.h"

namespace minidl {

struct ActnnCodec {
  int64_t n = 0;              // samples (x.size(0))
  int64_t f = 0;              // elements per sample
  int64_t group = 256;        // G, a positive multiple of 8
  bool per_group = true;      // false: one (min, max) for the whole padded tensor
  bool bf16_meta = true;      // metadata as bf16 (4 bytes per group) or f32 (8 bytes)
  uint64_t key = 0;           // the random stream's key
  std::vector<uint8_t> bits;  // per sample, 1..8 (size n)

  int64_t padded() const { return (f + group - 1) / group * group; }
  int64_t groups_per_sample() const { return padded() / group; }
  int64_t meta_bytes_per_group() const { return bf16_meta ? 4 : 8; }
  int64_t meta_bytes() const { return n * groups_per_sample() * meta_bytes_per_group(); }
  /// Byte offset of each sample's codes, plus the total as the last entry (size n + 1).
  std::vector<int64_t> sample_offsets() const {
    std::vector<int64_t> off(static_cast<size_t>(n) + 1, 0);
    const int64_t fp = padded();
    for (int64_t i = 0; i < n; ++i)
      off[static_cast<size_t>(i) + 1] = off[static_cast<size_t>(i)] + bits[static_cast<size_t>(i)] * fp / 8;
    return off;
  }
  int64_t code_bytes() const { return sample_offsets().back(); }
  /// Throws minidl::Error naming what is wrong (called by every backend before it runs).
  void validate(const char* op) const {
    MINIDL_CHECK(n >= 0 && f >= 0, op, ": negative sizes n=", n, " f=", f);
    MINIDL_CHECK(group > 0 && group % 8 == 0, op, ": group size ", group, " must be a positive multiple of 8");
    MINIDL_CHECK(static_cast<int64_t>(bits.size()) == n, op, ": ", bits.size(), " per-sample bit widths for ", n,
                 " samples");
    for (uint8_t b : bits) MINIDL_CHECK(b >= 1 && b <= 8, op, ": bit width ", int(b), " is not in 1..8");
  }
};

MINIDL_HD uint64_t actnn_splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

MINIDL_HD uint32_t actnn_lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/// The per-chunk key k of elements e with the same e >> 32.
MINIDL_HD uint64_t actnn_chunk_key(uint64_t key, uint64_t e) { return actnn_splitmix64(key + (e >> 32)); }

/// r in [0, 1) for element e, given k = actnn_chunk_key(key, e).
MINIDL_HD float actnn_uniform_k(uint64_t k, uint64_t e) {
  uint32_t h = actnn_lowbias32(static_cast<uint32_t>(e) ^ static_cast<uint32_t>(k));
  h = actnn_lowbias32(h ^ static_cast<uint32_t>(k >> 32));
  return static_cast<float>(h >> 8) * 0x1p-24f;
}

MINIDL_HD float actnn_uniform(uint64_t key, uint64_t e) { return actnn_uniform_k(actnn_chunk_key(key, e), e); }

MINIDL_HD uint32_t actnn_f32_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
MINIDL_HD float actnn_bits_f32(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

/// x rounded to bf16 toward -inf (a finite x stays finite unless it is beyond bf16's range).
MINIDL_HD float actnn_bf16_down(float x) {
  const uint32_t u = actnn_f32_bits(x);
  if ((u & 0xFFFFu) == 0) return x;
  const uint32_t t = u & 0xFFFF0000u;  // toward zero
  return x >= 0.0f ? actnn_bits_f32(t) : actnn_bits_f32(t + 0x10000u);
}
/// x rounded to bf16 toward +inf.
MINIDL_HD float actnn_bf16_up(float x) {
  const uint32_t u = actnn_f32_bits(x);
  if ((u & 0xFFFFu) == 0) return x;
  const uint32_t t = u & 0xFFFF0000u;
  return x > 0.0f ? actnn_bits_f32(t + 0x10000u) : actnn_bits_f32(t);
}

/// The stored (lo, hi) of a group from its (mn, mx).
MINIDL_HD void actnn_range(float mn, float mx, bool bf16, float& lo, float& hi) {
  lo = bf16 ? actnn_bf16_down(mn) : mn;
  hi = bf16 ? actnn_bf16_up(mx) : mx;
}

/// Writes a group's metadata (lo, hi) at group index g.
MINIDL_HD void actnn_store_meta(uint8_t* meta, int64_t g, bool bf16, float lo, float hi) {
  if (bf16) {
    const uint16_t a = static_cast<uint16_t>(actnn_f32_bits(lo) >> 16),
                   b = static_cast<uint16_t>(actnn_f32_bits(hi) >> 16);
    std::memcpy(meta + g * 4, &a, 2);
    std::memcpy(meta + g * 4 + 2, &b, 2);
  } else {
    std::memcpy(meta + g * 8, &lo, 4);
    std::memcpy(meta + g * 8 + 4, &hi, 4);
  }
}
MINIDL_HD void actnn_load_meta(const uint8_t* meta, int64_t g, bool bf16, float& lo, float& hi) {
  if (bf16) {
    uint16_t a, b;
    std::memcpy(&a, meta + g * 4, 2);
    std::memcpy(&b, meta + g * 4 + 2, 2);
    lo = actnn_bits_f32(static_cast<uint32_t>(a) << 16);
    hi = actnn_bits_f32(static_cast<uint32_t>(b) << 16);
  } else {
    std::memcpy(&lo, meta + g * 8, 4);
    std::memcpy(&hi, meta + g * 8 + 4, 4);
  }
}

/// a * b rounded to f32 on its own. nvcc contracts `a * b + c` into one fused multiply-add by default (one
/// rounding instead of two), which would change codes and decoded values on the GPU; __fmul_rn is never fused.
/// The host compilers do not contract here (no -ffp-contract=fast, no FMA in the baseline ISA).
MINIDL_HD float actnn_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

/// s = B / range, or 0 for an empty range.
MINIDL_HD float actnn_scale(float lo, float hi, int bits) {
  const float range = hi - lo;
  const float B = static_cast<float>((1 << bits) - 1);
  return range > 0.0f ? B / range : 0.0f;
}
/// range / B, the decoding step.
MINIDL_HD float actnn_step(float lo, float hi, int bits) { return (hi - lo) / static_cast<float>((1 << bits) - 1); }

/// The code of one element.
MINIDL_HD uint32_t actnn_code(float x, float lo, float s, float r, int bits) {
  const float v = actnn_mul(x - lo, s);
  const float t = v + r;
  const float B = static_cast<float>((1 << bits) - 1);
  const float tc = t < B ? t : B;  // in [0, B]: truncation is floor
  return static_cast<uint32_t>(static_cast<int32_t>(tc));
}

/// The decoded value of code q: lo + q * step, two roundings on every backend.
MINIDL_HD float actnn_decode(float lo, uint32_t q, float step) { return lo + actnn_mul(static_cast<float>(q), step); }

/// Writes 8 codes as `bits` bytes (little-endian, code i at bit i * bits).
MINIDL_HD void actnn_pack8(uint8_t* dst, const uint32_t* q, int bits) {
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i) w |= static_cast<uint64_t>(q[i]) << (i * bits);
  for (int i = 0; i < bits; ++i) dst[i] = static_cast<uint8_t>(w >> (8 * i));
}
MINIDL_HD void actnn_unpack8(uint32_t* q, const uint8_t* src, int bits) {
  uint64_t w = 0;
  for (int i = 0; i < bits; ++i) w |= static_cast<uint64_t>(src[i]) << (8 * i);
  const uint64_t m = (uint64_t{1} << bits) - 1;
  for (int i = 0; i < 8; ++i) q[i] = static_cast<uint32_t>((w >> (i * bits)) & m);
}

/// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols (host code, in tiles): a channels-last sample
/// into the codec's order (rows = pixels, cols = channels) and back (rows = channels, cols = pixels).
inline void actnn_transpose(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst, int64_t dst_ld) {
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    const int64_t i1 = i0 + kTile < rows ? i0 + kTile : rows;
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t j1 = j0 + kTile < cols ? j0 + kTile : cols;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
    }
  }
}

/// Where the groups cut a sample of `channels` planes of `pixels` (host code): the pixel indices at which some
/// channel's plane meets a group boundary (a multiple of `group` in the logical order k * pixels + p), sorted and
/// distinct, starting with 0 and followed by `pixels`. Between two of them every channel stays in one group, so a
/// channels-last sample can be read in these segments, all channels at once.
inline std::vector<int64_t> actnn_plane_cuts(int64_t channels, int64_t pixels, int64_t group) {
  std::vector<int64_t> cuts;
  for (int64_t e = 0; e < channels * pixels; e += group) cuts.push_back(e % pixels);
  cuts.push_back(0);
  cuts.push_back(pixels);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

}  // namespace minidl
