// The cpu backend's fused activation quantizers (quantize_clip_forward / _backward / _backward_from_input,
// pact_forward / pact_backward_from_input): one pass over x instead of the seven elementwise primitives (and seven
// activation-sized temporaries) of the unfused op, and one pass over the gradient for gx and the alpha sum. Elements
// run in L1-sized blocks, parallel over blocks; in a block the level index is the count of midpoints below c
// (vectorised compares over the block), the index the reference's binary search over midpoints finds. Float32 sets of
// at most 16 levels and the float32 uniform grid run hand-written AVX2 / AVX-512 kernels (cpu_quant_clip_avx2.h,
// cpu_quant_clip_avx512.h: the level by a count or a binary search in registers), forward and backward from the
// input in one pass each; everything else compiled loops. Kernels are picked at run time (MINIDL_CPU_ISA caps them);
// none uses FMA, so all equal the reference bit for bit. The alpha sum adds double partials of fixed 4096-element
// chunks in order (each chunk in 8 fixed lanes): the same result for any thread count and any operand alignment.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/codebook.h"
#include "backends/cpu/cpu_act_quant_blocks.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_loops.h"
#include "backends/cpu/cpu_quant_clip_avx2.h"
#include "backends/cpu/cpu_quant_clip_avx512.h"

namespace minidl {
namespace {

constexpr int64_t kBlock = 512;      // elements per block: a few KiB of scratch per thread, stays in L1
constexpr int64_t kSumChunk = 4096;  // elements per partial of the alpha-gradient sum
constexpr size_t kSelectMax = 32;    // midpoints up to which counting them all beats a binary search

template <typename T>
struct FwdArgs {
  T* out;
  uint8_t* mask;  // null when not wanted (with coef)
  T* coef;
  uint8_t* codes;  // null when not wanted: quantize_clip_forward_coded's codes
  const T* x;
  T a, lo, hi, steps;
  const T* lv;  // null: the uniform rounding path
  const T* mid;
  size_t nm;
  // float32 sets that run quant_clip_levels_by_thresholds_avx512 (no mask / coef wanted): its 16 thresholds on x and
  // 16 outputs (LevelThresholds); null otherwise
  const T* thr = nullptr;
  const T* thr_out = nullptr;
  // float32 level sets, backward: the forward's codes of x (each element's level index), which the backward kernels
  // then read instead of searching the midpoints; null: search
  const uint8_t* level_codes = nullptr;
};

// Elements [b, e) of the forward. Always inlined so each target variant below gets its own vector code. Each
// step is its own loop over the block with no data-dependent branch (the level index is a count of midpoints
// below c, then one table load), so the compiler vectorises all but the table load.
template <typename T>
[[gnu::always_inline]] inline bool fwd_range(const FwdArgs<T>& A, int64_t b, int64_t e) {
  T v[kBlock], c[kBlock], q[kBlock];
  int32_t k[kBlock];
  const T a = A.a, lo = A.lo, hi = A.hi, steps = A.steps;
  int32_t bad = 0;  // an element without a code (codes wanted)
  for (int64_t s = b; s < e; s += kBlock) {
    const int64_t n = std::min(kBlock, e - s);
    const T* x = A.x + s;
    for (int64_t i = 0; i < n; ++i) v[i] = x[i] / a;
    // std::min(std::max(v, lo), hi) spelled out on values (NaN stays NaN, as the clamp primitive): the
    // reference-returning std:: forms defeat the vectoriser here
    for (int64_t i = 0; i < n; ++i) {
      const T t = v[i] < lo ? lo : v[i];
      c[i] = hi < t ? hi : t;
    }
    if (A.lv == nullptr) {
      for (int64_t i = 0; i < n; ++i) q[i] = std::nearbyint(c[i] * steps) / steps;
      if (A.codes != nullptr) {  // grid point r = 0..steps -> 1 + r, -0 -> 0 (quantize_clip_codebook's order)
        uint8_t* cd = A.codes + s;
        for (int64_t i = 0; i < n; ++i) {
          const T r = std::nearbyint(c[i] * steps);
          const bool ok = r >= T(0) && r <= steps;
          bad |= static_cast<int32_t>(!ok);
          cd[i] = ok ? static_cast<uint8_t>(std::signbit(r) ? 0 : static_cast<int32_t>(r) + 1) : uint8_t{0};
        }
      }
    } else {
      if (A.nm <= kSelectMax) {
        for (int64_t i = 0; i < n; ++i) k[i] = 0;
        size_t j = 0;
        for (; j + 4 <= A.nm; j += 4) {  // four midpoints per sweep: a quarter of the k[] loads and stores
          const T m0 = A.mid[j], m1 = A.mid[j + 1], m2 = A.mid[j + 2], m3 = A.mid[j + 3];
          for (int64_t i = 0; i < n; ++i) {
            const T ci = c[i];
            k[i] += static_cast<int32_t>(m0 < ci) + static_cast<int32_t>(m1 < ci) + static_cast<int32_t>(m2 < ci) +
                    static_cast<int32_t>(m3 < ci);
          }
        }
        for (; j < A.nm; ++j) {
          const T m = A.mid[j];
          for (int64_t i = 0; i < n; ++i) k[i] += static_cast<int32_t>(m < c[i]);
        }
      } else {
        for (int64_t i = 0; i < n; ++i)
          k[i] = static_cast<int32_t>(std::lower_bound(A.mid, A.mid + A.nm, c[i]) - A.mid);
      }
      for (int64_t i = 0; i < n; ++i) q[i] = A.lv[k[i]];
      if (A.codes != nullptr) {
        uint8_t* cd = A.codes + s;
        for (int64_t i = 0; i < n; ++i) cd[i] = static_cast<uint8_t>(k[i]);
      }
    }
    T* out = A.out + s;
    for (int64_t i = 0; i < n; ++i) out[i] = q[i] * a;
    if (A.mask != nullptr) {
      uint8_t* mk = A.mask + s;
      T* cf = A.coef + s;
      for (int64_t i = 0; i < n; ++i) mk[i] = static_cast<uint8_t>(v[i] == c[i]);
      for (int64_t i = 0; i < n; ++i) cf[i] = q[i] - v[i] * static_cast<T>(mk[i]);
    }
  }
  return bad == 0;
}

template <typename T>
[[gnu::target("avx2")]] bool fwd_avx2(const FwdArgs<T>& A, int64_t b, int64_t e) {
  return fwd_range(A, b, e);
}
template <typename T>
bool fwd_base(const FwdArgs<T>& A, int64_t b, int64_t e) {
  return fwd_range(A, b, e);
}

// Whether the hand-written levels kernels cover these arguments: float32 levels, at most 16 of them, no NaN
// midpoint (the AVX-512 kernels binary-search the midpoints, which equals counting them only when they ascend;
// levels are checked sorted, so only a NaN could break that).
template <typename T>
bool levels_kernel_fits(const FwdArgs<T>& A) {
  if (!std::is_same_v<T, float> || A.lv == nullptr || A.nm + 1 > cpu::kQuantClipAvx2MaxLevels) return false;
  return std::none_of(A.mid, A.mid + A.nm, [](T m) { return std::isnan(m); });
}

// The forward's level index of one float32 x as every levels kernel computes it: v = x / a, the clamp, the number of
// midpoints below.
int32_t level_index(const FwdArgs<float>& A, float x) {
  const float v = x / A.a;
  const float t = v < A.lo ? A.lo : v;
  const float c = A.hi < t ? A.hi : t;
  int32_t k = 0;
  for (size_t j = 0; j < A.nm; ++j) k += static_cast<int32_t>(A.mid[j] < c);
  return k;
}

// Floats in their numeric order as unsigned integers (-0 just below +0); NaN excluded.
uint32_t order_key(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  return (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
}
float from_order_key(uint32_t k) { return std::bit_cast<float>((k & 0x80000000u) != 0 ? (k & 0x7fffffffu) : ~k); }

// What quant_clip_levels_by_thresholds_avx512 reads in place of the division: t[j] = the smallest float x with
// level_index(x) >= j + 1 (NaN when no x reaches it), outs[k] = lv[k] * a rounded as the kernels round it. Exact
// because level_index only grows with x for a > 0 (a division by a positive number, a clamp and a count are
// monotone; -0 and +0 get one index), so "x reaches t[j]" is "its index exceeds j" for every non-NaN x, and NaN
// reaches nothing (index 0, as in the kernels).
struct LevelThresholds {
  alignas(64) float t[16];
  alignas(64) float outs[16];
};
bool level_thresholds(const FwdArgs<float>& A, LevelThresholds& th) {
  if (!(A.a > 0.0f) || !std::isfinite(A.a) || A.lv == nullptr || A.nm + 1 > 16) return false;
  const float inf = std::numeric_limits<float>::infinity();
  const uint32_t lowest = order_key(-inf), highest = order_key(inf);
  for (size_t j = 0; j < 16; ++j) {
    th.outs[j] = j <= A.nm ? A.lv[j] * A.a : 0.0f;
    th.t[j] = std::numeric_limits<float>::quiet_NaN();
    const int32_t want = static_cast<int32_t>(j) + 1;
    if (j >= A.nm || level_index(A, inf) < want) continue;
    if (level_index(A, -inf) >= want) {
      th.t[j] = -inf;
      continue;
    }
    uint32_t lo = lowest, hi = highest;  // level_index(lo) < want <= level_index(hi)
    while (hi - lo > 1) {
      const uint32_t m = lo + (hi - lo) / 2;
      (level_index(A, from_order_key(m)) >= want ? hi : lo) = m;
    }
    th.t[j] = from_order_key(hi);
  }
  return true;
}

// Points A at th when a threshold kernel can replace the division for it (AVX2 or AVX-512, float32 levels the vector
// kernels take, no mask / coef wanted).
void use_thresholds(FwdArgs<float>& A, LevelThresholds& th) {
  if (A.mask != nullptr || !cpu::isa_enabled(cpu::CpuIsa::Avx2) || !levels_kernel_fits(A)) return;
  if (!level_thresholds(A, th)) return;
  A.thr = th.t;
  A.thr_out = th.outs;
}

// The hand-written kernels (AVX2: cpu_quant_clip_avx2.h, AVX-512: cpu_quant_clip_avx512.h) for float32 level sets of
// up to 16 levels and for the uniform grid, each forward and backward from the input, behind two signatures:
// elements [b, b + n) of A's operands, n a multiple of the kernel's vector width.
using VecFwd = bool (*)(const FwdArgs<float>& A, int64_t b, int64_t n);  // false: an element without a code
using VecBwd = void (*)(const FwdArgs<float>& F, float* gx, double* lane, const float* gy, int64_t b, int64_t n);

using LevelsKernel = void (*)(float*, uint8_t*, float*, uint8_t*, const float*, int64_t, float, float, float,
                              const float*, const float*, size_t);
using LevelsBackwardKernel = void (*)(float*, double*, const float*, const float*, int64_t, float, float, float,
                                      const float*, const float*, size_t);
using LevelsCodesBackwardKernel = void (*)(float*, double*, const float*, const float*, const uint8_t*, int64_t, float,
                                           float, float, const float*, size_t);
using GridKernel = bool (*)(float*, uint8_t*, float*, uint8_t*, const float*, int64_t, float, float, float, float);
using GridBackwardKernel = void (*)(float*, double*, const float*, const float*, int64_t, float, float, float, float);

template <typename P>
P* at(P* p, int64_t b) {
  return p == nullptr ? nullptr : p + b;
}

template <LevelsKernel K>
bool levels_fwd(const FwdArgs<float>& A, int64_t b, int64_t n) {
  K(A.out + b, at(A.mask, b), at(A.coef, b), at(A.codes, b), A.x + b, n, A.a, A.lo, A.hi, A.lv, A.mid, A.nm);
  return true;
}
template <GridKernel K>
bool grid_fwd(const FwdArgs<float>& A, int64_t b, int64_t n) {
  return K(A.out + b, at(A.mask, b), at(A.coef, b), at(A.codes, b), A.x + b, n, A.a, A.lo, A.hi, A.steps);
}
bool levels_thr_fwd(const FwdArgs<float>& A, int64_t b, int64_t n) {
  cpu::quant_clip_levels_by_thresholds_avx512(A.out + b, at(A.codes, b), A.x + b, n, A.thr, A.thr_out);
  return true;
}
bool levels_thr_fwd_avx2(const FwdArgs<float>& A, int64_t b, int64_t n) {
  cpu::quant_clip_levels_by_thresholds_avx2(A.out + b, at(A.codes, b), A.x + b, n, A.thr, A.thr_out);
  return true;
}
template <LevelsBackwardKernel K>
void levels_bwd(const FwdArgs<float>& F, float* gx, double* lane, const float* gy, int64_t b, int64_t n) {
  K(at(gx, b), lane, gy + b, F.x + b, n, F.a, F.lo, F.hi, F.lv, F.mid, F.nm);
}
template <LevelsCodesBackwardKernel K>
void levels_codes_bwd(const FwdArgs<float>& F, float* gx, double* lane, const float* gy, int64_t b, int64_t n) {
  K(at(gx, b), lane, gy + b, F.x + b, F.level_codes + b, n, F.a, F.lo, F.hi, F.lv, F.nm);
}
template <GridBackwardKernel K>
void grid_bwd(const FwdArgs<float>& F, float* gx, double* lane, const float* gy, int64_t b, int64_t n) {
  K(at(gx, b), lane, gy + b, F.x + b, n, F.a, F.lo, F.hi, F.steps);
}

// [b, e) through a vector kernel (whole vectors of Lanes) and fwd_avx2 for the rest: the same values.
template <int64_t Lanes, VecFwd Kernel>
bool fwd_vec(const FwdArgs<float>& A, int64_t b, int64_t e) {
  const int64_t n = (e - b) / Lanes * Lanes;
  const bool ok = Kernel(A, b, n);
  return (b + n < e ? fwd_avx2<float>(A, b + n, e) : true) && ok;
}

// The alpha sum's partial of a chunk adds kSumLanes double partial sums in a fixed order from the chunk's start
// (element b + j goes to lane j % kSumLanes), then the lanes in order: the same value wherever the operands sit in
// memory (a compiler's vectorised reduction may peel for alignment, which moves elements between lanes), so the
// backward from the saved input (its coef in a local buffer or in registers) gives the same bits as the one from
// the saved coef.
constexpr int64_t kSumLanes = 8;

// gx = gy * mask over [b, e) (gx null: skipped); lane[(i - b) % kSumLanes] += gy * coef for each i (coef null:
// no sum).
template <typename T>
[[gnu::always_inline]] inline void bwd_lanes(T* gx, const T* gy, const uint8_t* mask, const T* coef, int64_t b,
                                             int64_t e, double* lane) {
  // the sum first: gx may be gy itself (the op hands over a gradient buffer it owns alone)
  if (coef != nullptr) {
    int64_t i = b;
    for (; i + kSumLanes <= e; i += kSumLanes) {
      for (int64_t l = 0; l < kSumLanes; ++l) lane[l] += static_cast<double>(gy[i + l] * coef[i + l]);
    }
    for (int64_t l = 0; i < e; ++i, ++l) lane[l] += static_cast<double>(gy[i] * coef[i]);
  }
  if (gx != nullptr) {
    for (int64_t i = b; i < e; ++i) gx[i] = gy[i] * static_cast<T>(mask[i]);
  }
}

double sum_lanes(const double* lane) {
  double s = 0.0;
  for (int64_t l = 0; l < kSumLanes; ++l) s += lane[l];
  return s;
}

// gx = gy * mask over [b, e) (gx null: skipped); returns sum(gy * coef) of [b, e) in double (coef null: 0).
template <typename T>
[[gnu::always_inline]] inline double bwd_range(T* gx, const T* gy, const uint8_t* mask, const T* coef, int64_t b,
                                               int64_t e) {
  double lane[kSumLanes] = {};
  bwd_lanes(gx, gy, mask, coef, b, e, lane);
  return coef == nullptr ? 0.0 : sum_lanes(lane);
}

template <typename T>
[[gnu::target("avx2")]] double bwd_avx2(T* gx, const T* gy, const uint8_t* mask, const T* coef, int64_t b, int64_t e) {
  return bwd_range(gx, gy, mask, coef, b, e);
}
template <typename T>
double bwd_base(T* gx, const T* gy, const uint8_t* mask, const T* coef, int64_t b, int64_t e) {
  return bwd_range(gx, gy, mask, coef, b, e);
}

// PACT over [b, e): out = clamp(round(x * k / den), 0, k) * a / k with the unfused chain's operation order;
// mask = 1[0 < x < a], coef = 1[x > a] (mask null: not wanted); codes (null: not wanted) = 1 + the grid point, 0
// for -0 (pact_forward_codebook's order). Returns false when an output has no code (NaN).
template <typename T, bool Codes>
[[gnu::always_inline]] inline bool pact_values(T* out, uint8_t* codes, const T* x, T a, T den, T k, int64_t b,
                                               int64_t e) {
  int32_t bad = 0;
  for (int64_t i = b; i < e; ++i) {
    const T r = std::nearbyint(x[i] * k / den);
    const T t = r < T(0) ? T(0) : r;  // min(max(r, 0), k) on values; NaN stays NaN
    const T g = k < t ? k : t;
    out[i] = g * a / k;
    if constexpr (Codes) {
      const bool ok = g == g;
      bad |= static_cast<int32_t>(!ok);
      codes[i] = ok && !std::signbit(g) ? static_cast<uint8_t>(static_cast<int32_t>(g) + 1) : uint8_t{0};
    }
  }
  return bad == 0;
}

template <typename T>
[[gnu::always_inline]] inline bool pact_range(T* out, uint8_t* mask, T* coef, uint8_t* codes, const T* x, T a, T den,
                                              T k, int64_t b, int64_t e) {
  const bool ok = codes != nullptr ? pact_values<T, true>(out, codes, x, a, den, k, b, e)
                                   : pact_values<T, false>(out, nullptr, x, a, den, k, b, e);
  if (mask != nullptr) {
    for (int64_t i = b; i < e; ++i) {
      mask[i] = static_cast<uint8_t>((x[i] > T(0)) & (x[i] < a));
      coef[i] = static_cast<T>(x[i] > a);
    }
  }
  return ok;
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] bool pact_avx512(T* out, uint8_t* mask, T* coef, uint8_t* codes,
                                                                       const T* x, T a, T den, T k, int64_t b,
                                                                       int64_t e) {
  return pact_range(out, mask, coef, codes, x, a, den, k, b, e);
}
template <typename T>
[[gnu::target("avx2")]] bool pact_avx2(T* out, uint8_t* mask, T* coef, uint8_t* codes, const T* x, T a, T den, T k,
                                       int64_t b, int64_t e) {
  return pact_range(out, mask, coef, codes, x, a, den, k, b, e);
}
template <typename T>
bool pact_base(T* out, uint8_t* mask, T* coef, uint8_t* codes, const T* x, T a, T den, T k, int64_t b, int64_t e) {
  return pact_range(out, mask, coef, codes, x, a, den, k, b, e);
}

// PACT's backward from its input over one sum chunk [b, e): mask = 1[0 < x < a] and coef = 1[x > a] as
// pact_range makes them, gx = gy * mask (gx null: skipped), and the chunk's partial of sum(gy * coef) in the
// lanes of bwd_lanes. Nothing but gx is written.
template <typename T>
[[gnu::always_inline]] inline double pact_bwd_range(T* gx, const T* gy, const T* x, T a, int64_t b, int64_t e) {
  // the sum first: gx may be gy itself (the op hands over a gradient buffer it owns alone)
  double lane[kSumLanes] = {};
  int64_t i = b;
  for (; i + kSumLanes <= e; i += kSumLanes) {
    for (int64_t l = 0; l < kSumLanes; ++l) lane[l] += static_cast<double>(gy[i + l] * static_cast<T>(x[i + l] > a));
  }
  for (int64_t l = 0; i < e; ++i, ++l) lane[l] += static_cast<double>(gy[i] * static_cast<T>(x[i] > a));
  if (gx != nullptr) {
    for (int64_t j = b; j < e; ++j) gx[j] = gy[j] * static_cast<T>((x[j] > T(0)) & (x[j] < a));
  }
  return sum_lanes(lane);
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] double pact_bwd_avx512(T* gx, const T* gy, const T* x, T a,
                                                                             int64_t b, int64_t e) {
  return pact_bwd_range(gx, gy, x, a, b, e);
}
template <typename T>
[[gnu::target("avx2")]] double pact_bwd_avx2(T* gx, const T* gy, const T* x, T a, int64_t b, int64_t e) {
  return pact_bwd_range(gx, gy, x, a, b, e);
}
// float32 written out (cpu_quant_clip_avx2.cpp): GCC's AVX2 build of the loops above ran ~1.5x slower than its
// AVX-512 one (train_step --profile, ResNet-20 PACT W4: 4.6 vs 3.1 ms per step in quant_pact's backward).
template <>
[[gnu::target("avx2")]] double pact_bwd_avx2<float>(float* gx, const float* gy, const float* x, float a, int64_t b,
                                                    int64_t e) {
  static_assert(kSumLanes == 8, "pact_backward_avx2 keeps 8 lanes");
  double lane[kSumLanes] = {};
  const int64_t whole = (e - b) / kSumLanes * kSumLanes;
  cpu::pact_backward_avx2(gx == nullptr ? nullptr : gx + b, lane, gy + b, x + b, whole, a);
  for (int64_t i = b + whole, l = 0; i < e; ++i, ++l) {
    lane[l] += static_cast<double>(gy[i] * static_cast<float>(x[i] > a));
    if (gx != nullptr) gx[i] = gy[i] * static_cast<float>((x[i] > 0.0f) & (x[i] < a));
  }
  return sum_lanes(lane);
}
template <typename T>
double pact_bwd_base(T* gx, const T* gy, const T* x, T a, int64_t b, int64_t e) {
  return pact_bwd_range(gx, gy, x, a, b, e);
}

template <typename T>
using FwdFn = bool (*)(const FwdArgs<T>&, int64_t, int64_t);
template <typename T>
using BwdFn = double (*)(T*, const T*, const uint8_t*, const T*, int64_t, int64_t);

// The backward from the forward's input over one sum chunk [b, e) (at most kSumChunk elements): the chunk's mask
// and coef are made by `fwd` (the forward's own kernel) into buffers that stay in L1, then consumed by `bwd`
// exactly as the unfused backward consumes the saved tensors: the same values and the same partial sum.
template <typename T>
double bwd_from_input_chunk(const FwdArgs<T>& F, T* gx, const T* gy, int64_t b, int64_t e, FwdFn<T> fwd, BwdFn<T> bwd) {
  alignas(64) T out[kSumChunk];
  alignas(64) T coef[kSumChunk];
  alignas(64) uint8_t mask[kSumChunk];
  FwdArgs<T> A = F;
  A.x = F.x + b;
  A.out = out;
  A.mask = mask;
  A.coef = coef;
  fwd(A, 0, e - b);
  return bwd(gx == nullptr ? nullptr : gx + b, gy + b, mask, coef, 0, e - b);
}

// bwd_from_input_chunk for float32 operands the vector kernels cover: whole vectors of Lanes in one fused pass
// (nothing but gx written), the tail (fewer than Lanes elements, starting on a lane boundary) through the forward
// and backward loops into the same lanes. The same values and partial sum.
template <int64_t Lanes, VecBwd Kernel>
double bwd_vec_chunk(const FwdArgs<float>& F, float* gx, const float* gy, int64_t b, int64_t e) {
  static_assert(Lanes % kSumLanes == 0, "a vector must end on a lane boundary");
  double lane[kSumLanes] = {};
  const int64_t n = (e - b) / Lanes * Lanes;
  Kernel(F, gx, lane, gy, b, n);
  if (b + n < e) {
    alignas(64) float out[Lanes], coef[Lanes];
    alignas(64) uint8_t mask[Lanes];
    FwdArgs<float> A = F;
    A.x = F.x + b + n;
    A.out = out;
    A.mask = mask;
    A.coef = coef;
    A.codes = nullptr;
    fwd_avx2<float>(A, 0, e - b - n);
    bwd_lanes<float>(at(gx, b + n), gy + b + n, mask, coef, 0, e - b - n, lane);
  }
  return sum_lanes(lane);
}

// AVX2 / AVX-512 present and allowed by MINIDL_CPU_ISA (cpu_isa.h).
bool have_avx2() { return cpu::isa_enabled(cpu::CpuIsa::Avx2); }
bool have_avx512() { return cpu::isa_enabled(cpu::CpuIsa::Avx512); }

// PACT's backward kernel for this host and ISA cap: float32 takes the written-out AVX2 one at the avx512 level too
// (train_step --profile, ResNet-20 PACT W4, per 20 steps: quant_pact backward 62.7 -> 44 ms against GCC's AVX-512
// build; capped at AVX2 92.3 -> 47).
template <typename T>
double (*pact_bwd_kernel())(T*, const T*, const T*, T, int64_t, int64_t) {
  if (std::is_same_v<T, float> && have_avx2()) return pact_bwd_avx2<T>;
  return have_avx512() ? pact_bwd_avx512<T> : have_avx2() ? pact_bwd_avx2<T> : pact_bwd_base<T>;
}

// The forward kernel for A on this host: the widest levels kernel where it fits, else the compiled loops.
template <typename T>
FwdFn<T> pick_fwd(const FwdArgs<T>& A) {
  if (!have_avx2()) return fwd_base<T>;
  if constexpr (std::is_same_v<T, float>) {
    if (A.thr != nullptr && A.mask == nullptr)
      return have_avx512() ? fwd_vec<16, levels_thr_fwd> : fwd_vec<8, levels_thr_fwd_avx2>;
    if (levels_kernel_fits(A)) {
      return have_avx512() ? fwd_vec<16, levels_fwd<cpu::quant_clip_levels_avx512>>
                           : fwd_vec<8, levels_fwd<cpu::quant_clip_levels_avx2>>;
    }
    if (A.lv == nullptr) {
      return have_avx512() ? fwd_vec<16, grid_fwd<cpu::quant_clip_grid_avx512>>
                           : fwd_vec<8, grid_fwd<cpu::quant_clip_grid_avx2>>;
    }
  }
  return fwd_avx2<T>;
}
template <typename T>
BwdFn<T> pick_bwd() {
  return have_avx2() ? bwd_avx2<T> : bwd_base<T>;
}

// galpha: one host element of gy's dtype.
void check_galpha(const char* op, const Tensor& galpha, const Tensor& gy) {
  cpu::check_cpu(op, "galpha", galpha);
  MINIDL_CHECK(galpha.numel() == 1 && galpha.dtype() == gy.dtype(), op,
               " (backend cpu): galpha must be one element of gy's dtype, got ", dtype_name(galpha.dtype()), " ",
               shape_str(galpha.sizes()));
}

// The checks the backward-from-input primitives share: gy and x host tensors of one floating dtype and shape, gx
// (when defined) like gy, galpha (when defined) one element.
void check_from_input_grads(const char* op, const Tensor& gx, const Tensor& galpha, const Tensor& gy, const Tensor& x) {
  cpu::check_cpu(op, "gy", gy);
  cpu::check_cpu(op, "x", x);
  if (!is_floating(gy.dtype())) cpu::unsupported(op, gy.dtype());
  MINIDL_CHECK(x.dtype() == gy.dtype() && x.sizes() == gy.sizes(), op,
               " (backend cpu): x and gy must have one dtype and shape, got ", dtype_name(x.dtype()), " ",
               shape_str(x.sizes()), " and ", dtype_name(gy.dtype()), " ", shape_str(gy.sizes()));
  if (gx.defined()) cpu::check_tensor(op, "gx", gx, gy.dtype(), gy.sizes());
  if (galpha.defined()) check_galpha(op, galpha, gy);
}

// PACT's alpha (one host element of x's dtype) and grid maximum k (an integer >= 1).
void check_pact_args(const char* op, const Tensor& x, const Tensor& alpha, double k) {
  cpu::check_cpu(op, "alpha", alpha);
  MINIDL_CHECK(alpha.numel() == 1 && alpha.dtype() == x.dtype(), op,
               " (backend cpu): alpha must be one element of x's dtype, got ", dtype_name(alpha.dtype()), " ",
               shape_str(alpha.sizes()));
  MINIDL_CHECK(k >= 1.0 && k == std::floor(k), op, " (backend cpu): the grid maximum k must be an integer >= 1, got ",
               k);
}

// The checks quantize_clip_forward and quantize_clip_backward_from_input share (x, alpha, clip range, levels or
// steps); x's device and dtype are checked by the caller.
void check_clip_args(const char* op, const Tensor& x, const Tensor& alpha, const Tensor& levels, double steps,
                     double lo, double hi) {
  cpu::check_cpu(op, "alpha", alpha);
  MINIDL_CHECK(alpha.numel() == 1 && alpha.dtype() == x.dtype(), op,
               " (backend cpu): alpha must be one element of x's dtype, got ", dtype_name(alpha.dtype()), " ",
               shape_str(alpha.sizes()));
  MINIDL_CHECK(lo <= hi, op, " (backend cpu): clip range [", lo, ", ", hi, "] is empty");
  if (levels.defined()) {
    cpu::check_cpu(op, "levels", levels);
    MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0 && levels.dtype() == x.dtype(), op,
                 " (backend cpu): levels must be a non-empty 1-D tensor of x's dtype, got ", dtype_name(levels.dtype()),
                 " ", shape_str(levels.sizes()));
  } else {
    MINIDL_CHECK(steps > 0.0 && std::isfinite(steps), op, " (backend cpu): the uniform path needs steps > 0, got ",
                 steps);
  }
}

// The levels (sorted ascending, checked) and their midpoints, computed as the reference does; both empty on the
// uniform path (levels undefined).
template <typename T>
struct LevelTable {
  std::vector<T> lv, mid;
};
template <typename T>
LevelTable<T> level_table(const char* op, const Tensor& levels) {
  LevelTable<T> t;
  if (!levels.defined()) return t;
  const Tensor lc = cpu::contiguous_input(levels);
  t.lv.assign(lc.data<T>(), lc.data<T>() + lc.numel());
  MINIDL_CHECK(std::is_sorted(t.lv.begin(), t.lv.end()), op, " (backend cpu): levels must be sorted ascending");
  for (size_t k = 0; k + 1 < t.lv.size(); ++k) t.mid.push_back((t.lv[k] + t.lv[k + 1]) / T(2));
  return t;
}

// A quantizer's arguments over x (alpha a, the clip range, the grid's steps, t's levels when has_levels), no outputs
// yet: a caller sets out / mask / coef / codes.
template <typename T>
FwdArgs<T> clip_args(const T* x, T a, double lo, double hi, double steps, const LevelTable<T>& t, bool has_levels) {
  FwdArgs<T> A{};
  A.x = x;
  A.a = a;
  A.lo = static_cast<T>(lo);
  A.hi = static_cast<T>(hi);
  A.steps = static_cast<T>(steps);
  A.lv = has_levels ? t.lv.data() : nullptr;
  A.mid = t.mid.data();
  A.nm = t.mid.size();
  return A;
}

// galpha = (sum of the chunk partials in order, rounded to T) * scale, when galpha is wanted.
template <typename T>
void store_galpha(Tensor& galpha, const std::vector<double>& partial, double scale) {
  if (!galpha.defined()) return;
  double acc = 0.0;
  for (double p : partial) acc += p;
  T s = static_cast<T>(acc);
  s = s * static_cast<T>(scale);
  galpha.data<T>()[0] = s;
}

// A backward pass in fixed kSumChunk-element chunks, in parallel (work_per_element: the scheduler's cost hint):
// chunk(lo, hi) writes its gx and returns its partial of the alpha sum; galpha is then the partials in order
// (store_galpha), the same for any thread count.
template <typename T, typename Chunk>
void backward_chunks(Tensor& galpha, int64_t n, int64_t work_per_element, double scale, Chunk&& chunk) {
  const int64_t nchunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(nchunks), 0.0);
  cpu::parallel_for(nchunks, kSumChunk * work_per_element, [&](int64_t b, int64_t e) {
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t lo = ch * kSumChunk;
      partial[static_cast<size_t>(ch)] = chunk(lo, std::min(n, lo + kSumChunk));
    }
  });
  store_galpha<T>(galpha, partial, scale);
}

