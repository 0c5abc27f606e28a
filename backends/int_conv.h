// Integer convolution for packed low-bit inference (issue 18): channels-last (NHWC) activation codes times a
// layer's packed weight codes (backends/int_gemm.h), with the whole float epilogue fused per tile of output
// pixels: rescale the exact int32 sum once, batch norm as x * scale + shift, residual add, ReLU, and the
// consumers' activation quantizers turning the result straight into their codes. A tile's im2col rows, sums and
// floats stay in the core's cache; nothing but the layer's outputs goes to memory.
//
// Quantizers are given as thresholds (CodeThresholds): every activation quantizer minidl trains is monotone in its
// input, so "the code of x" is "how many thresholds x reaches", looked up in a small code book. quant/packed
// derives the thresholds from the fake-quant op itself (bit-exact by construction and checked), so the codes here
// are the trained model's codes, ties included.
//
// Kernels: scalar everywhere; AVX2 (backends/int_conv_x86.cpp, function target attributes) for the quantizer and
// the epilogue; AVX-512 (backends/int_conv_avx512.cpp) for the quantizer of books up to 16 codes (a binary search)
// and the epilogue fused with those quantizers; chosen at run time by cpu::active_isa(). All compute the same bits:
// the epilogue converts the sum to float32, multiplies it by the channel's float32 factor unit * scale[o] (rounded
// once from double) and adds shift[o] as two float32 instructions (never fused), as the scalar code does.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/int_gemm.h"

namespace minidl::backends {

/// A monotone quantizer from float32 to unsigned 8-bit codes: x gets book()[j], j = the number of thresholds t
/// with x >= t. NaN reaches no threshold (j = 0); callers that must reject NaN count it (quantize_to_codes).
class CodeThresholds {
 public:
  CodeThresholds() = default;
  /// thresholds: strictly ascending and finite; book: thresholds.size() + 1 codes. Throws minidl::Error
  /// otherwise.
  CodeThresholds(std::vector<float> thresholds, std::vector<uint8_t> book);
  const std::vector<float>& thresholds() const { return t_; }
  const std::vector<uint8_t>& book() const { return book_; }
  bool empty() const { return book_.empty(); }
  /// The code of one value (the scalar definition every kernel matches).
  uint8_t code(float x) const;

