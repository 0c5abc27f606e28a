// Hand-written AVX-512 kernels of the ActNN codec (backends/actnn_codec.h): one chunk of a quantization group and
// one chunk of its decoding, 16 elements per step. Same contract as cpu_actnn_avx2.h (whose kernels finish a chunk
// whose length is not a multiple of 16): the reference's bytes and decoded values, no FMA (the file is compiled
// with -ffp-contract=off), the same hash. Callers check cpu::isa_enabled(CpuIsa::Avx512) first.
#pragma once

#include <cstdint>

namespace minidl::cpu {

/// As actnn_quant_chunk_avx2: codes of m elements (m a multiple of 8), elements [mv, m) padding.
void actnn_quant_chunk_avx512(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s, int bits,
                              uint32_t e0lo, uint32_t klo, uint32_t khi);

/// As actnn_dequant_chunk_avx2: decodes the first mv codes of a chunk of m codes (m >= mv, a multiple of 8).
void actnn_dequant_chunk_avx512(float* out, const uint8_t* src, int64_t m, int64_t mv, float lo, float step, int bits);

}  // namespace minidl::cpu
