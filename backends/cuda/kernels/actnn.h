// ActNN codec kernel bodies (spec/quant.md section 2.3; the layout, random stream and per-element arithmetic are
// backends/actnn_codec.h's, the host reference is backends/actnn_codec.cpp) and the 1-bit mask pack / unpack.
// Three passes, each a plain MINIDL_HD body the executors run (launch_impl.h):
//   1. range: per group (or once per tensor) the min and max, folded in the executor's fixed reduction order
//      (on the GPU one block of lanes per group) but with ActnnMinMax's rule, which returns exactly the element
//      ref's left-to-right std::min / std::max fold returns (ties, signed zeros and NaN included); its store
//      writes the group's (lo, hi) metadata;
//   2. codes: one body per 8 consecutive elements of a sample (one packed unit of `bits` bytes): read the
//      group's metadata back, draw each element's counter-based uniform, round, pack;
//   3. decode (dequantize): one body per 8 elements: unpack, lo + q * step.
// The random number of element e depends only on (key, e), so codes are the same bytes as ref's for any thread
// split. No body branches on the thread count, and nothing is atomic.
#pragma once

#include "backends/actnn_codec.h"
#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/scalar.h"

namespace minidl::cuda::kern {

/// A (min, max) fold state: the values and their fold positions (-1: nothing folded yet).
struct ActnnMinMax {
  float mn, mx;
  int64_t imn, imx;
};

MINIDL_HD ActnnMinMax actnn_minmax_empty() { return ActnnMinMax{0.0f, 0.0f, -1, -1}; }

/// The order in which candidates win: a NaN at fold position 0 (ref's fold starts from it and never leaves it),
/// then numbers, then other NaNs (ref's comparisons skip them), then nothing.
MINIDL_HD int actnn_rank(float v, int64_t pos) {
  if (pos < 0) return 3;
  if (is_nan(v)) return pos == 0 ? 0 : 2;
  return 1;
}

/// True when candidate (v, i) wins over (w, j) for the minimum (`less`) or the maximum. Equal values go to the
/// earlier position: ref's fold `m = v < m ? v : m` keeps the first of equal values (-0.0 vs 0.0 included).
/// The rule is a total order on distinct positions, so any fold order picks the same winner.
MINIDL_HD bool actnn_wins(float v, int64_t i, float w, int64_t j, bool less) {
  const int rv = actnn_rank(v, i), rw = actnn_rank(w, j);
  if (rv != rw) return rv < rw;
  if (rv == 1 && v != w) return less ? v < w : v > w;
  return i < j;
}

MINIDL_HD ActnnMinMax actnn_minmax_combine(const ActnnMinMax& a, const ActnnMinMax& b) {
  ActnnMinMax r = a;
  if (actnn_wins(b.mn, b.imn, a.mn, a.imn, true)) {
    r.mn = b.mn;
    r.imn = b.imn;
  }
  if (actnn_wins(b.mx, b.imx, a.mx, a.imx, false)) {
    r.mx = b.mx;
    r.imx = b.imx;
  }
  return r;
}

/// Element j of sample n of the padded tensor, as f32 (padding: 0).
template <typename T>
MINIDL_HD float actnn_elem(const ActnnArgs& a, int64_t n, int64_t j) {
  return j < a.f ? static_cast<float>(static_cast<const T*>(a.x)[n * a.f + j]) : 0.0f;
}

/// Element r of global group gi (sample gi / ng), at fold position r.
template <typename T>
MINIDL_HD ActnnMinMax actnn_load_group(const ActnnArgs& a, int64_t gi, int64_t r) {
  const int64_t n = gi / a.ng, j = (gi - n * a.ng) * a.group + r;
  const float v = actnn_elem<T>(a, n, j);
  return ActnnMinMax{v, v, r, r};
}

/// Element r of the whole padded tensor (one range per tensor).
template <typename T>
MINIDL_HD ActnnMinMax actnn_load_tensor(const ActnnArgs& a, int64_t r) {
  const int64_t n = r / a.fp;
  const float v = actnn_elem<T>(a, n, r - n * a.fp);
  return ActnnMinMax{v, v, r, r};
}

MINIDL_HD void actnn_store_range_meta(const ActnnArgs& a, int64_t gi, float mn, float mx) {
  float lo, hi;
  actnn_range(mn, mx, a.bf16, lo, hi);
  actnn_store_meta(a.meta, gi, a.bf16, lo, hi);
}

MINIDL_HD int actnn_sample_bits(const ActnnArgs& a, int64_t n) {
  return a.uniform_bits > 0 ? a.uniform_bits : static_cast<int>(a.sample_bits[n]);
}
MINIDL_HD int64_t actnn_sample_offset(const ActnnArgs& a, int64_t n) {
  return a.uniform_bits > 0 ? n * a.uniform_bits * (a.fp / 8) : a.sample_offsets[n];
}

/// Packed unit i (elements 8k .. 8k + 7 of sample n, i = n * fp / 8 + k): codes from the stored metadata.
template <typename T>
MINIDL_HD void actnn_quantize_unit(const ActnnArgs& a, int64_t i) {
  const int64_t units = a.fp / 8, n = i / units, k = i - n * units, j0 = 8 * k;
  const int bits = actnn_sample_bits(a, n);
  float lo, hi;
  actnn_load_meta(a.meta, n * a.ng + j0 / a.group, a.bf16, lo, hi);
  const float s = actnn_scale(lo, hi, bits);
  uint32_t q[8];
  for (int t = 0; t < 8; ++t) {
    const int64_t j = j0 + t;
    const uint64_t e = static_cast<uint64_t>(n * a.fp + j);
    q[t] = j < a.f ? actnn_code(actnn_elem<T>(a, n, j), lo, s, actnn_uniform(a.key, e), bits) : 0u;  // padding: 0
  }
  actnn_pack8(a.codes + actnn_sample_offset(a, n) + k * bits, q, bits);
}

/// Packed unit i decoded into the real elements among its 8.
template <typename T>
MINIDL_HD void actnn_dequantize_unit(const ActnnArgs& a, int64_t i) {
  const int64_t units = a.fp / 8, n = i / units, k = i - n * units, j0 = 8 * k;
  if (j0 >= a.f) return;  // a unit of padding only
  const int bits = actnn_sample_bits(a, n);
  float lo, hi;
  actnn_load_meta(a.meta, n * a.ng + j0 / a.group, a.bf16, lo, hi);
  const float step = actnn_step(lo, hi, bits);
  uint32_t q[8];
  actnn_unpack8(q, a.codes + actnn_sample_offset(a, n) + k * bits, bits);
  T* out = static_cast<T*>(a.out) + n * a.f;
  for (int t = 0; t < 8 && j0 + t < a.f; ++t) out[j0 + t] = static_cast<T>(actnn_decode(lo, q[t], step));
}

/// Byte i of a 1-bit mask: bit k = (values[8i + k] != 0) (ref's test, so NaN is set and -0.0 is not).
template <typename T>
MINIDL_HD void mask_pack_byte(const MaskBitsArgs& a, int64_t i) {
  const T* v = static_cast<const T*>(a.values) + 8 * i;
  const int64_t lim = a.n - 8 * i < 8 ? a.n - 8 * i : 8;
  uint32_t b = 0;
  for (int64_t k = 0; k < lim; ++k) b |= (v[k] != T(0) ? 1u : 0u) << k;
  a.bits[i] = static_cast<uint8_t>(b);  // bits past the last value stay 0
}

/// The values of byte i of a 1-bit mask: 1 where the bit is set, else 0.
template <typename T>
MINIDL_HD void mask_unpack_byte(const MaskBitsArgs& a, int64_t i) {
  T* v = static_cast<T*>(a.values) + 8 * i;
  const uint32_t b = a.bits[i];
  const int64_t lim = a.n - 8 * i < 8 ? a.n - 8 * i : 8;
  for (int64_t k = 0; k < lim; ++k) v[k] = static_cast<T>((b >> k) & 1u);
}

}  // namespace minidl::cuda::kern
