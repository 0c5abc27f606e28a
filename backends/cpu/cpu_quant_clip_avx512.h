// The AVX-512 variant of the activation quantizer's levels kernel (cpu_quant_clip_avx2.h): 16 elements per zmm,
// the level index counted into a mask-added integer vector and the level picked with one 16-entry permute. Same
// values as the AVX2 kernel and the reference, bit for bit: the same f32 operations in the same order (v = x / a,
// clamp, the midpoint count, q * a, q - v * mask), no FMA (its file is built with -ffp-contract=off). Callers check
// cpu::isa_enabled(CpuIsa::Avx512) first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace minidl::cpu {

/// As quant_clip_levels_avx2 (same arguments and outputs), for n a multiple of 16.
void quant_clip_levels_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x, int64_t n,
                              float a, float lo, float hi, const float* lv, const float* mid, size_t nm);

/// The same forward without mask and coef, from thresholds on x instead of a division: the level index is the number
/// of entries t[j] with x >= t[j] (a four-step binary search; t ascending, padded with NaN, which no x reaches),
/// out = outs[k] and codes (when not null) = k. The caller derives t[j] as the smallest float x whose index by
/// quant_clip_levels_avx512 is at least j + 1 (that index only grows with x) and outs[k] = lv[k] * a as that kernel
/// rounds it, so both kernels give the same bits, NaN included (index 0); n a multiple of 16.
void quant_clip_levels_by_thresholds_avx512(float* out, uint8_t* codes, const float* x, int64_t n, const float* t,
                                            const float* outs);

/// The backward from the forward's input in one pass, for n a multiple of 16: with v, c, q, mask and coef as the
/// forward makes them, gx = gy * mask (gx null: skipped) and lane[j % 8] += double(gy * coef) for element j, in
/// order (the lanes of the cpu backend's alpha sum: its chunk loop continues them). No mask, coef or out reaches
/// memory.
void quant_clip_levels_backward_avx512(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a,
                                       float lo, float hi, const float* lv, const float* mid, size_t nm);

/// quant_clip_levels_backward_avx512 with the forward's codes (each element's level index) in place of the search:
/// the same gx and lanes, bit for bit, for codes that came from this x; nm: the set's midpoints (levels - 1); n a
/// multiple of 16.
void quant_clip_levels_backward_codes_avx512(float* gx, double* lane, const float* gy, const float* x,
                                             const uint8_t* codes, int64_t n, float a, float lo, float hi,
                                             const float* lv, size_t nm);

/// The uniform grid (no level set: q = nearbyint(c * steps) / steps), n a multiple of 16: out, mask and coef as
/// quant_clip_levels_avx512; codes (when not null) = 1 + nearbyint(c * steps) for grid points 0..steps, 0 for -0
/// (quantize_clip_codebook's order). Returns false when an element has no code (NaN, or outside the grid).
bool quant_clip_grid_avx512(float* out, uint8_t* mask, float* coef, uint8_t* codes, const float* x, int64_t n, float a,
                            float lo, float hi, float steps);

/// Its backward from the input, as quant_clip_levels_backward_avx512.
void quant_clip_grid_backward_avx512(float* gx, double* lane, const float* gy, const float* x, int64_t n, float a,
                                     float lo, float hi, float steps);

}  // namespace minidl::cpu
