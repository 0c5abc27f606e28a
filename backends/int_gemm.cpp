// Integer GEMM entry points (see int_gemm.h): packing, the scalar oracle, and the run-time choice of kernel
// (backends/int_gemm_x86.cpp) with OpenMP over the rows of A.
#include "backends/int_gemm.h"

#include <omp.h>

#include <algorithm>
#include <limits>

#include "backends/int_gemm_x86.h"
#include "core/cpu_isa.h"
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

// The oracle's loop: row i of A against every row of B's codes as given.
void scalar_rows(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  const int64_t n = b.rows(), k = b.depth();
  const int8_t* w = b.codes().data();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int64_t q = 0; q < k; ++q) s += int32_t{a[i * lda + q]} * int32_t{w[j * k + q]};
      c[i * ldc + j] = s;
    }
}

// The largest window PackedInt8Weights::maddubs_window reports: 64 groups (256 codes) widen once, which is
// already rare next to the products; larger windows would gain nothing.
constexpr int kMaxMaddubsWindow = 64;

// PackedInt8Weights::maddubs_window: the largest W in {64, ..., 2, 1} for which every int16 lane of W groups'
// vpmaddubsw products stays in range for inputs up to max_input, else 0.
int maddubs_window_of(const int8_t* b, int64_t n, int64_t k, int64_t ldb, int max_input) {
  const int pos_cap = 32767 / max_input, neg_cap = 32768 / max_input;
  for (int w = kMaxMaddubsWindow; w >= 1; w /= 2) {
    bool ok = true;
    for (int64_t j = 0; j < n && ok; ++j)
      for (int64_t q0 = 0; q0 < k && ok; q0 += 4 * w)  // q0: the window's first code
        for (int64_t h = 0; h < 2 && ok; ++h) {        // the lane's pair inside each group
          int pos = 0, neg = 0;
          for (int64_t q = q0 + 2 * h; q < std::min(k, q0 + 4 * w); q += 4)
            for (int64_t e = 0; e < 2 && q + e < k; ++e) {
              const int v = b[j * ldb + q + e];
              pos += std::max(v, 0);
              neg += std::min(v, 0);
            }
          ok = pos <= pos_cap && -neg <= neg_cap;
        }
    if (ok) return w;
  }
  return 0;
}

// Below this many multiply-adds a call runs on one thread: a parallel region costs a few microseconds, about
// what an AVX2 core needs for 2^18 of them.
constexpr int64_t kParallelMacs = int64_t{1} << 18;
// Rows per thread are a multiple of this (the AVX-512 kernel's row block; a multiple of the AVX2 one's).
constexpr int64_t kRowQuantum = 8;

// One column block of the blocked layout: 4 codes x 16 columns.
constexpr int64_t kGroupCols = 16, kGroupDepth = 4;

void run_kernel(IntGemmKernel kernel, int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c,
                int64_t ldc) {
  const int64_t n = b.rows(), k = b.depth();
  const int8_t* bp = b.blocked().data();
  switch (kernel) {
    case IntGemmKernel::Scalar: scalar_rows(m, a, lda, b, c, ldc); return;
    case IntGemmKernel::Avx2:
      if (b.maddubs_window() == 0) {
        detail::int_gemm_avx2_wide(m, a, lda, b.wide().data(), n, k, c, ldc);
      } else {
        detail::int_gemm_avx2(m, a, lda, bp, n, k, b.maddubs_window(), c, ldc);
      }
      return;
    case IntGemmKernel::AvxVnni: detail::int_gemm_avx_vnni(m, a, lda, bp, n, k, c, ldc); return;
    case IntGemmKernel::Avx512Vnni: detail::int_gemm_avx512_vnni(m, a, lda, bp, n, k, c, ldc); return;
  }
}

