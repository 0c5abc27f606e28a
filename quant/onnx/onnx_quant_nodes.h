// The node patterns of each quantizer (see onnx_export.h and docs/export.md): given a layer's quantizer state,
// add the nodes that turn its float weight or its input activation into exactly what minidl's fake
// quantization computes, and return the name of the quantized tensor.
#pragma once

#include <string>

#include "quant/onnx/onnx_export.h"
#include "quant/onnx/onnx_graph.h"
#include "quant/quant_layers.h"

namespace minidl::quant::onnx_export {

/// The weight the conv / gemm consumes: a float initializer, followed by the quantizer's pattern when the
/// spec quantizes weights. `quantizer` is the layer's WeightQuantizer and `quantized` what its forward
/// returns for `weight` (minidl's own fake-quantized weight, the reference the pattern must reproduce).
std::string emit_weight(GraphBuilder& g, const std::string& layer, const Tensor& weight, WeightQuantizer& quantizer,
                        const Tensor& quantized, OnnxExportReport& report);

/// The quantized input activation of a layer (x itself when the spec leaves activations in float).
/// `channels_layout`: "NCHW" for a conv input, "NC" for the fc input (MultiThreshold's data_layout).
std::string emit_activation(GraphBuilder& g, const std::string& layer, const std::string& x, const QuantSpec& spec,
                            const Tensor& act_alpha, const LevelSet& act_levels, const std::string& channels_layout,
                            OnnxExportReport& report);

}  // namespace minidl::quant::onnx_export
