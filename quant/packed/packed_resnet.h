// Packed (deployment) ResNets (issue 18, docs/deploy.md): an eval-only CIFAR ResNet whose conv / fc weights are
// bit-packed integer codes over a per-layer unit, made from a trained quantized model by quant::pack
// (quant/packed/pack.h) and saved / loaded as safetensors. A body conv whose input codes fit 8 unsigned bits
// and whose weight codes fit 8 signed bits runs on integers (backends::int_conv2d_nhwc): its input is quantized
// by the layer's own activation quantizer, given as float32 thresholds derived from the fake-quant op itself (so
// codes and ties are the trained model's; prepare() derives and checks them), the channels-last codes are
// multiplied with the weight codes in exact int32 sums, and each output is rescaled once, acc * (act_unit *
// weight_unit) rounded to float32, then the batch norm folded into a per-channel scale and shift (x * scale +
// shift, the cpu inference kernel's arithmetic). PackedResNet::forward keeps activations channels-last and has
// each conv's epilogue write the codes its consumers read (conv1 -> conv2 never materializes floats). Other layers
// (float inputs of the first conv and fc, PoT activations with more than 255 codes) run the float conv on the
// weights rebuilt from their codes, still stored packed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/int_conv.h"
#include "backends/int_gemm.h"
#include "quant/packed/packed_format.h"
#include "quant/quant_spec.h"
#include "tensor/tensor.h"

namespace minidl::quant {

/// One conv (or the fc, a 1x1 conv on a 1x1 map) of a packed model.
struct PackedLayer {
  std::string name;  // dotted name as in the trained model ("layer1.0.conv1", "fc")
  bool linear = false;
  int64_t in = 0, out = 0, kernel = 1, stride = 1, padding = 0;

  // Weights: codes (weight * 1 = code * weight_unit) for every quantized scheme, or float32 (float layers).
  WeightQuant weight_kind = WeightQuant::Float;
  int weight_bits = 32;
  PackedCodes codes;       // weight_kind != Float: out * in * kernel^2 codes, (out, in, r, s) order
  double weight_unit = 0;  // value of code 1
  Tensor float_weight;     // weight_kind == Float: (out, in, k, k) or (out, in)

  // Input quantizer, as the fake-quant layer applies it (act == Float: none).
  ActQuant act = ActQuant::Float;
  int act_bits = 32;
  Semantics semantics = Semantics::APoT_I;
  double act_alpha = 0;  // the float32 clip value (held exactly in a double)

  // Per output channel: y = conv * scale + shift (batch norm folded; fc: scale 1, shift = bias).
  std::vector<float> scale, shift;

  /// Builds the run-time state (gemm weights or the dequantized float weight, the activation quantizer);
  /// throws minidl::Error when the layer's fields disagree (code count vs geometry, missing alpha, ...).
  void prepare();
  /// Whether prepare() chose the integer path.
  bool integer() const { return integer_; }
  /// Integer layers: what the convolution runs on this host now ("bit-serial" for binary weights with 1- or 2-bit
  /// inputs where backends::bitserial_conv_runnable, else the GEMM kernel's name, backends::int_gemm_kernel_name);
  /// "" for float layers.
  std::string int_kernel() const;
  /// Value of activation code 1 and the largest activation code (after prepare; act != Float).
  double act_unit() const { return act_unit_; }
  int64_t act_max_code() const { return act_max_code_; }
  /// y = [relu](layer(x) * scale + shift [+ residual]); x (N, in, H, W) or (N, in) for the fc, float32, cpu.
  Tensor forward(const Tensor& x, const Tensor& residual, bool relu) const;
  /// The layer's input activation codes (after prepare; integer layers) in x's logical (N, C, H, W) order:
  /// exactly the fake-quant quantizer's output divided by act_unit. Exposed for the tests.
  std::vector<uint8_t> input_codes(const Tensor& x) const;
  /// Integer layers: the input quantizer as float32 thresholds (backends::CodeThresholds), derived from the
  /// fake-quant op by prepare().
  const backends::CodeThresholds& input_quantizer() const { return act_codes_; }
  /// Integer code buffers keep this many pixels of code 0 around each image (backends::IntConvGeometry::in_pad):
  /// the convolutions then read every window in place, padding included.
  static constexpr int64_t kCodeBorder = 1;
  /// Integer layers: the codes of x (N, in, H, W) float32 cpu in any layout, as a u8 tensor
  /// (N, H + 2 kCodeBorder, W + 2 kCodeBorder, in) (NHWC with a zero border, from the caching allocator); throws on
  /// NaN.
  Tensor codes_nhwc(const Tensor& x) const;
  /// Integer layers: the conv of NHWC codes (N, H, W, in, within a border of kCodeBorder) through epilogue `e`,
  /// whose unit, scale, shift and codes_pad this fills in (the caller sets residual, relu, out and the consumers,
  /// whose buffers have the same border: code_buffer); throws when a consumer meets NaN.
  void conv_codes(int64_t N, int64_t H, int64_t W, const uint8_t* codes, backends::IntConvEpilogue e) const;
  /// A u8 code buffer for N images of H x W x C codes within a border of kCodeBorder zeros (the interior is
  /// uninitialised).
  static Tensor code_buffer(int64_t N, int64_t H, int64_t W, int64_t C);
  /// Float path: the weight the float conv uses (rebuilt from the codes as the fake-quant quantizer computes
  /// it); undefined on the integer path.
  const Tensor& dequantized_weight() const { return deq_weight_; }
  /// The same layer in float64 (quant/packed/packed_reference.cpp; docs/deploy.md, "Exactness in float64"): x and
  /// residual float64 cpu, shapes as forward(); returns float64. The codes come from the layer's quantizer op run
  /// in float64 on the exact level set (exact_levels_f64); the sums are exact integers (gemm_u8s8_s32, or int64
  /// where the codes do not fit 8 bits); a float input (stem, fc) is summed in double against code * unit (or
  /// the float32 weight). The rescale, x * scale + shift (the stored float32 values), residual and ReLU run in
  /// double.
  Tensor forward_f64(const Tensor& x, const Tensor& residual, bool relu) const;
  /// The input codes forward_f64 uses (act != Float), in (N, C, H, W) order.
  std::vector<int32_t> input_codes_f64(const Tensor& x) const;