// Splits the rows among OpenMP threads (contiguous ranges, multiples of kRowQuantum) when the call is large.
void run_parallel(IntGemmKernel kernel, int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b,
                  int32_t* c, int64_t ldc) {
  if (m == 0 || b.rows() == 0) return;
  const int64_t macs = m * b.rows() * b.depth();
  const int64_t quanta = (m + kRowQuantum - 1) / kRowQuantum;
  // inside a parallel region (a caller parallel over images) the call stays on its thread
  const int nt = macs < kParallelMacs || omp_in_parallel() != 0
                     ? 1
                     : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), quanta));
  if (nt <= 1) {
    run_kernel(kernel, m, a, lda, b, c, ldc);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t per = (quanta + nth - 1) / nth * kRowQuantum;
    const int64_t lo = std::min(m, t * per), hi = std::min(m, lo + per);
    if (lo < hi) run_kernel(kernel, hi - lo, a + lo * lda, lda, b, c + lo * ldc, ldc);
  }
}

}  // namespace

const char* int_gemm_kernel_name(IntGemmKernel kernel) {
  switch (kernel) {
    case IntGemmKernel::Scalar: return "scalar";
    case IntGemmKernel::Avx2: return "avx2";
    case IntGemmKernel::AvxVnni: return "avx-vnni";
    case IntGemmKernel::Avx512Vnni: return "avx512-vnni";
  }
  return "?";
}

bool int_gemm_kernel_runnable(IntGemmKernel kernel) {
  switch (kernel) {
    case IntGemmKernel::Scalar: return true;
    case IntGemmKernel::Avx2: return cpu::isa_enabled(cpu::CpuIsa::Avx2);
    // VEX-encoded ymm: an AVX2-level instruction, on hosts with the AVX-VNNI cpuid bit
    case IntGemmKernel::AvxVnni: return cpu::isa_enabled(cpu::CpuIsa::Avx2) && detail::host_has_avx_vnni();
    case IntGemmKernel::Avx512Vnni: return cpu::isa_enabled(cpu::CpuIsa::Avx512) && detail::host_has_avx512_vnni();
  }
  return false;
}

IntGemmKernel int_gemm_kernel() {
  for (IntGemmKernel k : {IntGemmKernel::Avx512Vnni, IntGemmKernel::AvxVnni, IntGemmKernel::Avx2})
    if (int_gemm_kernel_runnable(k)) return k;
  return IntGemmKernel::Scalar;
}

PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb, int max_input) {
  MINIDL_CHECK(n >= 0 && k >= 0, "pack_int8_weights: sizes must be >= 0, got n=", n, " k=", k);
  MINIDL_CHECK(max_input >= 1 && max_input <= 255, "pack_int8_weights: max_input must be in 1..255, got ", max_input);
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
  p.max_input_ = max_input;
  p.maddubs_window_ = maddubs_window_of(b, n, k, ldb, max_input);
  // Every kernel reads the same layout (int_gemm.h, kInt8LayoutK4N16), packed whatever the host: the ISA cap
  // may change between packing and a call (tests), and the copy is small (N x K bytes, padded).
  if (n > 0 && k > 0) {
    const int64_t groups = (k + kGroupDepth - 1) / kGroupDepth, blocks = (n + kGroupCols - 1) / kGroupCols;
    p.blocked_.assign(static_cast<size_t>(blocks * groups * kGroupCols * kGroupDepth), 0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t q = 0; q < k; ++q) {
        const int64_t at = ((j / kGroupCols) * groups + q / kGroupDepth) * kGroupCols * kGroupDepth +
                           (j % kGroupCols) * kGroupDepth + q % kGroupDepth;
        p.blocked_[static_cast<size_t>(at)] = b[j * ldb + q];
      }
    p.layout_ = kInt8LayoutK4N16;
    if (n <= kGroupCols) {
      const int64_t pairs = (groups + 1) / 2;
      p.paired_.assign(static_cast<size_t>(pairs * 128), 0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t q = 0; q < k; ++q) {
          const int64_t g = q / kGroupDepth;
          const int64_t at = (g / 2) * 128 + (j / 8) * 64 + (j % 8) * 8 + (g % 2) * 4 + q % kGroupDepth;
          p.paired_[static_cast<size_t>(at)] = b[j * ldb + q];
        }
    }
    if (p.maddubs_window_ == 0) {  // 8-bit codes: the AVX2 kernel's int16 copy
      const int64_t pairs = (k + 1) / 2;
      p.wide_.assign(static_cast<size_t>(blocks * pairs * kGroupCols * 2), 0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t q = 0; q < k; ++q) {
          const int64_t at = ((j / kGroupCols) * pairs + q / 2) * kGroupCols * 2 + (j % kGroupCols) * 2 + q % 2;
          p.wide_[static_cast<size_t>(at)] = b[j * ldb + q];
        }
    }
  }
  return p;
}

