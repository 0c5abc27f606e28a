// ONNX export of a trained (quantized or float) ResNet, eval mode (docs/export.md). Every layer is written as
// the standard op it is (Conv, BatchNormalization, Relu, Add, GlobalAveragePool, Flatten, Gemm), weights as
// float initializers, and each quantizer as the node pattern that reproduces minidl's fake quantization:
//   - uniform grids (uniform weights/activations 2-8 bits, ternary 2-bit weights, the 8-bit first/last layer,
//     PACT and BinActive activations): QCDQ, QuantizeLinear -> Clip (to the b-bit code range) ->
//     DequantizeLinear, standard ONNX that any runtime executes;
//   - PoT / APoT weights: a QONNX `Quant` node on the integer grid their levels lie on (APoT levels are sums of
//     powers of two, so every level is an integer code times one unit);
//   - PoT / APoT activations: a QONNX `MultiThreshold` whose thresholds are the level midpoints, each repeated
//     by the code gap it crosses, so its output is the integer code, times out_scale = the unit;
//   - binary weights: a QONNX `BipolarQuant` node (scale = mean |w|).
// QONNX nodes live in the domain "qonnx.custom_op.general"; a model holding one needs a QONNX-aware consumer.
// BatchNorm is kept as BatchNormalization nodes, not folded: folding would move quantized weights off their
// grid (the conv weight would become w_q * gamma / sigma per channel) and so hide the quantization.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/models/resnet.h"

namespace minidl::quant {

struct OnnxExportOptions {
  int64_t opset = 13;  // QuantizeLinear / Clip on int8 need 13; ORT and onnx 1.12 both support it
  /// Extra key/value pairs for the model's metadata_props (e.g. the checkpoint it came from).
  std::map<std::string, std::string> metadata;
};

struct OnnxExportReport {
  int64_t nodes = 0;
  int64_t qcdq_patterns = 0;  // QuantizeLinear -> Clip -> DequantizeLinear triples
  int64_t qonnx_nodes = 0;    // Quant / BipolarQuant / MultiThreshold
  /// Weights whose float value sat so close to a rounding midpoint that ONNX's QuantizeLinear (x / scale,
  /// half to even) would pick the other code than minidl's quantizer (x / alpha * s): their initializer holds
  /// minidl's code times the scale instead, so the exported grid equals minidl's exactly.
  int64_t weight_tie_fixes = 0;
  std::vector<std::string> notes;  // one line each: what a reader of the file should know
  /// True when every node is standard ONNX (no QONNX domain): onnxruntime runs it as is.
  bool standard_only() const { return qonnx_nodes == 0; }
};

/// True when this build of minidl can write ONNX (it found Debian's libonnx-dev / libprotobuf-dev).
bool onnx_export_available();

/// Writes `model` (a CIFAR or ImageNet ResNet from nn::resnet_* or quant::make_quant_resnet_*, on the CPU) to
/// `path` as an ONNX model with input "input" (N, C, H, W) and output "logits" (N, classes). Throws
/// minidl::Error with one line for a layer it cannot express (e.g. APoT-C 8-bit codes below -128).
OnnxExportReport export_onnx(nn::ResNet& model, const std::string& path, const OnnxExportOptions& options = {});

}  // namespace minidl::quant
