// The channels-last batch norm's vector kernels (cpu_batchnorm.cpp), float32 only: the row loops of the statistics,
// the affine pass and the backward, over blocks of rows with C contiguous channels per row, once per ISA
// (cpu_batchnorm_kernels.inc, included by cpu_batchnorm_avx2.cpp and cpu_batchnorm_avx512.cpp).
// Exactness: every kernel performs the same IEEE operations in the same order, per element, as the portable loops
// it replaces (float -> double conversions, multiply then add, never fused; sums per channel in row order), so the
// results are bit-identical at every ISA level; only more lanes run at once. Channels beyond the last full vector
// run the same operations in scalar code.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace minidl::cpu {

/// The ReLU backward mask of the portable loops and the kernels' scalar tails: g where y > 0, else +0 (also where y
/// is NaN). A bit mask rather than a select, so that the portable loops vectorise it (a float select stays scalar),
/// and a non-finite g still gives 0 where masked.
template <typename T>
inline T relu_mask(T g, T y) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const U keep = U(0) - static_cast<U>(y > T(0));
  return std::bit_cast<T>(static_cast<U>(std::bit_cast<U>(g) & keep));
}

/// Where the backward's ReLU mask comes from: none (no ReLU: every field null), the ReLU's output (y > 0), or the
/// forward's affine recomputed from x (x * a[c] + b[c] > 0 in float32, multiply then add: the forward's value
/// before max(., 0), so the same mask as its y > 0, NaN included).
struct BnReluMask {
  const float* y = nullptr;
  const float* a = nullptr;
  const float* b = nullptr;
};

/// The five row loops of one ISA.
struct BnRowKernels {
  /// m[c] += double(x[r * C + c]) for rows r in [r0, r1), in row order.
  void (*sum_rows)(const float* x, int64_t r0, int64_t r1, int64_t C, double* m);
  /// q[c] += d * d with d = double(x[r * C + c]) - m[c], for rows r in [r0, r1), in row order.
  void (*sqdev_rows)(const float* x, int64_t r0, int64_t r1, int64_t C, const double* m, double* q);
  /// y = x * a[c] + b[c] (float32), + res when res is not null, then max(., 0) when relu (NaN gives 0, as the
  /// portable `v > 0 ? v : 0`), for rows [r0, r1).
  void (*affine_rows)(float* y, const float* x, const float* res, int64_t r0, int64_t r1, int64_t C, const float* a,
                      const float* b, bool relu);
  /// Backward's reduction over rows [r0, r1): g = gy, or gy where the mask holds and +0 elsewhere (a ReLU mask);
  /// mask_out[r * C + c] = g when mask_out is not null; acc[c] += double(g); acc2[c] += double(g) * (double(x) -
  /// m[c]).
  void (*bwd_sums_rows)(const float* x, const float* gy, const BnReluMask& mask, float* mask_out, int64_t r0,
                        int64_t r1, int64_t C, const double* m, double* acc, double* acc2);
  /// Backward's second pass over rows [r0, r1): gx = (a[c] * g + b[c] * (x - mu[c])) + d[c] in float32, g = gy or
  /// gy masked as above.
  void (*bwd_dx_rows)(float* gx, const float* gy, const BnReluMask& mask, const float* x, int64_t r0, int64_t r1,
                      int64_t C, const float* a, const float* b, const float* d, const float* mu);
};

/// The AVX2 kernels (8 floats per register) and the AVX-512 ones (16). Run them only where cpu::isa_enabled says
/// the level is there and allowed.
const BnRowKernels& bn_row_kernels_avx2();
const BnRowKernels& bn_row_kernels_avx512();

}  // namespace minidl::cpu