// quantize_clip_backward_from_input's one-pass vector kernel for float32 operands on this host (null: none covers
// them; the forward-into-buffers path runs instead), shared with cpu::ActQuantBlockKernels. from_codes: for a level
// set, the kernel that reads F.level_codes instead of searching the levels.
template <typename T>
using FusedBwd = double (*)(const FwdArgs<T>&, T*, const T*, int64_t, int64_t);
FusedBwd<float> pick_fused_bwd(const FwdArgs<float>& F, bool from_codes = false) {
  if (have_avx2() && levels_kernel_fits(F) && from_codes) {
    return have_avx512() ? bwd_vec_chunk<16, levels_codes_bwd<cpu::quant_clip_levels_backward_codes_avx512>>
                         : bwd_vec_chunk<8, levels_codes_bwd<cpu::quant_clip_levels_backward_codes_avx2>>;
  }
  if (have_avx2() && levels_kernel_fits(F)) {
    return have_avx512() ? bwd_vec_chunk<16, levels_bwd<cpu::quant_clip_levels_backward_avx512>>
                         : bwd_vec_chunk<8, levels_bwd<cpu::quant_clip_levels_backward_avx2>>;
  }
  if (have_avx2() && F.lv == nullptr) {
    return have_avx512() ? bwd_vec_chunk<16, grid_bwd<cpu::quant_clip_grid_backward_avx512>>
                         : bwd_vec_chunk<8, grid_bwd<cpu::quant_clip_grid_backward_avx2>>;
  }
  return nullptr;
}

