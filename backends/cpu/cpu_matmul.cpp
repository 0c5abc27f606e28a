// Matrix multiply of the cpu backend: f32 through oneDNN's dnnl_sgemm (JIT, picks the host ISA by itself; Debian's
// OpenBLAS 0.3.21 misdetects some CPUs and would need OPENBLAS_CORETYPE), f64 through OpenBLAS cblas_dgemm.
// Row- or column-major strided operands are passed with their leading dimension (a column-major operand is a
// transposed row-major one); anything else (broadcast, sliced both ways) is made contiguous first. Batched
// (B,M,K)@(B,K,N), with a 2-D operand broadcast over the batch.
#include <cblas.h>

#include <atomic>
#include <dnnl.hpp>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

// One stored matrix operand: row-major with leading dimension `ld`, used transposed when `trans`.
struct MatArg {
  const void* p = nullptr;
  int64_t ld = 1;
  bool trans = false;
};

// Describes the stored (r x c) matrix at `base` with strides (sr, sc) as a BLAS operand; false when neither
// row- nor column-major.
bool as_blas(int64_t r, int64_t c, int64_t sr, int64_t sc, bool trans, MatArg& m) {
  if ((sc == 1 || c == 1) && (r == 1 || sr >= std::max<int64_t>(c, 1))) {
    m.ld = r == 1 ? std::max<int64_t>(c, 1) : sr;
    m.trans = trans;
    return true;
  }
  if ((sr == 1 || r == 1) && (c == 1 || sc >= std::max<int64_t>(r, 1))) {
    m.ld = c == 1 ? std::max<int64_t>(r, 1) : sc;
    m.trans = !trans;
    return true;
  }
  return false;
}

// Returns 0 on success, else dnnl_sgemm's status (never throws: it runs inside OpenMP regions).
template <typename T>
int gemm(int64_t M, int64_t N, int64_t K, const MatArg& a, const MatArg& b, T* c) {
  if constexpr (std::is_same_v<T, float>) {
    const auto st = dnnl_sgemm(a.trans ? 'T' : 'N', b.trans ? 'T' : 'N', M, N, K, 1.0f, static_cast<const float*>(a.p),
                               a.ld, static_cast<const float*>(b.p), b.ld, 0.0f, c, std::max<int64_t>(N, 1));
    return st == dnnl_success ? 0 : static_cast<int>(st);
  } else {
    cblas_dgemm(CblasRowMajor, a.trans ? CblasTrans : CblasNoTrans, b.trans ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), 1.0,
                static_cast<const double*>(a.p), static_cast<blasint>(a.ld), static_cast<const double*>(b.p),
                static_cast<blasint>(b.ld), 0.0, c, static_cast<blasint>(std::max<int64_t>(N, 1)));
    return 0;
  }
}

}  // namespace

void CpuBackend::matmul(Tensor& out, const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  cpu::check_cpu(op, "a", a_in);
  cpu::check_cpu(op, "b", b_in);
  cpu::check_cpu(op, "out", out);
  if (!is_floating(a_in.dtype())) cpu::unsupported(op, a_in.dtype());
  MINIDL_CHECK(a_in.dtype() == b_in.dtype() && out.dtype() == a_in.dtype(), op, " (backend cpu): dtypes differ: a ",
               dtype_name(a_in.dtype()), ", b ", dtype_name(b_in.dtype()), ", out ", dtype_name(out.dtype()));
  const int64_t ra = a_in.dim(), rb = b_in.dim();
  MINIDL_CHECK((ra == 2 || ra == 3) && (rb == 2 || rb == 3), op, " (backend cpu): operands must be 2-D or 3-D, got ",
               shape_str(a_in.sizes()), " and ", shape_str(b_in.sizes()));
  const int64_t Ba = ra == 3 ? a_in.sizes()[0] : 1, Bb = rb == 3 ? b_in.sizes()[0] : 1;
  MINIDL_CHECK(ra == 2 || rb == 2 || Ba == Bb, op, " (backend cpu): batch sizes differ: ", shape_str(a_in.sizes()),
               " and ", shape_str(b_in.sizes()));
  const int64_t B = std::max(Ba, Bb);
  const int64_t ar = a_in.sizes()[ra - 2], ac = a_in.sizes()[ra - 1];
  const int64_t br = b_in.sizes()[rb - 2], bc = b_in.sizes()[rb - 1];
  const int64_t M = trans_a ? ac : ar, K = trans_a ? ar : ac;
  const int64_t Kb = trans_b ? bc : br, N = trans_b ? br : bc;
  MINIDL_CHECK(K == Kb, op, " (backend cpu): inner dimensions differ: a ", shape_str(a_in.sizes()),
               trans_a ? " (transposed)" : "", ", b ", shape_str(b_in.sizes()), trans_b ? " (transposed)" : "");
  const Shape want = (ra == 3 || rb == 3) ? Shape{B, M, N} : Shape{M, N};
  cpu::check_tensor(op, "out", out, a_in.dtype(), want);
  MINIDL_CHECK(out.is_contiguous(), op, " (backend cpu): out must be contiguous");
  if (out.numel() == 0) return;
  if (K == 0) {
    fill(out, 0.0);
    return;
  }
  // Operand geometry: make contiguous when not BLAS-describable.
  auto prepare = [&](const Tensor& t, int64_t rank, int64_t r, int64_t c, bool trans, MatArg& m, int64_t& bstride,
                     Tensor& keep) {
    keep = t;
    int64_t sr = t.strides()[rank - 2], sc = t.strides()[rank - 1];
    if (!as_blas(r, c, sr, sc, trans, m)) {
      keep = cpu::contiguous_input(t);
      as_blas(r, c, keep.strides()[rank - 2], keep.strides()[rank - 1], trans, m);
    }
    bstride = rank == 3 ? keep.strides()[0] : 0;
  };
  MatArg ma, mb;
  int64_t sa = 0, sb = 0;
  Tensor ka, kb;
  prepare(a_in, ra, ar, ac, trans_a, ma, sa, ka);
  prepare(b_in, rb, br, bc, trans_b, mb, sb, kb);
  dispatch_floating(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(ka.raw_data());
    const T* pb = static_cast<const T*>(kb.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    std::atomic<int> failed{0};
    auto one = [&](int64_t i) {
      MatArg x = ma, y = mb;
      x.p = pa + i * sa;
      y.p = pb + i * sb;
      if (const int st = gemm<T>(M, N, K, x, y, po + i * M * N)) failed.store(st);
    };
    // many small products: one gemm per thread; otherwise let the gemm use the threads
    if (B > 1 && M * N * K < (1 << 18)) {
      cpu::parallel_for(B, M * N * K / 8 + 1, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < B; ++i) one(i);
    }
    MINIDL_CHECK(failed.load() == 0, op, " (backend cpu): dnnl_sgemm failed with status ", failed.load(), " for M=", M,
                 " N=", N, " K=", K);
  });
}

}  // namespace minidl
