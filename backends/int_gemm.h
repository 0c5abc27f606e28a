// Integer GEMM for packed low-bit inference (issue 18): activation codes (unsigned 8-bit) times weight codes
// (signed 8-bit), summed exactly in int32. The packed convolutions of quant/packed run im2col rows of their
// input codes against a layer's weight codes through this one entry point; which kernel runs (scalar here,
// AVX2 / AVX-VNNI / AVX-512 VNNI in the cpu backend) is chosen at run time and never changes a result: every
// kernel computes the same exact integer sums.
//
// Kernels (backends/int_gemm_x86.cpp, compiled into every x86-64 build: they need no oneDNN): a register-blocked
// micro-kernel over `blocked` (layout kInt8LayoutK4N16, below) computes 16 output columns of 3, 4 or 8 rows at a
// time. Choice, per call: cpu::active_isa() (MINIDL_CPU_ISA / set_cpu_isa_cap) gives the level; Baseline runs the
// scalar loop; Avx512 with the host's AVX-512 VNNI runs vpdpbusd on zmm; Avx2 (or Avx512 without VNNI) runs
// AVX-VNNI's vpdpbusd on ymm where the host has it, else the AVX2 maddubs kernel (see maddubs_window()).
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::backends {

/// The kernels gemm_u8s8_s32 can run.
enum class IntGemmKernel {
  Scalar = 0,      // gemm_u8s8_s32_ref's loop
  Avx2 = 1,        // vpmaddubsw + vpmaddwd (exact: see PackedInt8Weights::maddubs_window)
  AvxVnni = 2,     // vpdpbusd on ymm (AVX-VNNI, VEX-encoded: allowed at the Avx2 level)
  Avx512Vnni = 3,  // vpdpbusd on zmm (AVX-512 VNNI: needs the Avx512 level)
};

/// "scalar", "avx2", "avx-vnni" or "avx512-vnni".
const char* int_gemm_kernel_name(IntGemmKernel kernel);
/// True when the host has the kernel's instructions and the ISA cap (cpu::active_isa()) allows them now.
bool int_gemm_kernel_runnable(IntGemmKernel kernel);
/// The kernel gemm_u8s8_s32 runs now: the best runnable one.
IntGemmKernel int_gemm_kernel();

/// `blocked` layout: for each block of 16 output rows of B (N padded to a multiple of 16 with zero rows), the
/// K codes in groups of 4 (K padded with zeros), group-major: byte (block * groups + g) * 64 + col * 4 + t holds
/// B[block * 16 + col][4 * g + t]. One 64-byte load is 4 codes of 16 columns: one zmm, or two ymm of 8.
inline constexpr int kInt8LayoutK4N16 = 1;
/// `wide` layout (PackedInt8Weights::wide): the same blocking with pairs of codes widened to int16: element
/// (block * pairs + p) * 32 + col * 2 + e holds B[block * 16 + col][2 * p + e]; 64 bytes are again one step of
/// 16 columns (2 codes each).
inline constexpr int kInt16LayoutK2N16 = 2;

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
  /// Which layout `blocked` holds (0: none, kInt8LayoutK4N16).
  int layout() const { return layout_; }
  /// The largest activation code the caller will pass (pack_int8_weights' max_input, 255 by default): the
  /// kernels' exactness below assumes every A code is <= this. quant/packed passes a layer's largest activation
  /// code (15 for 4-bit uniform codes), which lets the AVX2 kernel sum far longer in int16.
  int max_input() const { return max_input_; }
  /// How the AVX2 kernel may use vpmaddubsw (u8 x s8 products of codes (2p, 2p + 1) added into an int16 that
  /// saturates) exactly for every input <= max_input(): the largest W in {64, 32, ..., 2, 1} such that, in every
  /// row and every aligned window of W groups of 4 codes, the codes that land in one int16 lane (4g + 2h and
  /// 4g + 2h + 1 for the W groups g, h = 0 or 1) have positive codes summing to at most 32767 / max_input() and
  /// negative ones to at least -32768 / max_input() (for 255: 128 and -128); then every partial int16 sum of the
  /// window is exact and the kernel widens once per window. W = 1 holds when every |w| <= 64 at 255 (7-bit codes);
  /// 4-bit codes give W = 4 at 255 and W = 64 (the cap) at 15. 0 when no W holds (8-bit codes at 255): the AVX2
  /// kernel then reads `wide` and multiplies with vpmaddwd, exact for any codes.
  int maddubs_window() const { return maddubs_window_; }
  /// maddubs_window() >= 1: one vpmaddubsw per pair of codes cannot saturate.
  bool maddubs_exact() const { return maddubs_window_ >= 1; }
  /// The codes widened to int16 in layout kInt16LayoutK2N16, for the AVX2 kernel when maddubs_window() == 0
  /// (empty otherwise: about 2 N K bytes saved).
  const std::vector<int16_t>& wide() const { return wide_; }
  /// For at most 16 rows (one column block): the codes with pairs of groups interleaved per column, 128 bytes per
  /// pair p: byte h * 64 + (col - 8 h) * 8 + e * 4 + t holds B[col][4 (2p + e) + t] for the columns 8h..8h+7
  /// (h = 0, 1), groups padded to an even count. The AVX-512 VNNI kernel of gemm_u8s8_s32_segments broadcasts 8
  /// codes (two groups) per vpdpbusd pair with it. Empty for more rows.
  const std::vector<int8_t>& paired() const { return paired_; }
  /// Binary convolution weights only (set by pack_conv_weights_rsc when every code is -1 or +1, the output and
  /// input channels are multiples of 16 and max_input <= 3): the sign bits the bit-serial convolution reads
  /// (backends/int_conv_bitserial.h has the layout), for a conv of conv_kernel() x conv_kernel() x conv_in_c().
  /// Empty otherwise.
  const std::vector<uint32_t>& conv_sign_bits() const { return sign_bits_; }
  int64_t conv_kernel() const { return conv_kernel_; }
  int64_t conv_in_c() const { return conv_in_c_; }

 private:
  friend PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb, int max_input);
  friend PackedInt8Weights pack_conv_weights_rsc(int64_t out_c, int64_t in_c, int64_t kernel, const int8_t* oihw,
                                                 int max_input);
  int64_t n_ = 0, k_ = 0;
  std::vector<int8_t> codes_;
  std::vector<int32_t> row_sums_;
  std::vector<int8_t> blocked_;
  std::vector<int16_t> wide_;
  std::vector<int8_t> paired_;
  std::vector<uint32_t> sign_bits_;
  int64_t conv_kernel_ = 0, conv_in_c_ = 0;
  int layout_ = 0;
  int maddubs_window_ = 0;
  int max_input_ = 255;
};

