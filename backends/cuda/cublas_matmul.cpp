// cuBLAS matmul (see cublas_matmul.h). cuBLAS is column-major and minidl row-major: a row-major (R, C) matrix
// with row stride ld is cuBLAS's column-major (C, R) matrix with leading dimension ld, so out = op(a) op(b) is
// computed as out^T = op(b)^T op(a)^T, i.e. cuBLAS's gemm with the operands swapped. A view whose inner stride
// is not 1 but whose outer one is (a transposed matrix) is passed as the other transpose, with no copy.
#include "backends/cuda/cublas_matmul.h"

#include <algorithm>

#include "backends/cuda/cuda_handles.cuh"
#include "backends/cuda_settings.h"

namespace minidl::cuda {
namespace {

constexpr const char* kWho = "cuda backend: matmul";

// One operand as cuBLAS sees it: the pointer, its leading dimension, whether cuBLAS must transpose it, and the
// stride between batch matrices.
struct Operand {
  const void* ptr = nullptr;
  int64_t ld = 0;
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t batch_stride = 0;
  Tensor keep;  // a contiguous copy when the view had to be made dense
};

// t's last two dims are the stored (rows, cols) of a row-major matrix; `trans` asks for its transpose.
Operand operand(const Tensor& t_in, bool trans) {
  Tensor t = t_in;
  const int64_t r = t.dim();
  auto inner_ok = [&](const Tensor& v) {
    const int64_t rows = v.size(r - 2), cols = v.size(r - 1);
    const int64_t s_row = v.stride(r - 2), s_col = v.stride(r - 1);
    const bool row_major = (s_col == 1 || cols == 1) && s_row >= std::max<int64_t>(cols, 1);
    const bool col_major = (s_row == 1 || rows == 1) && s_col >= std::max<int64_t>(rows, 1);
    return row_major || col_major;
  };
  if (!inner_ok(t) || (r == 3 && t.size(0) > 1 && t.stride(0) == 0)) t = t.contiguous();
  Operand o;
  o.keep = t;
  o.ptr = device_ptr(t);
  o.batch_stride = r == 3 ? t.stride(0) : 0;
  const int64_t rows = t.size(r - 2), cols = t.size(r - 1);
  const bool row_major = (t.stride(r - 1) == 1 || cols == 1) && t.stride(r - 2) >= std::max<int64_t>(cols, 1);
  if (row_major) {
    o.ld = std::max<int64_t>(t.stride(r - 2), std::max<int64_t>(cols, 1));
    o.op = trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  } else {  // stored column-major: the transpose of a row-major matrix
    o.ld = std::max<int64_t>(t.stride(r - 1), std::max<int64_t>(rows, 1));
    o.op = trans ? CUBLAS_OP_N : CUBLAS_OP_T;
  }
  return o;
}

}  // namespace

void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  MINIDL_CHECK(a.dim() == b.dim() && out.dim() == a.dim() && (a.dim() == 2 || a.dim() == 3), kWho,
               ": expected 2-D or 3-D operands of one rank, got ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
               " into ", shape_str(out.sizes()));
  MINIDL_CHECK(a.device().is_cuda() && b.device() == a.device() && out.device() == a.device(), kWho,
               ": operands must be on one CUDA device");
  MINIDL_CHECK(a.dtype() == b.dtype() && out.dtype() == a.dtype(), kWho, ": dtypes differ");
  MINIDL_CHECK(out.is_contiguous(), kWho, ": the output must be contiguous");
  const int64_t r = a.dim();
  const int64_t M = trans_a ? a.size(r - 1) : a.size(r - 2), K = trans_a ? a.size(r - 2) : a.size(r - 1);
  const int64_t Kb = trans_b ? b.size(r - 1) : b.size(r - 2), N = trans_b ? b.size(r - 2) : b.size(r - 1);
  const int64_t B = r == 3 ? a.size(0) : 1;
  MINIDL_CHECK(
      K == Kb && out.size(r - 2) == M && out.size(r - 1) == N && (r == 2 || (b.size(0) == B && out.size(0) == B)), kWho,
      ": shapes ", shape_str(a.sizes()), (trans_a ? "^T" : ""), " @ ", shape_str(b.sizes()), (trans_b ? "^T" : ""),
      " -> ", shape_str(out.sizes()), " do not match");
  if (out.numel() == 0) return;
  require_device("matmul");
  if (K == 0) {  // an empty sum: all-zero bits are 0.0 in float32 and float64
    MINIDL_CUDA_CHECK(cudaMemsetAsync(device_ptr(out), 0, out.nbytes(), current_stream()), kWho, ": zeroing");
    return;
  }
  const Operand oa = operand(a, trans_a), ob = operand(b, trans_b);
  cublasHandle_t h = cublas_handle();
  const auto i = [](int64_t v) { return static_cast<int>(v); };
  // column-major: out^T (N, M) = op(b)^T (N, K) @ op(a)^T (K, M), ldc = N
  if (a.dtype() == DType::f64) {
    const double one = 1.0, zero = 0.0;
    MINIDL_CUBLAS_CHECK(
        cublasDgemmStridedBatched(h, ob.op, oa.op, i(N), i(M), i(K), &one, static_cast<const double*>(ob.ptr), i(ob.ld),
                                  ob.batch_stride, static_cast<const double*>(oa.ptr), i(oa.ld), oa.batch_stride, &zero,
                                  static_cast<double*>(device_ptr(out)), i(N), M * N, i(B)),
        kWho, ": DGEMM ", M, "x", N, "x", K, " batch ", B);
    return;
  }
  MINIDL_CHECK(a.dtype() == DType::f32, kWho, ": float32 or float64 only, got ", dtype_name(a.dtype()));
  const float one = 1.f, zero = 0.f;
  const cublasComputeType_t compute = cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  MINIDL_CUBLAS_CHECK(
      cublasGemmStridedBatchedEx(h, ob.op, oa.op, i(N), i(M), i(K), &one, ob.ptr, CUDA_R_32F, i(ob.ld), ob.batch_stride,
                                 oa.ptr, CUDA_R_32F, i(oa.ld), oa.batch_stride, &zero, device_ptr(out), CUDA_R_32F,
                                 i(N), M * N, i(B), compute, CUBLAS_GEMM_DEFAULT),
      kWho, ": SGEMM ", M, "x", N, "x", K, " batch ", B);
}

}  // namespace minidl::cuda
