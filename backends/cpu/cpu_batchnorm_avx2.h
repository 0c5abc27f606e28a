// AVX2 kernels of the channels-last batch norm (cpu_batchnorm.cpp), float32 only: the same five row loops as the
// AVX-512 ones (cpu_batchnorm_avx512.h, which states each), 8 floats / 4 doubles per register, for hosts without
// AVX-512 (and MINIDL_CPU_ISA=avx2). Exactness as there: every kernel performs the portable loops' IEEE operations
// in their order, per element (float -> double conversions, multiply then add, never fused: built without FMA;
// sums per channel in row order), so the results are bit-identical at every ISA level. Channels beyond the last
// full group of 8 run the same operations in scalar code. Callers check cpu::isa_enabled(CpuIsa::Avx2) first.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_batchnorm_mask.h"

namespace minidl::cpu {

void bn_sum_rows_avx2(const float* x, int64_t r0, int64_t r1, int64_t C, double* m);
void bn_sqdev_rows_avx2(const float* x, int64_t r0, int64_t r1, int64_t C, const double* m, double* q);
void bn_affine_rows_avx2(float* y, const float* x, const float* res, int64_t r0, int64_t r1, int64_t C, const float* a,
                         const float* b, bool relu);
void bn_bwd_sums_rows_avx2(const float* x, const float* gy, const BnReluMask& mask, float* mask_out, int64_t r0,
                           int64_t r1, int64_t C, const double* m, double* acc, double* acc2);
void bn_bwd_dx_rows_avx2(float* gx, const float* gy, const BnReluMask& mask, const float* x, int64_t r0, int64_t r1,
                         int64_t C, const float* a, const float* b, const float* d, const float* mu);

}  // namespace minidl::cpu
