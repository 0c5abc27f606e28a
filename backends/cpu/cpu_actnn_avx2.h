// Hand-written AVX2 kernels of the ActNN codec (backends/actnn_codec.h): one chunk of a quantization group,
// one chunk of its decoding, and 1-bit mask packing. They write exactly the reference's bytes: no FMA (the
// file is compiled for avx2 only), the same f32 operations in the same order, the same hash. Callers check
// cpu::isa_enabled(CpuIsa::Avx2) first.
#pragma once

#include <cstdint>

namespace minidl::cpu {

/// Codes of m elements (m a multiple of 8) of one group chunk at `bits` (1..8) bits, written as m * bits / 8
/// bytes at dst. Elements [mv, m) are padding: code 0, x not read. Element i draws its random number from the
/// stream position e0lo + i under the chunk key (klo, khi); the caller guarantees e0lo + m does not wrap.
void actnn_quant_chunk_avx2(uint8_t* dst, const float* x, int64_t m, int64_t mv, float lo, float s, int bits,
                            uint32_t e0lo, uint32_t klo, uint32_t khi);

/// Decodes mv elements (the first mv codes of a chunk, packed at `bits` bits from src) as lo + q * step.
void actnn_dequant_chunk_avx2(float* out, const uint8_t* src, int64_t mv, float lo, float step, int bits);

/// Bit k of byte i of dst = (x[8i + k] != 0), for bytes [b, e) (x holds at least 8e elements).
void pack_mask_f32_avx2(uint8_t* dst, const float* x, int64_t b, int64_t e);
void pack_mask_u8_avx2(uint8_t* dst, const uint8_t* x, int64_t b, int64_t e);
/// out[8i + k] = bit k of byte i (1 or 0), for bytes [b, e).
void unpack_mask_f32_avx2(float* out, const uint8_t* bits, int64_t b, int64_t e);
/// g[8i + k] stays where bit k of byte i is set, else becomes +0, for bytes [b, e).
void mask_from_bits_f32_avx2(float* g, const uint8_t* bits, int64_t b, int64_t e);

/// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols: a channels-last sample into the codec's
/// logical order (rows = pixels, cols = channels) and back (rows = channels, cols = pixels). 8x8 blocks in
/// registers, the edges element by element.
void transpose_f32_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst, int64_t dst_ld);

}  // namespace minidl::cpu
