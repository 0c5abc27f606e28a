// Quantized ResNets: the nn ResNet builders with a conv/linear factory that makes QuantConv2d / QuantLinear
// from a QuantConfig. Defaults follow APoT (spec/quant.md sections 1.8, 1.9, 4.2): every conv inside the
// blocks (1x1 shortcuts included) uses `body`; the first conv and the last fc get 8-bit signed-max weights and
// full-precision inputs; fully float first/last layers are an option (Quantized_ResNet, seed 004).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/models/resnet.h"
#include "quant/quant_spec.h"

namespace minidl::quant {

enum class EdgeLayers { Int8, Float };

struct QuantConfig {
  QuantSpec body = QuantSpec::same(Scheme::APoT, 4);
  /// First conv and last fc: Int8 (APoT: 8-bit signed-max weights, float inputs; codes clamped to +-127
  /// unless body.semantics is APoT-C) or Float.
  EdgeLayers edges = EdgeLayers::Int8;
  /// Overrides by dotted name or name prefix ("layer1" = every conv of stage 1, "layer2.0.conv1" = one conv);
  /// the longest matching key wins. Applies to the first conv and fc too (names "conv1", "fc").
  std::map<std::string, QuantSpec> per_layer;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  nn::Shortcut shortcut = nn::Shortcut::B;

  /// The spec the layer `name` gets (first = "conv1", last = "fc").
  QuantSpec spec_for(const std::string& name) const;
  /// The whole config for a 32-bit (float blocks) or b-bit APoT model with the given semantics, as the APoT
  /// CIFAR code builds it for --bit b.
  static QuantConfig apot(int bits, Semantics sem = Semantics::APoT_I);
  /// The config of the seeds' command lines: scheme "apot" | "pot" | "uniform" (weights and activations of
  /// that scheme; weight bits `bits`, activation bits `act_bits`, 32 = float), "pact" (uniform weights, PACT
  /// activations), "binary" (1-bit weights, PACT activations, float first/last layers as Quantized_ResNet;
  /// `binary_from_optimizer` for the hysteresis optimizer). Unknown schemes and bit widths throw one line.
  static QuantConfig from_scheme(const std::string& scheme, int bits, int act_bits, Semantics sem = Semantics::APoT_I,
                                 bool binary_from_optimizer = false);
  /// Activation bits of every conv in stage `stage` (1-based: "layer1", ...), seed 004's --quantized-layerN.
  void set_stage_act_bits(int stage, int act_bits);
};

/// CIFAR ResNet-20/32/56 (depth 6n+2) with quantized layers.
std::shared_ptr<nn::ResNet> make_quant_resnet_cifar(int64_t depth, const QuantConfig& cfg);
/// ImageNet ResNet-18/34 with quantized layers (cfg.num_classes defaults to 10: set 1000 for ImageNet).
std::shared_ptr<nn::ResNet> make_quant_resnet_imagenet(int64_t depth, const QuantConfig& cfg);

/// One line per quantized layer, "layer1.0.conv1: w4a4 (apot/apot, APoT-I)", in module order.
std::vector<std::string> describe_layers(const nn::Module& model);

/// The config a checkpoint's metadata asks for: `bit` (32 = float blocks) and `semantics` ("APoT-C"/"APoT-I";
/// APoT-I when absent). Throws when `bit` is missing or not a number.
QuantConfig config_from_metadata(const Metadata& meta);

}  // namespace minidl::quant
