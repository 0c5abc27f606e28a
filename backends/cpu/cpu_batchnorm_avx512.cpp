// The channels-last batch norm's AVX-512 kernels (cpu_batchnorm_kernels.h): the row loops of
// cpu_batchnorm_kernels.inc at 16 floats / 8 doubles per register. No FMA anywhere: the portable code, built for
// baseline x86-64, multiplies and adds separately, and so must these (AVX-512F brings FMA; this file builds with
// -ffp-contract=off).
#include <immintrin.h>

#include "backends/cpu/cpu_batchnorm_kernels.h"

// GCC 12 reports its own AVX-512 intrinsics' "undefined" pass-through operands (_mm512_undefined_pd inside
// _mm512_cvtps_pd, _mm512_max_ps, ...) as maybe-uninitialized once they are inlined here: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace minidl::cpu {
namespace {
namespace avx512 {

#define MINIDL_BN_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
using VF = __m512;
using VD = __m512d;
constexpr int64_t kLanes = 16;
MINIDL_BN_TARGET inline VF vload(const float* p) { return _mm512_loadu_ps(p); }
MINIDL_BN_TARGET inline void vstore(float* p, VF v) { _mm512_storeu_ps(p, v); }
MINIDL_BN_TARGET inline VF vadd(VF a, VF b) { return _mm512_add_ps(a, b); }
MINIDL_BN_TARGET inline VF vsub(VF a, VF b) { return _mm512_sub_ps(a, b); }
MINIDL_BN_TARGET inline VF vmul(VF a, VF b) { return _mm512_mul_ps(a, b); }
MINIDL_BN_TARGET inline VF vmax(VF a, VF b) { return _mm512_max_ps(a, b); }
MINIDL_BN_TARGET inline VF vzero() { return _mm512_setzero_ps(); }
MINIDL_BN_TARGET inline VD dload(const double* p) { return _mm512_loadu_pd(p); }
MINIDL_BN_TARGET inline void dstore(double* p, VD v) { _mm512_storeu_pd(p, v); }
MINIDL_BN_TARGET inline VD dadd(VD a, VD b) { return _mm512_add_pd(a, b); }
MINIDL_BN_TARGET inline VD dsub(VD a, VD b) { return _mm512_sub_pd(a, b); }
MINIDL_BN_TARGET inline VD dmul(VD a, VD b) { return _mm512_mul_pd(a, b); }
MINIDL_BN_TARGET inline VD lo_pd(VF v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
MINIDL_BN_TARGET inline VD hi_pd(VF v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
// g under a compare mask, zeroed (+0) elsewhere
MINIDL_BN_TARGET inline VF keep_positive(VF g, VF v) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), g);
}
#include "backends/cpu/cpu_batchnorm_kernels.inc"
#undef MINIDL_BN_TARGET

}  // namespace avx512
}  // namespace

const BnRowKernels& bn_row_kernels_avx512() { return avx512::kRowKernels; }

}  // namespace minidl::cpu
