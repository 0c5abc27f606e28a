// AVX-512 kernels of the channels-last batch norm (cpu_batchnorm.cpp), float32 only: the row loops of the
// statistics, the affine pass and the backward, over blocks of rows with C contiguous channels per row.
// Exactness: every kernel performs the same IEEE operations in the same order, per element, as the portable
// loops it replaces (float -> double conversions, multiply then add, never fused; sums per channel in row order),
// so results are bit-identical at every ISA level; only more lanes run at once. Channels beyond the last full
// group of 16 (8 for the double sums) run the same operations in scalar code. Callers check
// cpu::isa_enabled(CpuIsa::Avx512) first.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_batchnorm_mask.h"

namespace minidl::cpu {

/// m[c] += double(x[r * C + c]) for rows r in [r0, r1), in row order.
void bn_sum_rows_avx512(const float* x, int64_t r0, int64_t r1, int64_t C, double* m);
/// q[c] += d * d with d = double(x[r * C + c]) - m[c], for rows r in [r0, r1), in row order.
void bn_sqdev_rows_avx512(const float* x, int64_t r0, int64_t r1, int64_t C, const double* m, double* q);
/// y = x * a[c] + b[c] (float32), + res when res is not null, then max(., 0) when relu (NaN gives 0, as the
/// portable `v > 0 ? v : 0`), for rows [r0, r1).
void bn_affine_rows_avx512(float* y, const float* x, const float* res, int64_t r0, int64_t r1, int64_t C,
                           const float* a, const float* b, bool relu);
/// Backward's reduction over rows [r0, r1): g = gy, or gy where the mask (cpu_batchnorm_mask.h) holds and +0
/// elsewhere (a ReLU mask); mask_out[r * C + c] = g when mask_out is not null; acc[c] += double(g);
/// acc2[c] += double(g) * (double(x) - m[c]).
void bn_bwd_sums_rows_avx512(const float* x, const float* gy, const BnReluMask& mask, float* mask_out, int64_t r0,
                             int64_t r1, int64_t C, const double* m, double* acc, double* acc2);
/// Backward's second pass over rows [r0, r1): gx = (a[c] * g + b[c] * (x - mu[c])) + d[c] in float32, g = gy or
/// gy masked as above.
void bn_bwd_dx_rows_avx512(float* gx, const float* gy, const BnReluMask& mask, const float* x, int64_t r0, int64_t r1,
                           int64_t C, const float* a, const float* b, const float* d, const float* mu);

}  // namespace minidl::cpu