// True when a and b (same sizes) lay their elements out identically (strides of size-1 dims do not matter).
bool same_layout(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (size_t d = 0; d < a.sizes().size(); ++d) {
    if (a.sizes()[d] != 1 && a.strides()[d] != b.strides()[d]) return false;
  }
  return true;
}

bool dense(const Tensor& t) { return t.is_contiguous() || t.is_channels_last(); }

MemoryFormat format_of(const Tensor& dense_t) {
  return dense_t.is_contiguous() ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
}

// t itself when it shares `like`'s (dense) layout, else a copy in that layout.
Tensor in_layout_of(const Tensor& t, const Tensor& like) {
  if (same_layout(t, like)) return t;
  Tensor c = empty(t.sizes(), TensorOptions{}.dtype(t.dtype()), format_of(like));
  cpu_backend().copy(c, t);
  return c;
}

// Where a kernel writes output t: t itself when it is in like's dense layout, else a scratch tensor in that
// layout, copied into t afterwards (finish_output). Callers normally pass outputs in one layout: no scratch.
Tensor work_output(const Tensor& t, const Tensor& like) {
  if (!t.defined() || same_layout(t, like)) return t;
  return empty(t.sizes(), TensorOptions{}.dtype(t.dtype()), format_of(like));
}
void finish_output(Tensor& t, const Tensor& work) {
  if (t.defined() && work.raw_data() != t.raw_data()) cpu_backend().copy(t, work);
}

}  // namespace

