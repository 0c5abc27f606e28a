// Integer GEMM for packed low-bit inference (issue 18): activation codes (unsigned 8-bit) times weight codes
// (signed 8-bit), summed exactly in int32. The packed convolutions of quant/packed run im2col rows of their
// input codes against a layer's weight codes through this one entry point; which kernel runs (scalar here,
// AVX2 / AVX-VNNI / AVX-512 VNNI in the cpu backend) is chosen at run time and never changes a result: every
// kernel computes the same exact integer sums.
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::backends {

/// A layer's weight codes (N output rows of K signed 8-bit codes), packed once into the layout the active
/// kernel reads. Build with pack_int8_weights; immutable after that.
class PackedInt8Weights {
 public:
  PackedInt8Weights() = default;
  int64_t rows() const { return n_; }   // N
  int64_t depth() const { return k_; }  // K
  /// The codes as given (row-major N x K): the scalar path and the tests read them.
  const std::vector<int8_t>& codes() const { return codes_; }
  /// Per row: the sum of its codes (kernels that shift unsigned inputs use it to correct the sum).
  const std::vector<int32_t>& row_sums() const { return row_sums_; }
  /// Kernel-specific copy (empty when the scalar path is the only one); layout is the kernel's business.
  const std::vector<int8_t>& blocked() const { return blocked_; }
  /// Which layout `blocked` holds (0: none).
  int layout() const { return layout_; }

 private:
  friend PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb);
  int64_t n_ = 0, k_ = 0;
  std::vector<int8_t> codes_;
  std::vector<int32_t> row_sums_;
  std::vector<int8_t> blocked_;
  int layout_ = 0;
};

/// Packs B (n rows of k codes, row stride ldb). Throws minidl::Error on negative sizes, ldb < k, or k too large
/// for an exact int32 sum (k * 255 * 128 must stay below 2^31).
PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb);

/// C[i * ldc + j] = sum_k A[i * lda + k] * B[j][k] for i < m, j < B.rows(): exact int32 sums.
/// A is m rows of B.depth() unsigned codes (row stride lda >= depth); C has row stride ldc >= rows.
/// Throws minidl::Error on bad sizes or strides.
void gemm_u8s8_s32(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc);

/// The scalar oracle of gemm_u8s8_s32 (same contract): what every fast kernel is tested against.
void gemm_u8s8_s32_ref(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc);

}  // namespace minidl::backends
