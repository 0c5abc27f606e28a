// Quantized layers: QuantConv2d and QuantLinear run their weights and their input through the quantizer ops of
// a QuantSpec, then the ordinary conv / linear. Parameter names follow the APoT CIFAR checkpoints:
// `weight`, [`bias`], `act_alpha` (activation clip) and `weight_quant.wgt_alpha` (weight clip, held by the
// WeightQuantizer child), so released checkpoints load by name. Level sets are rebuilt from the spec, never
// saved.
#pragma once

#include "backends/op_params.h"
#include "nn/models/resnet.h"
#include "nn/module.h"
#include "quant/quant_spec.h"

namespace minidl::quant {

/// Turns a layer's weight into the weight the conv/linear uses (normalise + clip + project, binarise, 8-bit).
/// Holds `wgt_alpha` when the scheme has a learnable weight clip.
class WeightQuantizer : public nn::Module {
 public:
  explicit WeightQuantizer(const QuantSpec& spec);
  /// The quantized weight (the input itself for full precision, or for binary weights kept by the optimizer).
  Tensor forward(const Tensor& weight) override;
  std::string extra_repr() const override { return spec.str(); }

  QuantSpec spec;
  Tensor wgt_alpha;  // 0-dim, or undefined
  LevelSet levels;   // signed set (Uniform/PoT/APoT)

 protected:
  void convert_state(DType dtype) override { levels = levels.to(dtype); }
};

/// The input-activation side: quantize_activation / pact / int_grid_activation with the spec's settings.
struct CodedTensor;
/// coded (optional): for the level-set quantizers, also the output's codes when the backend writes them in its
/// forward pass (quantize_activation's `coded`).
Tensor quantize_input(const Tensor& x, const QuantSpec& spec, const Tensor& act_alpha, const LevelSet& act_levels,
                      CodedTensor* coded = nullptr);

class QuantConv2d : public nn::Module {
 public:
  /// Geometry from the model's conv request (square kernel, groups 1).
  QuantConv2d(const nn::ConvSpec& geometry, const QuantSpec& spec);
  Tensor forward(const Tensor& x) override;
  /// relu(bn(x)) into this layer: with an APoT, PoT, uniform or PACT activation quantizer, a training bn without a
  /// training override, host tensors, no saved-tensor hooks and fused_bn_relu_quantize() on, the batch norm + ReLU +
  /// input quantizer run as one op (quant::batch_norm_relu_quantize / batch_norm_relu_pact: the same bits; on the
  /// cpu one forward pass, and the ReLU's output is not kept); otherwise bn.forward_relu then this layer.
  Tensor forward_after_bn_relu(nn::BatchNorm2d& bn, Tensor x) override;
  std::string extra_repr() const override;
  /// The weight the convolution uses (quantized), for inspection.
  Tensor quantized_weight();
  Conv2dParams params() const;

  nn::ConvSpec geometry;
  QuantSpec spec;
  Tensor weight;     // (K, C, R, S)
  Tensor bias;       // (K) or undefined
  Tensor act_alpha;  // 0-dim, or undefined
  std::shared_ptr<WeightQuantizer> weight_quant;
  LevelSet act_levels;

 protected:
  // Module::to(DType) converts the parameters (alphas included); the level sets follow here. weight_quant is
  // converted directly because it is a registered child only when it holds a parameter.
  void convert_state(DType dtype) override;
};

class QuantLinear : public nn::Module {
 public:
  QuantLinear(const nn::LinearSpec& geometry, const QuantSpec& spec);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Tensor quantized_weight();

  nn::LinearSpec geometry;
  QuantSpec spec;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
  Tensor act_alpha;
  std::shared_ptr<WeightQuantizer> weight_quant;
  LevelSet act_levels;

 protected:
  // Module::to(DType) converts the parameters (alphas included); the level sets follow here. weight_quant is
  // converted directly because it is a registered child only when it holds a parameter.
  void convert_state(DType dtype) override;
};

}  // namespace minidl::quant