namespace {

// quantize_clip_forward, and with codes defined quantize_clip_forward_coded (false: an element without a code).
bool clip_forward(const char* op, Tensor& out, Tensor& mask, Tensor& coef, Tensor& codes, const Tensor& x,
                  const Tensor& alpha, const Tensor& levels, double steps, double lo, double hi) {
  cpu::check_cpu(op, "x", x);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  check_clip_args(op, x, alpha, levels, steps, lo, hi);
  cpu::check_tensor(op, "out", out, x.dtype(), x.sizes());
  MINIDL_CHECK(mask.defined() == coef.defined(), op, " (backend cpu): give both mask and coef or neither");
  if (mask.defined()) {
    cpu::check_tensor(op, "mask", mask, DType::u8, x.sizes());
    cpu::check_tensor(op, "coef", coef, x.dtype(), x.sizes());
  }
  if (codes.defined()) cpu::check_tensor(op, "codes", codes, DType::u8, x.sizes());
  return dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const LevelTable<T> t = level_table<T>(op, levels);
    // every operand in one dense layout (out's, or contiguous): then element i is the same place in each
    const Tensor o = dense(out) ? out : empty(out.sizes(), TensorOptions{}.dtype(out.dtype()));
    const Tensor m = work_output(mask, o), k = work_output(coef, o), cd = work_output(codes, o);
    const Tensor xc = in_layout_of(x, o);
    const Tensor ac = cpu::contiguous_input(alpha);
    FwdArgs<T> A = clip_args(xc.data<T>(), ac.data<T>()[0], lo, hi, steps, t, levels.defined());
    A.out = o.data<T>();
    A.mask = m.defined() ? m.data<uint8_t>() : nullptr;
    A.coef = k.defined() ? k.data<T>() : nullptr;
    A.codes = cd.defined() ? cd.data<uint8_t>() : nullptr;
    const int64_t n = x.numel();
    const int64_t nblocks = (n + kBlock - 1) / kBlock;
    LevelThresholds th;
    if constexpr (std::is_same_v<T, float>) use_thresholds(A, th);
    const FwdFn<T> fwd = pick_fwd(A);
    std::atomic<bool> ok{true};
    cpu::parallel_for(nblocks, kBlock * 4, [&](int64_t b, int64_t e) {
      if (!fwd(A, b * kBlock, std::min(n, e * kBlock))) ok.store(false, std::memory_order_relaxed);
    });
    finish_output(out, o);
    finish_output(mask, m);
    finish_output(coef, k);
    finish_output(codes, cd);
    return ok.load();
  });
}

}  // namespace