/// Packs B (n rows of k codes, row stride ldb) for inputs A of at most max_input (1..255; every call of
/// gemm_u8s8_s32 with these weights must keep to it: larger codes may give wrong sums on the AVX2 kernel). Throws
/// minidl::Error on negative sizes, ldb < k, max_input outside 1..255, or k too large for an exact int32 sum
/// (k * 255 * 128 must stay below 2^31).
PackedInt8Weights pack_int8_weights(int64_t n, int64_t k, const int8_t* b, int64_t ldb, int max_input = 255);

/// C[i * ldc + j] = sum_k A[i * lda + k] * B[j][k] for i < m, j < B.rows(): exact int32 sums.
/// A is m rows of B.depth() unsigned codes (row stride lda >= depth); C has row stride ldc >= rows.
/// Throws minidl::Error on bad sizes or strides.
void gemm_u8s8_s32(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc);

/// The scalar oracle of gemm_u8s8_s32 (same contract): what every fast kernel is tested against.
void gemm_u8s8_s32_ref(int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b, int32_t* c, int64_t ldc);

/// Whether gemm_u8s8_s32_segments can run now for these weights and pieces of seg_len codes: seg_len is a multiple
/// of 4 (a group of 4 codes never straddles two pieces) and the kernel in use is the AVX-512 VNNI one, or the AVX2
/// one with maddubs_window() >= 1 (not its int16 `wide` path).
bool gemm_u8s8_s32_segments_runnable(const PackedInt8Weights& b, int64_t seg_len);
/// gemm_u8s8_s32 with row i of A given as `pieces` pieces of seg_len codes, piece s at rows[i] + s * seg_stride
/// (pieces * seg_len == b.depth()): an im2col the GEMM reads in place, one pointer per row (an NHWC convolution's
/// kernel rows are one image row apart). On the calling thread. Throws minidl::Error when not
/// gemm_u8s8_s32_segments_runnable or on bad sizes.
void gemm_u8s8_s32_segments(int64_t m, const uint8_t* const* rows, int64_t pieces, int64_t seg_len, int64_t seg_stride,
                            const PackedInt8Weights& b, int32_t* c, int64_t ldc);

/// gemm_u8s8_s32 with a given kernel (tests, benchmarks). Throws minidl::Error when the kernel is not
/// runnable (int_gemm_kernel_runnable) or on the arguments gemm_u8s8_s32 rejects.
void gemm_u8s8_s32_with(IntGemmKernel kernel, int64_t m, const uint8_t* a, int64_t lda, const PackedInt8Weights& b,
                        int32_t* c, int64_t ldc);

}  // namespace minidl::backends
