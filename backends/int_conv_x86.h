// The AVX2 kernels of backends/int_conv.cpp: the threshold quantizer and the fused epilogue, compiled for their
// own target through function attributes (the library itself keeps the baseline ISA). Callers check
// cpu::isa_enabled(CpuIsa::Avx2) first. Both compute exactly the scalar definitions of int_conv.h.
#pragma once

#include <cstdint>

#include "backends/int_conv.h"

namespace minidl::backends::detail {

/// Codes of books of at most this many entries come from one in-register byte shuffle.
constexpr int kQuantizeAvx2MaxBook = 16;

/// From this many thresholds on the count is a binary search (4 compares per 8 values), below it nt compares.
constexpr int kQuantizeAvx2BisectFrom = 8;

/// out[i] = book[#{k < nt : x[i] >= t[k]}] for i < n (book padded to 16 entries, nt + 1 <= 16); returns the NaN
/// count.
int64_t quantize_to_codes_avx2(const float* t, int nt, const uint8_t* book16, const float* x, int64_t n, uint8_t* out);

/// The float part of the epilogue for `rows` pixels starting at pixel p0: v (rescale, affine, residual, ReLU) into
/// dst (rows x out_c, row stride out_c).
void epilogue_values_avx2(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0, int64_t rows,
                          const int32_t* acc, float* dst);

/// The rows epilogue_codes_avx2 takes at a time for out_c channels (their values fill whole 32-code stores): 1 for
/// 32 or 64 channels, 2 for 16; 0 when out_c is not a multiple of 8 (it does not run).
int64_t epilogue_codes_rows_avx2(int64_t out_c);

/// The whole epilogue for `rows` pixels (a multiple of epilogue_codes_rows_avx2(out_c)) from pixel p0, values and
/// codes in one pass, in registers: the values of epilogue_values_avx2 (into e.out when set) and each consumer's
/// codes of quantize_to_codes_avx2 (books of at most 16 codes, at least one consumer). Returns the consumers' NaN
/// count (each consumer counts its NaN inputs, as quantize_to_codes per consumer does).
int64_t epilogue_codes_avx2(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0, int64_t rows,
                            const int32_t* acc);

}  // namespace minidl::backends::detail
