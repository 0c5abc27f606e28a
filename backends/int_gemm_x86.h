// The x86 kernels of gemm_u8s8_s32 (see int_gemm.h), internal to backends/int_gemm.cpp's dispatch. Each computes
// C rows [0, m) for all n columns on the calling thread, reading B in layout kInt8LayoutK4N16; callers check
// arguments, the ISA cap and the host's features first (int_gemm_kernel_runnable).
#pragma once

#include <cstdint>

namespace minidl::backends::detail {

/// The host's VNNI extensions (cpuid, probed once); false on other architectures.
bool host_has_avx_vnni();
bool host_has_avx512_vnni();

/// vpmaddubsw + vpmaddwd; `maddubs_window`: PackedInt8Weights::maddubs_window (>= 1: int16 sums over aligned
/// windows of that many groups). Throws for a window below 1.
void int_gemm_avx2(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int maddubs_window,
                   int32_t* c, int64_t ldc);
/// int_gemm_avx2 with A's rows as pieces (gemm_u8s8_s32_segments); seg_len a multiple of 4.
void int_gemm_avx2_segments(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len, int64_t seg_stride,
                            const int8_t* bp, int64_t n, int maddubs_window, int32_t* c, int64_t ldc);
/// vpmaddwd on the int16 copy of the weights (PackedInt8Weights::wide, kInt16LayoutK2N16): any weights.
void int_gemm_avx2_wide(int64_t m, const uint8_t* a, int64_t lda, const int16_t* bw, int64_t n, int64_t k, int32_t* c,
                        int64_t ldc);
/// vpdpbusd on ymm (AVX-VNNI).
void int_gemm_avx_vnni(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int32_t* c,
                       int64_t ldc);
/// vpdpbusd on zmm (AVX-512 VNNI).
void int_gemm_avx512_vnni(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int32_t* c,
                          int64_t ldc);

/// vpdpbusd on zmm, A's rows as pieces (gemm_u8s8_s32_segments); seg_len a multiple of 4.
void int_gemm_avx512_vnni_segments(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len,
                                   int64_t seg_stride, const int8_t* bp, int64_t n, int32_t* c, int64_t ldc);

/// The same for n <= 16 with PackedInt8Weights::paired (seg_len a multiple of 8): one 8-code broadcast per two
/// vpdpbusd.
void int_gemm_avx512_vnni_segments_paired(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len,
                                          int64_t seg_stride, const int8_t* bpair, int64_t n, int32_t* c, int64_t ldc);

}  // namespace minidl::backends::detail
