// Winograd F(4x4, 3x3) convolution for the cpu backend: 3x3, stride 1, no dilation, no groups, f32 activations
// in channels-last (nhwc) memory, channel counts that are multiples of 8.
//
// Why: on AVX2 hosts oneDNN 2.6 has no Winograd kernel (its Winograd is AVX-512 only), and its direct jit:avx2
// convolutions already run near the FMA peak, so the only way to make ResNet-20's 3x3 layers faster is to do
// fewer multiplications. F(4x4, 3x3) computes each 4x4 output tile from a 6x6 input tile with 36 multiplies per
// (input, output) channel pair instead of 144 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016). The transforms vectorise over 8 channels (AVX2) or 16 (AVX-512, when both channel counts
// divide by 16; the same bits), which nhwc keeps contiguous.
//
// Backward-data of a stride-1 3x3 convolution is itself one (gy convolved with the flipped, transposed weights,
// padding 2 - pad), so the same kernel serves both; backward-weights runs the transposed algebra
// (winograd_conv3x3_backward_weights).
#pragma once

#include <cstdint>
#include <optional>

namespace minidl::cpu {

/// One stride-1 3x3 convolution over nhwc f32 buffers: out[n, oh, ow, k] = sum over c, r, s of
/// in[n, oh + r - pad_h, ow + s - pad_w, c] * U-weights (positions outside `in` read as zero).
struct WinogradShape {
  int64_t n = 0, in_c = 0, out_c = 0;  // batch, input and output channels (multiples of 8)
  int64_t in_h = 0, in_w = 0;          // input extent
  int64_t out_h = 0, out_w = 0;        // output extent
  int64_t pad_h = 0, pad_w = 0;        // may be negative (backward-data of a conv padded by more than 2)
};

/// What the output transform does before it stores: + bias[k], + the value already in `out` (a residual the
/// caller copied there), then ReLU. All off by default.
struct WinogradEpilogue {
  const float* bias = nullptr;
  bool accumulate = false;
  bool relu = false;
};

/// True when this machine can run the kernel (AVX2 + FMA, not capped below avx2 by MINIDL_CPU_ISA) and
/// MINIDL_CPU_CONV does not say "direct".
bool winograd_enabled();
/// Overrides MINIDL_CPU_CONV for this process (tests compare the two paths on the same backend); on a CPU
/// without AVX2/FMA the kernel stays off whatever is set.
void set_winograd_enabled(bool on);
/// Back to following MINIDL_CPU_CONV.
void clear_winograd_override();

/// Forces the layer-wide stages (true), the blocked ones (false) or the choice by channel counts (nullopt, the
/// default; MINIDL_WINOGRAD_LAYERWIDE=0|1 forces it too). Both compute the same convolution; the float sums
/// differ in order. For tests and benchmarks.
void set_winograd_layer_wide(std::optional<bool> on);

/// Forces the blocked forward / backward-data stages' scratch layout: tile-major (true), position-major (false) or
/// the choice by channel counts (nullopt, the default). The same arithmetic in the same order either way, so the
/// same bits; for tests and benchmarks.
void set_winograd_tile_major(std::optional<bool> on);

/// True when channel counts fit the kernel (multiples of 8) and the machine can run it.
bool winograd_fits(int64_t in_c, int64_t out_c);

/// Floats needed by winograd_transform_weights' output: 36 * in_c * out_c.
inline int64_t winograd_weights_size(int64_t in_c, int64_t out_c) { return 36 * in_c * out_c; }

/// The transformed weights U[36][in_c][out_c] = G g G^T of each 3x3 filter. `w` is (K, C, 3, 3) contiguous.
/// For the forward conv in_c = C, out_c = K, g = w[k][c]. For backward-data (flip = true) the roles swap:
/// in_c = K, out_c = C and g = w[k][c] rotated by 180 degrees.
void winograd_transform_weights(float* u, const float* w, int64_t K, int64_t C, bool flip);

/// out (n, out_h, out_w, out_c) from in (n, in_h, in_w, in_c), both dense nhwc, and U from
/// winograd_transform_weights. Parallel over tiles with the OpenMP thread count.
void winograd_conv3x3(float* out, const float* in, const float* u, const WinogradShape& s,
                      const WinogradEpilogue& e = {});

/// Backward-weights of the forward conv s describes (in = x, out = gy, both dense nhwc):
/// gw (out_c, in_c, 3, 3) contiguous, overwritten. Uses gw = G^T [sum over tiles (A gy A^T) . (B^T x B)] G, the
/// transpose of the forward's algebra, so it needs 36 multiplies per channel pair and tile, as forward does.
void winograd_conv3x3_backward_weights(float* gw, const float* x, const float* gy, const WinogradShape& s);

}  // namespace minidl::cpu