 private:
  std::vector<float> t_;
  std::vector<uint8_t> book_;
};

/// out[i] = q.code(x[i]) for i < n, on the calling thread; returns how many x[i] are NaN.
int64_t quantize_to_codes(const CodeThresholds& q, const float* x, int64_t n, uint8_t* out);
/// The same for one image of h x w x c values (NHWC) into a code buffer with a border of `pad` pixels
/// (IntConvGeometry::in_pad): the interior only, the border left as it is.
int64_t quantize_to_codes_bordered(const CodeThresholds& q, const float* x, int64_t h, int64_t w, int64_t c,
                                   int64_t pad, uint8_t* out);

/// Geometry of an NHWC integer convolution (square kernel, symmetric padding, no dilation or groups).
struct IntConvGeometry {
  int64_t batch = 1, in_h = 1, in_w = 1, in_c = 1, out_c = 1;
  int64_t kernel = 1, stride = 1, padding = 0;
  /// The codes buffer keeps in_pad pixels of code 0 around each image: image n's pixel (h, w) is buffer pixel
  /// (h + in_pad, w + in_pad) of an (in_h + 2 in_pad) x (in_w + 2 in_pad) image. With in_pad >= padding every
  /// window lies inside the buffer, so none has to be assembled with zeros (the padding reads the border).
  int64_t in_pad = 0;
  int64_t out_h() const { return (in_h + 2 * padding - kernel) / stride + 1; }
  int64_t out_w() const { return (in_w + 2 * padding - kernel) / stride + 1; }
  /// The GEMM depth: kernel * kernel * in_c, in (r, s, c) order.
  int64_t depth() const { return kernel * kernel * in_c; }
};

/// Bytes of a code buffer of `batch` images of h x w x c codes with `pad` pixels of border (IntConvGeometry::in_pad).
inline int64_t padded_codes_size(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t pad) {
  return batch * (h + 2 * pad) * (w + 2 * pad) * c;
}
/// Sets the border of such a buffer to code 0 (the interior is left as it is).
void zero_codes_border(uint8_t* codes, int64_t batch, int64_t h, int64_t w, int64_t c, int64_t pad);

/// What happens to each output sum. Per output pixel p and channel o (NHWC, index p * out_c + o):
///   v = float32(sum) * k[o] + shift[o]                     (float32 multiply, then add; k[o] = float32(unit *
///                                                          double(scale[o])), the rescale and the batch norm's
///                                                          slope as one factor: epilogue_factors)
///   v += residual[p * out_c + o]                          (when residual)
///   v = max(v, 0)                                         (when relu; NaN stays NaN)
///   out[p * out_c + o] = v                                (when out)
///   codes[i][p * out_c + o] = quant[i]->code(v)           (for each consumer i with quant[i]; with codes_pad > 0
///                                                          at pixel p's place in a buffer with that border)
struct IntConvEpilogue {
  double unit = 0;  // the value of one unit of the integer sum
  const float* scale = nullptr;
  const float* shift = nullptr;
  const float* residual = nullptr;
  bool relu = false;
  float* out = nullptr;
  static constexpr int kMaxConsumers = 2;
  const CodeThresholds* quant[kMaxConsumers] = {nullptr, nullptr};
  uint8_t* codes[kMaxConsumers] = {nullptr, nullptr};
  /// The consumers' code buffers keep codes_pad pixels of border around each output image (the layout of
  /// IntConvGeometry::in_pad, for the next convolution); the convolution writes the interior only.
  int64_t codes_pad = 0;
};

/// The weights' layout int_conv2d_nhwc expects: (out_c, kernel, kernel, in_c) codes, row-major, i.e. each output
/// channel's depth() codes in (r, s, c) order. Packs (out_c, in_c, kernel, kernel) codes (PyTorch's order) into it.
/// max_input: the largest input code (pack_int8_weights).
PackedInt8Weights pack_conv_weights_rsc(int64_t out_c, int64_t in_c, int64_t kernel, const int8_t* oihw,
                                        int max_input = 255);

/// The convolution of NHWC codes (batch, in_h, in_w, in_c, within a border of g.in_pad; padding reads code 0) with
/// `w` (built by pack_conv_weights_rsc: out_c rows of depth() codes), each sum through `e`. Runs on OpenMP threads
/// over tiles of output pixels (on the calling thread inside a parallel region or for small layers). Returns how many
/// outputs the quantizers met as NaN (0 normally; the caller decides whether that is an error). Throws minidl::Error
/// on inconsistent geometry or pointers.
int64_t int_conv2d_nhwc(const IntConvGeometry& g, const uint8_t* codes, const PackedInt8Weights& w,
                        const IntConvEpilogue& e);

/// k[o] = float32(e.unit * double(e.scale[o])) for o < out_c: the one factor each sum is multiplied by. float32(sum)
/// is exact for |sum| < 2^24 (ResNet-20's 4-bit layers stay below 2^17); above it the conversion rounds once more.
/// Against the fake-quant model's float32(sum * unit) * scale (its conv's output through the batch norm) this is one
/// rounding less: both are within float rounding of the exact value, which packed_reference.cpp computes in double.
std::vector<float> epilogue_factors(const IntConvEpilogue& e, int64_t out_c);

namespace detail {
struct ThresholdSearch;  // backends/int_conv_avx512.h

/// What every epilogue call of one convolution shares, prepared once per call of int_conv2d_nhwc (not per tile):
/// the channels' factors (epilogue_factors) and, when the AVX-512 epilogue runs (chosen here, by cpu::active_isa()),
/// each consumer's search tables.
struct EpiloguePlan {
  EpiloguePlan(const IntConvEpilogue& e, int64_t out_c);
  ~EpiloguePlan();
  std::vector<float> factors;
  bool avx512 = false;
  bool avx2_codes = false;  // AVX2, whole vectors of channels, every consumer's book <= 16 codes (one fused pass)
  std::vector<ThresholdSearch> searches;
};

/// The epilogue of `rows` output pixels whose sums are acc (rows x out_c, row-major), written at pixel offset p0;
/// scalar, AVX2 or AVX-512 as the plan says. Returns the NaN count of the quantizers. Exposed for the tests.
int64_t int_conv_epilogue(const IntConvEpilogue& e, const EpiloguePlan& plan, int64_t out_c, int64_t p0, int64_t rows,
                          const int32_t* acc, float* scratch);
}  // namespace detail

}  // namespace minidl::backends