 private:
  Tensor quantize(const Tensor& x) const;
  backends::CodeThresholds derive_thresholds() const;
  bool integer_ = false;
  double act_unit_ = 0;
  int64_t act_max_code_ = 0;
  QuantSpec act_spec_;
  Tensor act_alpha_t_;
  LevelSet act_levels_;
  backends::CodeThresholds act_codes_;  // integer path: the input quantizer
  backends::PackedInt8Weights gemm_w_;  // integer path: (out, r, s, in) codes
  double unit_prod_ = 0;                // integer path: act_unit * weight_unit, the value of one unit of the sum
  Tensor deq_weight_;                   // float path: the fake-quant layer's float weight, bit for bit
  Tensor bias_t_;                       // linear: the bias (= shift)
};

struct PackedBlock {
  std::string name;  // "layer2.0"
  int64_t in_planes = 0, planes = 0, stride = 1;
  PackedLayer conv1, conv2;
  enum class Shortcut { Identity, Conv, Pad } shortcut = Shortcut::Identity;
  PackedLayer downsample;  // Shortcut::Conv
};

/// A packed CIFAR ResNet (eval only).
class PackedResNet {
 public:
  int64_t in_channels = 3, num_classes = 10;
  PackedLayer stem;  // conv1 (+ bn1 folded), ReLU
  std::vector<PackedBlock> blocks;
  PackedLayer fc;
  std::string description;  // the trained model's quantization, for messages ("w4a4 (apot/apot, APoT-I)")
  /// forward runs the residual blocks on at most this many images at a time (0: the whole batch at once) when
  /// they are all integer layers, so a pass's activations stay in cache between layers; the logits are the same
  /// bits for every value.
  int64_t images_per_pass = 16;

  /// prepare() on every layer, and checks that the layers chain (channels, kinds).
  void prepare();
  /// (N, in_channels, H, W) float32 cpu -> logits (N, num_classes).
  Tensor forward(const Tensor& x) const;
  /// (N, in_channels, H, W) float64 cpu -> float64 logits: every layer's forward_f64, the option-A shortcut and
  /// the average pool in double (packed_reference.cpp).
  Tensor forward_f64(const Tensor& x) const;
  /// Layers in forward order (stem, each block's conv1, conv2, downsample, fc).
  std::vector<const PackedLayer*> layers() const;
};

/// Writes the model as safetensors (layout: docs/deploy.md) atomically.
void save_packed(const PackedResNet& m, const std::string& path);
/// Reads a file written by save_packed and prepares it; a malformed or inconsistent file throws minidl::Error
/// naming the file and the problem.
PackedResNet load_packed(const std::string& path);

}  // namespace minidl::quant
