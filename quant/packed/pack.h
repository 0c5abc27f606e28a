// quant::pack: a trained quantized CIFAR ResNet (quant::make_quant_resnet_cifar, eval mode) -> PackedResNet
// (issue 18; docs/deploy.md). Every conv / fc weight is read back as the integer codes its quantizer put it on:
// APoT / PoT: +-n over the unit wgt_alpha / n_max (quant::integer_levels); uniform (and 2-bit ternary): -s..s
// over wgt_alpha / s; binary: -1, 0, +1 over the layer's mean |w|; the first / last layers' 8-bit signed-max
// rule: round(127 w / max w) over max w / 127; float layers stay float32. Batch norm is folded into a per-channel
// scale and shift. A layer the format cannot represent exactly throws minidl::Error naming the layer.
#pragma once

#include <cstdint>
#include <string>

#include "nn/models/resnet.h"
#include "quant/packed/packed_resnet.h"

namespace minidl::quant {

/// Packs a CIFAR ResNet built from QuantConv2d / QuantLinear layers (any scheme of quant/). The model's weights
/// are read in eval mode (its running batch norm statistics); the model itself is not changed.
PackedResNet pack(const nn::ResNet& model);

/// File sizes of one model in both forms, in bytes, as written to disk (all tensors and the header counted).
struct PackedSizes {
  int64_t fp32 = 0;    // the model's state dict as float32 safetensors
  int64_t packed = 0;  // save_packed
  double ratio() const { return packed > 0 ? static_cast<double>(fp32) / static_cast<double>(packed) : 0.0; }
};
/// Writes `model`'s state dict (float32) to `scratch_path` (removed afterwards) and measures `packed_path`.
PackedSizes measure_sizes(const nn::Module& model, const std::string& packed_path, const std::string& scratch_path);

}  // namespace minidl::quant
