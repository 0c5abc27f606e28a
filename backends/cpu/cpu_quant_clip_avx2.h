// Hand-written AVX2 kernel of the activation quantizer's forward (quantize_clip_forward, spec/quant.md section
// 1.7) for float32 level sets of at most 16 levels (APoT / PoT / uniform-as-levels up to 4 bits): the level index
// of each element is the count of midpoints below it, counted in registers, and the level is picked with two
// 8-entry permutes. It writes exactly the reference's values: no FMA (compiled for avx2 only), the same f32
// operations in the same order (v = x / a, clamp, the midpoint count, q * a, q - v * mask). Callers check
// cpu::isa_enabled(CpuIsa::Avx2) first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace minidl::cpu {

/// At most this many levels (the permute tables hold 16 entries).
constexpr size_t kQuantClipAvx2MaxLevels = 16;

/// Elements [0, n) with n a multiple of 8: out = q * a and, when mask is not null, mask (u8) = 1[v == c] and
/// coef = q - v * mask, for v = x / a, c = min(max(v, lo), hi), q = lv[k], k = the count of mid below c; when
/// codes is not null, codes (u8) = k. `nm` midpoints (nm + 1 levels, nm + 1 <= kQuantClipAvx2MaxLevels).
void quant_clip_levels_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x, int64_t n, float a,
                            float lo, float hi, const float* lv, const float* mid, size_t nm);

/// The forward without mask and coef from thresholds on x (as quant_clip_levels_by_thresholds_avx512, see there):
/// k = the number of t[j], j < 16, with x >= t[j] (a count; t ascending, padded with NaN), out = outs[k], codes
/// (when not null) = k; n a multiple of 8.
void quant_clip_levels_by_thresholds_avx2(float* out, uint8_t* codes, const float* x, int64_t n, const float* t,
                                          const float* outs);

/// The backward from the forward's input in one pass, for n a multiple of 8: with v, c, q, mask and coef as the
/// forward makes them, gx = gy * mask (gx null: skipped) and lane[j % 8] += double(gy * coef) for element j, in
/// order (the lanes of the cpu backend's alpha sum: its chunk loop continues them). No mask, coef or out reaches
/// memory.
void quant_clip_levels_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a,
                                     float lo, float hi, const float* lv, const float* mid, size_t nm);

/// The uniform grid (no level set: q = nearbyint(c * steps) / steps), n a multiple of 8: out, mask and coef as
/// quant_clip_levels_avx2; codes (when not null) = 1 + nearbyint(c * steps) for grid points 0..steps, 0 for -0
/// (quantize_clip_codebook's order). Returns false when an element has no code (NaN, or outside the grid).
bool quant_clip_grid_avx2(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x, int64_t n, float a,
                          float lo, float hi, float steps);

/// quant_clip_levels_backward_avx2 with the forward's codes (each element's level index, as the levels kernels give
/// it) in place of the midpoint count: the same gx and lanes, bit for bit, for codes that came from this x. nm: the
/// set's midpoints (levels - 1); n a multiple of 8.
void quant_clip_levels_backward_codes_avx2(float* gx, double* lane, const float* gy, const float* x,
                                           const uint8_t* codes, int64_t n, float a, float lo, float hi,
                                           const float* lv, size_t nm);

/// Its backward from the input, as quant_clip_levels_backward_avx2.
void quant_clip_grid_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a,
                                   float lo, float hi, float steps);

/// PACT's backward from its input over [0, n), n a multiple of 8: gx = gy * 1[0 < x < a] (gx null: skipped; gx may
/// be gy), and lane[j] (8 doubles, in and out) += gy * 1[x > a] of the elements j, j + 8, ..., in that order.
void pact_backward_avx2(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a);

}  // namespace minidl::cpu
