// Ref matmul: out (M,N) = op(a) @ op(b), or batched (B,M,N) = (B,M,K) @ (B,K,N), op = transpose when trans_*.
// A transpose is just swapped indices into a's strides; the triple loop accumulates in double.
#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {

void RefBackend::matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  ref::check_host(out, "matmul", "out");
  ref::check_host(a, "matmul", "a");
  ref::check_host(b, "matmul", "b");
  MINIDL_CHECK((a.dim() == 2 || a.dim() == 3) && b.dim() == a.dim() && out.dim() == a.dim(),
               "ref matmul: expected 2-D or batched 3-D operands of equal rank, got a ", shape_str(a.sizes()),
               ", b ", shape_str(b.sizes()), ", out ", shape_str(out.sizes()));
  ref::check_dtype(b, a.dtype(), "matmul", "b");
  ref::check_dtype(out, a.dtype(), "matmul", "out");
  const bool batched = a.dim() == 3;
  const int64_t B = batched ? a.size(0) : 1;
  MINIDL_CHECK(!batched || b.size(0) == B, "ref matmul: batch sizes differ: a ", shape_str(a.sizes()), ", b ",
               shape_str(b.sizes()));
  // a is stored (M,K), or (K,M) when trans_a; b is stored (K,N), or (N,K) when trans_b.
  const int64_t M = trans_a ? a.size(-1) : a.size(-2);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2);
  const int64_t N = trans_b ? b.size(-2) : b.size(-1);
  MINIDL_CHECK(K == Kb, "ref matmul: inner dimensions differ: op(a) is (", M, ", ", K, "), op(b) is (", Kb, ", ",
               N, ") (a ", shape_str(a.sizes()), ", b ", shape_str(b.sizes()), ", trans_a ", trans_a, ", trans_b ",
               trans_b, ")");
  Shape want = batched ? Shape{B, M, N} : Shape{M, N};
  ref::check_shape(out, want, "matmul", "out");

  ref::dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    auto A = ref::acc_padded<const T, 3>(a, ref::Pad::Front, "matmul");  // (B, M, K) or (B, K, M)
    auto Bm = ref::acc_padded<const T, 3>(b, ref::Pad::Front, "matmul");  // (B, K, N) or (B, N, K)
    auto O = ref::acc_padded<T, 3>(out, ref::Pad::Front, "matmul");  // (B, M, N)
    for (int64_t n = 0; n < B; ++n) {
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          double s = 0.0;
          for (int64_t k = 0; k < K; ++k) {
            const double av = trans_a ? A(n, k, i) : A(n, i, k);
            const double bv = trans_b ? Bm(n, j, k) : Bm(n, k, j);
            s += av * bv;
          }
          O(n, i, j) = static_cast<T>(s);
        }
      }
    }
  });
}

}  // namespace minidl
