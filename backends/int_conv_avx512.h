// The AVX-512 kernels of backends/int_conv.cpp: the threshold quantizer as a branch-free binary search (16 values
// per zmm, the thresholds of each step picked by vpermps on the running count), and the epilogue fused with its
// consumers' quantizers, so the values of a tile go from the int32 sums to codes in registers. Compiled for their own
// target through function attributes; callers check cpu::isa_enabled(CpuIsa::Avx512) first. Both compute exactly
// the scalar definitions of int_conv.h (CodeThresholds::code, IntConvEpilogue).
#pragma once

#include <cstdint>

#include "backends/int_conv.h"

namespace minidl::backends::detail {

/// Books of at most this many entries (15 thresholds: 4-bit codes) run the binary search; larger ones the scalar
/// or AVX2 count.
constexpr int kQuantizeAvx512MaxBook = 16;

/// True when every consumer of `e` has a book the AVX-512 search handles (int_conv_epilogue_avx512 may run).
bool avx512_epilogue_fits(const IntConvEpilogue& e);

/// As quantize_to_codes for a quantizer with at most kQuantizeAvx512MaxBook codes: the codes of `rows` rows of `len`
/// contiguous values of x, row r at out + r * out_stride, and the NaN count (one search setup for all rows).
int64_t quantize_to_codes_avx512(const CodeThresholds& q, const float* x, int64_t rows, int64_t len, uint8_t* out,
                                 int64_t out_stride);

/// One quantizer's binary search, laid out for the kernels: steps = ceil(log2(book size)) (0 for a one-code book),
/// the first step's threshold, the later steps' tables (table[i][l] = t16[min(l + s_i - 1, 15)], s_i = 2^(steps - 2
/// - i)), the book as int32 lanes, and whether the book is 0, 1, 2, ... (the count is the code: no lookup).
struct ThresholdSearch {
  int steps = 0;
  float t16[16];  // the thresholds, NaN past the last
  float first = 0;
  float table[3][16];
  int32_t book[16] = {};
  bool identity_book = false;
};
/// Throws minidl::Error for books of more than kQuantizeAvx512MaxBook codes.
ThresholdSearch make_threshold_search(const CodeThresholds& q);

/// The whole epilogue of `rows` pixels starting at pixel p0 (int_conv.h's detail::int_conv_epilogue), for an `e`
/// with avx512_epilogue_fits(e): the values into e.out when set, each consumer's codes; returns the quantizers' NaN
/// count (the NaN values times the number of consumers, as the scalar path counts them). k: epilogue_factors;
/// searches: make_threshold_search of each consumer e.quant[i] that is set, in order.
int64_t int_conv_epilogue_avx512(const IntConvEpilogue& e, const float* k, const ThresholdSearch* searches,
                                 int64_t out_c, int64_t p0, int64_t rows, const int32_t* acc);

/// Bytes the AVX-512 im2col may write past the end of its rows (its last copy stores a whole zmm): the buffer must
/// have this much room after rows * depth.
constexpr int64_t kIm2colAvx512Slack = 64;

/// im2col of output pixels [p0, p0 + rows) into `a` (row i: the kernel x kernel x in_c codes of pixel p0 + i in
/// (r, s, c) order, code 0 outside the image), as int_conv.cpp's portable loop, with zmm copies.
void im2col_rows_avx512(const IntConvGeometry& g, const uint8_t* codes, int64_t p0, int64_t rows, uint8_t* a);

}  // namespace minidl::backends::detail