void CpuBackend::quantize_clip_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha,
                                       const Tensor& levels, double steps, double lo, double hi) {
  Tensor no_codes;
  clip_forward("quantize_clip_forward", out, mask, coef, no_codes, x, alpha, levels, steps, lo, hi);
}

bool CpuBackend::quantize_clip_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha,
                                             const Tensor& levels, double steps, double lo, double hi) {
  const char* op = "quantize_clip_forward_coded";
  MINIDL_CHECK(codes.defined(), op, " (backend cpu): codes must be defined");
  Tensor no_mask, no_coef;
  // the codes are level indices (or 1 + grid point, 0 for -0): the code book must list exactly those values
  const bool book =
      alpha.defined() && alpha.device().is_cpu() && quantize_clip_codebook(alpha, levels, steps).defined();
  if (!book) {
    Tensor no_codes;
    clip_forward(op, out, no_mask, no_coef, no_codes, x, alpha, levels, steps, lo, hi);
    return false;
  }
  return clip_forward(op, out, no_mask, no_coef, codes, x, alpha, levels, steps, lo, hi);
}

void CpuBackend::quantize_clip_backward(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& mask,
                                        const Tensor& coef, double scale) {
  const char* op = "quantize_clip_backward";
  cpu::check_cpu(op, "gy", gy);
  if (!is_floating(gy.dtype())) cpu::unsupported(op, gy.dtype());
  MINIDL_CHECK(gx.defined() ? mask.defined() : true, op, " (backend cpu): gx needs the mask");
  MINIDL_CHECK(galpha.defined() ? coef.defined() : true, op, " (backend cpu): galpha needs the coef");
  if (gx.defined()) {
    cpu::check_tensor(op, "mask", mask, DType::u8, gy.sizes());
    cpu::check_tensor(op, "gx", gx, gy.dtype(), gy.sizes());
  }
  if (galpha.defined()) {
    check_galpha(op, galpha, gy);
    cpu::check_tensor(op, "coef", coef, gy.dtype(), gy.sizes());
  }
  if (!gx.defined() && !galpha.defined()) return;
  dispatch_floating(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    // mask and coef come from the forward in one dense layout: every operand is brought to it (no copy then,
    // unless gy arrives in another layout)
    const Tensor& saved = gx.defined() ? mask : coef;
    const Tensor base = dense(saved) ? saved : cpu::contiguous_input(saved);
    const Tensor g = in_layout_of(gy, base);
    const Tensor m = gx.defined() ? in_layout_of(mask, base) : Tensor();
    const Tensor c = galpha.defined() ? in_layout_of(coef, base) : Tensor();
    const Tensor gxw = work_output(gx, base);
    T* gxp = gxw.defined() ? gxw.data<T>() : nullptr;
    const T* gp = g.data<T>();
    const uint8_t* mp = m.defined() ? m.data<uint8_t>() : nullptr;
    const T* cp = c.defined() ? c.data<T>() : nullptr;
    const int64_t n = gy.numel();
    const BwdFn<T> bwd = pick_bwd<T>();
    backward_chunks<T>(galpha, n, 2, scale,
                       [&](int64_t lo_i, int64_t hi_i) { return bwd(gxp, gp, mp, cp, lo_i, hi_i); });
    finish_output(gx, gxw);
  });
}

