// The bit-serial path of the integer convolution (issue 18) for binary weights with 1- or 2-bit activations: an
// input code a in 0..3 is a0 + 2 a1 (bit planes), a weight w in {-1, +1} is 2 s - 1 (s its sign bit), so a window's
// sum is
//   sum_k a_k w_k = sum_b 2^b (2 popcount(plane_b & s) - popcount(plane_b)) = sum_b 2^(b+1) popcount(plane_b & s) - T
// with T the sum of the window's codes. One vpandd + vpopcntd + vpaddd does 512 one-bit products (16 output channels
// x 32 positions of the window); VNNI's vpdpbusd does 64 eight-bit ones. The sums are exact integers, the same as
// gemm_u8s8_s32's, so the epilogue and everything after it see the same bits.
//
// Layout. The input codes (a bordered NHWC buffer, IntConvGeometry::in_pad >= padding, so every window lies inside it)
// become, per buffer image row, `planes` rows of bits: bit c of pixel x of plane b is bit (x * in_c + c) of that plane
// row, little-endian, i.e. the row's codes as one bit string per plane. A kernel row of a window (kernel pixels side
// by side) is then kernel * in_c consecutive bits of a plane row, read as ceil(kernel * in_c / 32) dwords from the
// window's first pixel; the weights' sign bits are laid out word for word the same way, with 0 past the kernel row's
// end (so the bits read past it, from the next pixels, add nothing). T comes from each row's sums of `kernel`
// neighbouring pixels' codes (a 3 x 3 window adds 3 of them).
//
// AVX-512 F/BW/VL + VPOPCNTDQ (Ice Lake and later, Zen 4 and later), at the Avx512 level of cpu::active_isa();
// int_conv2d_nhwc uses it where bitserial_conv_runnable() says so and the GEMM kernels everywhere else.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/int_conv.h"

namespace minidl::backends {

/// Whether the host has AVX-512 F/BW/VL and VPOPCNTDQ (the bit-serial kernels' instructions).
bool host_has_avx512_vpopcntdq();

/// Enables or disables the bit-serial path for the whole process (default on; benchmarks and tests compare both
/// paths with it). Thread-safe; takes effect at the next int_conv2d_nhwc call.
void set_bitserial_conv_enabled(bool enabled);
bool bitserial_conv_enabled();

/// Whether int_conv2d_nhwc takes the bit-serial path for this geometry (as given to it) and these weights now: the
/// weights carry sign bits (PackedInt8Weights::conv_sign_bits), the geometry matches them, every window lies inside
/// the bordered buffer (in_pad >= padding), the host has the instructions, cpu::active_isa() is Avx512 and the path
/// is enabled.
bool bitserial_conv_runnable(const IntConvGeometry& given, const PackedInt8Weights& w);

namespace detail {

/// The sign bits of binary weights in the bit-serial layout: for each block of 16 output channels, each kernel row r
/// and each of words_per_row() dwords j, 16 dwords (one per channel of the block); bit t of channel o's dword is 1
/// when the weight at position 32 j + t of its kernel row ((s, c) order: s * in_c + c) is +1, and 0 when that weight
/// is -1 or the position is past kernel * in_c. Empty (and false) unless every code is -1 or +1, out_c and in_c are
/// multiples of 16 and max_input <= 3.
std::vector<uint32_t> conv_sign_bits(int64_t out_c, int64_t in_c, int64_t kernel, const std::vector<int8_t>& rsc_codes,
                                     int max_input);
/// ceil(kernel * in_c / 32).
inline int64_t sign_bit_words_per_row(int64_t kernel, int64_t in_c) { return (kernel * in_c + 31) / 32; }

/// Some buffer rows of a layer input as bit planes, with their pixel code sums (layout above), for a buffer geometry g
/// (buffer_geometry: the border folded into the image). Each thread makes its own, for the rows its tiles read, and
/// keeps it between calls.
struct BitPlanes {
  int planes = 0;
  int64_t first_row = 0;            // the buffer row (image n's row y: n * in_h + y) of the first row held
  int64_t plane_row_bytes = 0;      // in_w * in_c / 8
  std::vector<uint8_t> bits;        // per row: `planes` plane rows of plane_row_bytes, then slack at the end
  std::vector<int32_t> pixel_sums;  // per pixel x of a row: the sum of the codes of pixels x .. x + kernel - 1
};
/// Fills `out` with the buffer rows that output pixels [p_begin, p_end) of g read (g.padding <= 0: every window inside
/// the buffer), from the codes of g's buffer (batch x in_h x in_w x in_c, every code < 2^planes). On the calling
/// thread.
void codes_to_bit_planes(const IntConvGeometry& g, const uint8_t* codes, int planes, int64_t p_begin, int64_t p_end,
                         BitPlanes& out);
/// The exact sums of output pixels [p0, p0 + rows) of g into acc (rows x g.out_c, row-major), from planes that hold
/// their rows (codes_to_bit_planes for a range that contains them) and the weights' sign bits (w.conv_sign_bits()).
/// On the calling thread.
void bitserial_conv_rows(const IntConvGeometry& g, const BitPlanes& in, const PackedInt8Weights& w, int64_t p0,
                         int64_t rows, int32_t* acc);

}  // namespace detail
}  // namespace minidl::backends
