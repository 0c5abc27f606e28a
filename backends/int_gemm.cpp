// Integer GEMM entry points (see int_gemm.h). The scalar oracle lives here; fast kernels plug in below.
#include "backends/int_gemm.h"

#include <limits>

#include "core/error.h"

namespace minidl::backends {

namespace {

void check_gemm_args(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, const int32_t* c,
                     int64_t ldc) {
  MINIDL_CHECK(m >= 0, "gemm_u8s8_s32: m must be >= 0, got ", m);
  MINIDL_CHECK(lda >= b.depth(), "gemm_u8s8_s32: lda ", lda, " is below the depth ", b.depth());
  MINIDL_CHECK(ldc >= b.rows(), "gemm_u8s8_s32: ldc ", ldc, " is below the weight rows ", b.rows());
  MINIDL_CHECK(m == 0 || b.rows() == 0 || ((a != nullptr || b.depth() == 0) && c != nullptr),
               "gemm_u8s8_s32: null input or output pointer");
}

}  // namespace

PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb) {
  MINIDL_CHECK(n >= 0 && k >= 0, "pack_int8_weights: sizes must be >= 0, got n=", n, " k=", k);
  MINIDL_CHECK(ldb >= k, "pack_int8_weights: ldb ", ldb, " is below k ", k);
  // The worst sum is k * 255 * 128 in magnitude; it must fit an int32 exactly.
  MINIDL_CHECK(k <= std::numeric_limits<int32_t>::max() / (255 * 128), "pack_int8_weights: depth ", k,
               " is too large for an exact int32 sum");
  MINIDL_CHECK(n * k == 0 || b != nullptr, "pack_int8_weights: null weight codes");
  PackedInt8Weights p;
  p.n_ = n;
  p.k_ = k;
  p.codes_.resize(static_cast<size_t>(n * k));
  p.row_sums_.assign(static_cast<size_t>(n), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t q = 0; q < k; ++q) {
      const int8_t v = b[j * ldb + q];
      p.codes_[static_cast<size_t>(j * k + q)] = v;
      p.row_sums_[static_cast<size_t>(j)] += v;
    }
  return p;
}

void gemm_u8s8_s32_ref(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  check_gemm_args(m, a, lda, b, c, ldc);
  const int64_t n = b.rows(), k = b.depth();
  const int8_t* w = b.codes().data();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int64_t q = 0; q < k; ++q) s += int32_t{a[i * lda + q]} * int32_t{w[j * k + q]};
      c[i * ldc + j] = s;
    }
}

void gemm_u8s8_s32(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  gemm_u8s8_s32_ref(m, a, lda, b, c, ldc);
}

}  // namespace minidl::backends