namespace {

// quantize_clip_backward_from_input, reading the forward's level codes (dense u8 in x's layout) instead of searching
// the level set when codes is defined.
void clip_backward_from_input(const char* op, Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                              const Tensor& codes, const Tensor& alpha, const Tensor& levels, double steps, double lo,
                              double hi, double scale) {
  check_from_input_grads(op, gx, galpha, gy, x);
  check_clip_args(op, x, alpha, levels, steps, lo, hi);
  if (!gx.defined() && !galpha.defined()) return;
  dispatch_floating(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const LevelTable<T> t = level_table<T>(op, levels);
    // x in a dense layout (as the forward saw it); gy and gx brought to it
    const Tensor base = dense(x) ? x : cpu::contiguous_input(x);
    const Tensor g = in_layout_of(gy, base);
    const Tensor gxw = work_output(gx, base);
    const Tensor ac = cpu::contiguous_input(alpha);
    FwdArgs<T> F = clip_args(base.data<T>(), ac.data<T>()[0], lo, hi, steps, t, levels.defined());
    if (codes.defined()) F.level_codes = codes.data<uint8_t>();
    T* gxp = gxw.defined() ? gxw.data<T>() : nullptr;
    const T* gp = g.data<T>();
    const int64_t n = gy.numel();
    const FwdFn<T> fwd = pick_fwd(F);
    const BwdFn<T> bwd = pick_bwd<T>();
    // float32 operands the vector kernels cover: one fused pass per chunk (no mask / coef buffers)
    FusedBwd<T> fused = nullptr;
    if constexpr (std::is_same_v<T, float>) fused = pick_fused_bwd(F, codes.defined());
    backward_chunks<T>(galpha, n, 4, scale, [&](int64_t lo_i, int64_t hi_i) {
      return fused != nullptr ? fused(F, gxp, gp, lo_i, hi_i) : bwd_from_input_chunk(F, gxp, gp, lo_i, hi_i, fwd, bwd);
    });
    finish_output(gx, gxw);
  });
}

}  // namespace

