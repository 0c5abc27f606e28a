// The channels-last batch norm's AVX2 kernels (cpu_batchnorm_kernels.h): the row loops of cpu_batchnorm_kernels.inc
// at 8 floats / 4 doubles per register. Built for "avx2" without "fma" (and with -ffp-contract=off): the portable
// loops multiply and add separately, and so must these.
#include <immintrin.h>

#include "backends/cpu/cpu_batchnorm_kernels.h"

namespace minidl::cpu {
namespace {
namespace avx2 {

#define MINIDL_BN_TARGET __attribute__((target("avx2")))
using VF = __m256;
using VD = __m256d;
constexpr int64_t kLanes = 8;
MINIDL_BN_TARGET inline VF vload(const float* p) { return _mm256_loadu_ps(p); }
MINIDL_BN_TARGET inline void vstore(float* p, VF v) { _mm256_storeu_ps(p, v); }
MINIDL_BN_TARGET inline VF vadd(VF a, VF b) { return _mm256_add_ps(a, b); }
MINIDL_BN_TARGET inline VF vsub(VF a, VF b) { return _mm256_sub_ps(a, b); }
MINIDL_BN_TARGET inline VF vmul(VF a, VF b) { return _mm256_mul_ps(a, b); }
MINIDL_BN_TARGET inline VF vmax(VF a, VF b) { return _mm256_max_ps(a, b); }
MINIDL_BN_TARGET inline VF vzero() { return _mm256_setzero_ps(); }
MINIDL_BN_TARGET inline VD dload(const double* p) { return _mm256_loadu_pd(p); }
MINIDL_BN_TARGET inline void dstore(double* p, VD v) { _mm256_storeu_pd(p, v); }
MINIDL_BN_TARGET inline VD dadd(VD a, VD b) { return _mm256_add_pd(a, b); }
MINIDL_BN_TARGET inline VD dsub(VD a, VD b) { return _mm256_sub_pd(a, b); }
MINIDL_BN_TARGET inline VD dmul(VD a, VD b) { return _mm256_mul_pd(a, b); }
MINIDL_BN_TARGET inline VD lo_pd(VF v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
MINIDL_BN_TARGET inline VD hi_pd(VF v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
// an all-ones / all-zeros compare ANDed with g's bits, as relu_mask
MINIDL_BN_TARGET inline VF keep_positive(VF g, VF v) {
  return _mm256_and_ps(g, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
}
#include "backends/cpu/cpu_batchnorm_kernels.inc"
#undef MINIDL_BN_TARGET

}  // namespace avx2
}  // namespace

const BnRowKernels& bn_row_kernels_avx2() { return avx2::kRowKernels; }

}  // namespace minidl::cpu
