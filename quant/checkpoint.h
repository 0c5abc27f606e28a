// Quantizer state in checkpoints: show_params (the APoT programs' "weight alpha: ..., act alpha: ..." lines),
// progressive initialisation (start a k-bit model from a higher-bit or float checkpoint, spec section 1.11),
// and a strict load that names what does not match when a checkpoint of another architecture is given.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace minidl::quant {

struct LayerAlphas {
  std::string name;     // dotted layer name
  double weight_alpha;  // NaN when the layer has none
  double act_alpha;     // NaN when the layer has none
};

/// (weight alpha, activation alpha) of every quantized layer with a learnable clip, in module order.
std::vector<LayerAlphas> layer_alphas(const nn::Module& model);
/// Prints one "weight alpha: 2.064435, act alpha: 1.453570" line per such layer (6 decimals, as seed 002;
/// "-" for a missing side) and returns the values.
std::vector<LayerAlphas> show_params(const nn::Module& model, std::ostream& os);

/// Whether a state-dict key is quantizer state that a checkpoint of another precision may lack or carry extra
/// (`act_alpha`, `wgt_alpha`, APoT-I's `weight_alpha`).
bool is_quantizer_key(const std::string& key);

/// Progressive initialisation: copies every entry of `checkpoint` into `model` by name (weights, BN statistics
/// and learned alphas). Quantizer keys may be missing (alphas keep their initial values, e.g. from a float
/// checkpoint) or extra (a quantized checkpoint into a float model); any other missing or unexpected key, and
/// any shape mismatch, throws one minidl::Error naming them. Returns the skipped quantizer keys.
nn::LoadResult load_progressive(nn::Module& model, const TensorMap& checkpoint);

/// Strict load for evaluation/resume: every key must match in name and shape; the error lists all missing and
/// unexpected keys (a few of each) and says the checkpoint is of another architecture or precision.
void load_checkpoint(nn::Module& model, const TensorMap& checkpoint);

}  // namespace minidl::quant