void CpuBackend::quantize_clip_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                                   const Tensor& alpha, const Tensor& levels, double steps, double lo,
                                                   double hi, double scale) {
  clip_backward_from_input("quantize_clip_backward_from_input", gx, galpha, gy, x, Tensor(), alpha, levels, steps, lo,
                           hi, scale);
}

bool CpuBackend::quantize_clip_backward_from_codes(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                                   const Tensor& codes, const Tensor& alpha, const Tensor& levels,
                                                   double lo, double hi, double scale) {
  // the vector kernels' operands only: float32 level sets they cover, codes dense in x's (dense) layout
  if (x.dtype() != DType::f32 || !x.device().is_cpu() || !dense(x) || !levels.defined() || !codes.defined() ||
      codes.dtype() != DType::u8 || !codes.device().is_cpu() || !same_layout(codes, x) || !have_avx2())
    return false;
  const LevelTable<float> t = level_table<float>("quantize_clip_backward_from_codes", levels);
  if (!levels_kernel_fits(clip_args<float>(nullptr, 1.0f, lo, hi, 1.0, t, true))) return false;
  clip_backward_from_input("quantize_clip_backward_from_codes", gx, galpha, gy, x, codes, alpha, levels, 1.0, lo, hi,
                           scale);
  return true;
}

namespace {

// pact_forward, and with codes defined pact_forward_coded (false: an output without a code).
bool pact_fwd(const char* op, Tensor& out, Tensor& mask, Tensor& coef, Tensor& codes, const Tensor& x,
              const Tensor& alpha, double k) {
  cpu::check_cpu(op, "x", x);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  check_pact_args(op, x, alpha, k);
  cpu::check_tensor(op, "out", out, x.dtype(), x.sizes());
  MINIDL_CHECK(mask.defined() == coef.defined(), op, " (backend cpu): give both mask and coef or neither");
  if (mask.defined()) {
    cpu::check_tensor(op, "mask", mask, DType::u8, x.sizes());
    cpu::check_tensor(op, "coef", coef, x.dtype(), x.sizes());
  }
  if (codes.defined()) cpu::check_tensor(op, "codes", codes, DType::u8, x.sizes());
  return dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const Tensor o = dense(out) ? out : empty(out.sizes(), TensorOptions{}.dtype(out.dtype()));
    const Tensor m = work_output(mask, o), c = work_output(coef, o), cd = work_output(codes, o);
    const Tensor xc = in_layout_of(x, o);
    const double ad = cpu::contiguous_input(alpha).data<T>()[0];
    const T a = static_cast<T>(ad), den = static_cast<T>(ad + 1e-6), tk = static_cast<T>(k);
    T* op_ = o.data<T>();
    uint8_t* mp = m.defined() ? m.data<uint8_t>() : nullptr;
    T* cp = c.defined() ? c.data<T>() : nullptr;
    uint8_t* cdp = cd.defined() ? cd.data<uint8_t>() : nullptr;
    const T* xp = xc.data<T>();
    const int64_t n = x.numel();
    bool (*fwd)(T*, uint8_t*, T*, uint8_t*, const T*, T, T, T, int64_t, int64_t) = have_avx512() ? pact_avx512<T>
                                                                                   : have_avx2() ? pact_avx2<T>
                                                                                                 : pact_base<T>;
    std::atomic<bool> ok{true};
    cpu::parallel_for(n, 4, [&](int64_t b, int64_t e) {
      if (!fwd(op_, mp, cp, cdp, xp, a, den, tk, b, e)) ok.store(false, std::memory_order_relaxed);
    });
    finish_output(out, o);
    finish_output(mask, m);
    finish_output(coef, c);
    finish_output(codes, cd);
    return ok.load();
  });
}

}  // namespace

void CpuBackend::pact_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha, double k) {
  Tensor no_codes;
  pact_fwd("pact_forward", out, mask, coef, no_codes, x, alpha, k);
}