void gemm_u8s8_s32_ref(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  check_gemm_args(m, a, lda, b, c, ldc);
  scalar_rows(m, a, lda, b, c, ldc);
}

void gemm_u8s8_s32_with(IntGemmKernel kernel, int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b,
                        int32_t* c, int64_t ldc) {
  check_gemm_args(m, a, lda, b, c, ldc);
  MINIDL_CHECK(int_gemm_kernel_runnable(kernel), "gemm_u8s8_s32: the ", int_gemm_kernel_name(kernel),
               " kernel cannot run here (host without its instructions, or MINIDL_CPU_ISA caps them; active level ",
               cpu::isa_name(cpu::active_isa()), ")");
  // k = 0: every sum is empty (the kernels' layouts need k > 0)
  if (b.depth() == 0 || (kernel != IntGemmKernel::Scalar && b.layout() != kInt8LayoutK4N16)) {
    kernel = IntGemmKernel::Scalar;
  }
  run_parallel(kernel, m, a, lda, b, c, ldc);
}

bool gemm_u8s8_s32_segments_runnable(const PackedInt8Weights& b, int64_t seg_len) {
  if (seg_len <= 0 || seg_len % 4 != 0 || b.layout() != kInt8LayoutK4N16) return false;
  const IntGemmKernel kernel = int_gemm_kernel();
  return kernel == IntGemmKernel::Avx512Vnni || (kernel == IntGemmKernel::Avx2 && b.maddubs_window() >= 1);
}

void gemm_u8s8_s32_segments(int64_t m, const uint8_t* const* rows, int64_t pieces, int64_t seg_len, int64_t seg_stride,
                            const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  MINIDL_CHECK(gemm_u8s8_s32_segments_runnable(b, seg_len), "gemm_u8s8_s32_segments: not runnable (kernel ",
               int_gemm_kernel_name(int_gemm_kernel()), ", piece length ", seg_len, ")");
  MINIDL_CHECK(m >= 0 && pieces > 0 && pieces * seg_len == b.depth() && ldc >= b.rows() &&
                   (pieces == 1 || seg_stride >= seg_len) && (m == 0 || (rows != nullptr && c != nullptr)),
               "gemm_u8s8_s32_segments: bad sizes (m ", m, ", ", pieces, " pieces of ", seg_len, " every ", seg_stride,
               " bytes, depth ", b.depth(), ", ldc ", ldc, ")");
  if (m == 0 || b.rows() == 0) return;
  if (int_gemm_kernel() == IntGemmKernel::Avx2) {
    detail::int_gemm_avx2_segments(m, rows, pieces, seg_len, seg_stride, b.blocked().data(), b.rows(),
                                   b.maddubs_window(), c, ldc);
  } else if (!b.paired().empty() && (seg_len / 4) % 2 == 0) {
    detail::int_gemm_avx512_vnni_segments_paired(m, rows, pieces, seg_len, seg_stride, b.paired().data(), b.rows(), c,
                                                 ldc);
  } else {
    detail::int_gemm_avx512_vnni_segments(m, rows, pieces, seg_len, seg_stride, b.blocked().data(), b.rows(), c, ldc);
  }
}

void gemm_u8s8_s32(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc) {
  gemm_u8s8_s32_with(int_gemm_kernel(), m, a, lda, b, c, ldc);
}

}  // namespace minidl::backends