bool CpuBackend::pact_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha, double k) {
  const char* op = "pact_forward_coded";
  MINIDL_CHECK(codes.defined(), op, " (backend cpu): codes must be defined");
  Tensor no_mask, no_coef, no_codes;
  // the codes are 1 + grid point (0 for -0): the code book must list exactly those values
  if (!alpha.defined() || !alpha.device().is_cpu() || !pact_forward_codebook(alpha, k).defined()) {
    pact_fwd(op, out, no_mask, no_coef, no_codes, x, alpha, k);
    return false;
  }
  return pact_fwd(op, out, no_mask, no_coef, codes, x, alpha, k);
}

void CpuBackend::pact_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                          const Tensor& alpha, double k, double scale) {
  const char* op = "pact_backward_from_input";
  check_from_input_grads(op, gx, galpha, gy, x);
  check_pact_args(op, x, alpha, k);
  if (!gx.defined() && !galpha.defined()) return;
  dispatch_floating(gy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    // x in a dense layout (as the forward saw it); gy and gx brought to it
    const Tensor base = dense(x) ? x : cpu::contiguous_input(x);
    const Tensor g = in_layout_of(gy, base);
    const Tensor gxw = work_output(gx, base);
    const T a = static_cast<T>(cpu::contiguous_input(alpha).data<T>()[0]);
    T* gxp = gxw.defined() ? gxw.data<T>() : nullptr;
    const T* gp = g.data<T>();
    const T* xp = base.data<T>();
    const int64_t n = gy.numel();
    double (*bwd)(T*, const T*, const T*, T, int64_t, int64_t) = pact_bwd_kernel<T>();
    backward_chunks<T>(galpha, n, 4, scale,
                       [&](int64_t lo_i, int64_t hi_i) { return bwd(gxp, gp, xp, a, lo_i, hi_i); });
    finish_output(gx, gxw);
  });
}

namespace cpu {
namespace {

class ClipBlockKernels final : public ActQuantBlockKernels {
 public:
  ClipBlockKernels(float a, LevelTable<float> table, double steps, double lo, double hi, bool has_levels, For use)
      : table_(std::move(table)) {
    F_ = clip_args<float>(nullptr, a, lo, hi, steps, table_, has_levels);
    Ffwd_ = F_;
    if (use == For::Forward) use_thresholds(Ffwd_, th_);
    fwd_ = pick_fwd(Ffwd_);
    bwd_ = pick_fused_bwd(F_);
    if (has_levels) bwd_codes_ = pick_fused_bwd(F_, true);  // backward_coded passes the codes
  }
  bool usable() const { return bwd_ != nullptr; }
  bool forward(float* q, uint8_t* codes, const float* y, int64_t n) const override {
    FwdArgs<float> A = Ffwd_;
    A.out = q;
    A.codes = codes;
    A.x = y;
    return fwd_(A, 0, n);
  }
  double backward(float* gx, const float* gy, const float* y, int64_t n) const override {
    FwdArgs<float> A = F_;
    A.x = y;
    return bwd_(A, gx, gy, 0, n);
  }
  double backward_coded(float* gx, const float* gy, const float* y, const uint8_t* codes, int64_t n) const override {
    if (bwd_codes_ == nullptr || codes == nullptr) return backward(gx, gy, y, n);
    FwdArgs<float> A = F_;
    A.x = y;
    A.level_codes = codes;
    return bwd_codes_(A, gx, gy, 0, n);
  }

 private:
  LevelTable<float> table_;  // F_ points into it
  LevelThresholds th_{};     // the forward's thresholds, when it runs the threshold kernel
  FwdArgs<float> F_{};       // the backward's arguments
  FwdArgs<float> Ffwd_{};    // the forward's: F_, plus th_ when used
  FwdFn<float> fwd_ = nullptr;
  FusedBwd<float> bwd_ = nullptr;
  FusedBwd<float> bwd_codes_ = nullptr;  // the same from the forward's codes (level sets)
};

// PACT's kernels (pact_range / pact_bwd_range at the widest level allowed) on a block: any float32 alpha.
class PactBlockKernels final : public ActQuantBlockKernels {
 public:
  PactBlockKernels(float a, double k)
      : a_(a), den_(static_cast<float>(static_cast<double>(a) + 1e-6)), k_(static_cast<float>(k)) {
    fwd_ = have_avx512() ? pact_avx512<float> : have_avx2() ? pact_avx2<float> : pact_base<float>;
    bwd_ = pact_bwd_kernel<float>();
  }
  bool forward(float* q, uint8_t* codes, const float* y, int64_t n) const override {
    return fwd_(q, nullptr, nullptr, codes, y, a_, den_, k_, 0, n);
  }
  double backward(float* gx, const float* gy, const float* y, int64_t n) const override {
    return bwd_(gx, gy, y, a_, 0, n);
  }

 private:
  float a_, den_, k_;  // as pact_fwd derives them from alpha (den: alpha + 1e-6 in double, then rounded)
  bool (*fwd_)(float*, uint8_t*, float*, uint8_t*, const float*, float, float, float, int64_t, int64_t) = nullptr;
  double (*bwd_)(float*, const float*, const float*, float, int64_t, int64_t) = nullptr;
};

}  // namespace

std::unique_ptr<ActQuantBlockKernels> ActQuantBlockKernels::make(const ActQuantizer& quantizer, For use) {
  static_assert(kChunk == kSumChunk, "the primitives' alpha-sum chunk");
  const Tensor& alpha = quantizer.alpha;
  if (!alpha.defined() || alpha.dtype() != DType::f32 || !alpha.device().is_cpu() || alpha.numel() != 1) return nullptr;
  const float a = cpu::contiguous_input(alpha).data<float>()[0];
  if (quantizer.is_pact()) {
    check_pact_args("pact (blocks)", alpha, alpha, quantizer.pact_k);  // alpha stands in for x: only its dtype is read
    return std::make_unique<PactBlockKernels>(a, quantizer.pact_k);
  }
  const char* op = "quantize_clip (blocks)";
  const Tensor& levels = quantizer.levels;
  if (levels.defined() && (levels.dtype() != DType::f32 || !levels.device().is_cpu())) return nullptr;
  check_clip_args(op, alpha, alpha, levels, quantizer.steps, quantizer.lo, quantizer.hi);
  auto k = std::make_unique<ClipBlockKernels>(a, level_table<float>(op, levels), quantizer.steps, quantizer.lo,
                                              quantizer.hi, levels.defined(), use);
  if (!k->usable()) return nullptr;
  return k;
}

void ActQuantBlockKernels::store(Tensor& galpha, const std::vector<double>& partial, double scale) {
  store_galpha<float>(galpha, partial, scale);
}

}  // namespace cpu
}  // namespace minidl
