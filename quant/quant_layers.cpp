// QuantConv2d, QuantLinear and WeightQuantizer (see quant_layers.h). Forward order as APoT's QuantConv2d:
// quantize the weight (normalise, clip, project), quantize the input activation, then the float conv.
#include "quant/quant_layers.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/init.h"
#include "nn/modules/batch_norm.h"
#include "quant/coded_saves.h"

namespace minidl::quant {

namespace {
Scheme scheme_of(WeightQuant w) {
  return w == WeightQuant::Uniform ? Scheme::Uniform : w == WeightQuant::PoT ? Scheme::PoT : Scheme::APoT;
}
Scheme scheme_of(ActQuant a) {
  return a == ActQuant::Uniform ? Scheme::Uniform : a == ActQuant::PoT ? Scheme::PoT : Scheme::APoT;
}
bool uses_act_levels(const QuantSpec& s) {
  return s.act_quantized() && (s.act == ActQuant::Uniform || s.act == ActQuant::PoT || s.act == ActQuant::APoT);
}
// PyTorch's default init for conv / linear weights and biases.
void default_init(Tensor& w, Tensor& b) {
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));
  if (b.defined()) {
    const double fan_in = static_cast<double>(nn::init::calculate_fan_in_and_fan_out(w).first);
    nn::init::uniform_(b, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}
}  // namespace

WeightQuantizer::WeightQuantizer(const QuantSpec& s) : Module("WeightQuantizer"), spec(s) {
  spec.validate();
  if (spec.has_weight_alpha()) {
    wgt_alpha = register_parameter("wgt_alpha", scalar_tensor(spec.weight_alpha_default()));
    levels = LevelSet::make(scheme_of(spec.weight), spec.weight_bits, true);
  }
}

Tensor WeightQuantizer::forward(const Tensor& w) {
  if (!spec.weight_quantized()) return w;
  switch (spec.weight) {
    case WeightQuant::SignedMax8: return signed_max_int8(w, spec.semantics != Semantics::APoT_C);
    case WeightQuant::Binary: return spec.binary_from_optimizer ? w : binarize(w);
    default: {
      const Tensor z = weight_standardize(w, spec.semantics == Semantics::APoT_C);
      return quantize_weight(z, wgt_alpha, levels, spec.semantics, spec.grad_scale);
    }
  }
}

namespace {
// The code book of a quantized layer's input xq (coded_saves.h); undefined when it is not coded.
Tensor input_codebook(const Tensor& xq, const QuantSpec& spec, const Tensor& act_alpha, const LevelSet& act_levels) {
  if (!spec.act_quantized() || !CodedSaveGuard::wanted(xq)) return {};
  switch (spec.act) {
    case ActQuant::PACT: return pact_codebook(act_alpha, spec.act_bits, xq.dtype());
    case ActQuant::IntGrid: return int_grid_codebook(spec.act_bits, xq.dtype());
    default: return activation_codebook(act_alpha, act_levels, xq.dtype());
  }
}
}  // namespace

Tensor quantize_input(const Tensor& x, const QuantSpec& spec, const Tensor& act_alpha, const LevelSet& act_levels,
                      CodedTensor* coded) {
  if (!spec.act_quantized()) return x;
  switch (spec.act) {
    case ActQuant::PACT: return pact(x, act_alpha, spec.act_bits, coded);
    case ActQuant::IntGrid: return int_grid_activation(x, spec.act_bits);
    default: return quantize_activation(x, act_alpha, act_levels, spec.semantics, spec.grad_scale, coded);
  }
}

// ---- QuantConv2d ----

QuantConv2d::QuantConv2d(const nn::ConvSpec& g, const QuantSpec& s) : Module("QuantConv2d"), geometry(g), spec(s) {
  spec.validate();
  MINIDL_CHECK(g.in_channels > 0 && g.out_channels > 0 && g.kernel > 0 && g.stride > 0 && g.padding >= 0,
               "quant::QuantConv2d ('", g.name, "'): invalid geometry in=", g.in_channels, " out=", g.out_channels,
               " kernel=", g.kernel, " stride=", g.stride, " padding=", g.padding);
  weight = register_parameter("weight", empty({g.out_channels, g.in_channels, g.kernel, g.kernel}));
  if (g.bias) bias = register_parameter("bias", empty({g.out_channels}));
  default_init(weight, bias);
  if (spec.has_act_alpha()) act_alpha = register_parameter("act_alpha", scalar_tensor(spec.act_alpha_default()));
  // The child exists (and shows in the state dict) only when it holds a parameter, as in the checkpoints.
  weight_quant = std::make_shared<WeightQuantizer>(spec);
  if (spec.has_weight_alpha()) register_module("weight_quant", weight_quant);
  if (uses_act_levels(spec)) act_levels = LevelSet::make(scheme_of(spec.act), spec.act_bits, false);
}

Conv2dParams QuantConv2d::params() const {
  Conv2dParams p;
  p.stride_h = p.stride_w = geometry.stride;
  p.pad_h = p.pad_w = geometry.padding;
  return p;
}

Tensor QuantConv2d::quantized_weight() { return weight_quant->forward(weight); }

Tensor QuantConv2d::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == geometry.in_channels, "quant::QuantConv2d ('", path(),
               "'): expected input (N, ", geometry.in_channels, ", H, W), got ", shape_str(x.sizes()));
  const Tensor wq = quantized_weight();
  // conv2d saves xq for the weight gradient: as u8 codes (coded_saves.h), rebuilt bit for bit in its backward
  CodedTensor coded;
  const Tensor xq = quantize_input(x, spec, act_alpha, act_levels, CodedSaveGuard::wanted(x) ? &coded : nullptr);
  if (!coded.codes.defined()) coded.codebook = input_codebook(xq, spec, act_alpha, act_levels);
  const CodedSaveGuard guard(xq, coded);
  return conv2d(xq, wq, bias, params());
}

Tensor QuantConv2d::forward_after_bn_relu(nn::BatchNorm2d& bn, Tensor x) {
  const bool levels_quantizer = spec.act_quantized() && (spec.act == ActQuant::Uniform || spec.act == ActQuant::PoT ||
                                                         spec.act == ActQuant::APoT);
  const bool pact_quantizer = spec.act_quantized() && spec.act == ActQuant::PACT;
  const bool fusable = fused_bn_relu_quantize() && (levels_quantizer || pact_quantizer) && bn.is_training() &&
                       !bn.training_override && x.defined() && x.dim() == 4 && x.device().is_cpu() &&
                       !autograd::SavedTensorHooksGuard::active();
  if (!fusable) return Module::forward_after_bn_relu(bn, std::move(x));
  MINIDL_CHECK(x.size(1) == bn.num_features && bn.num_features == geometry.in_channels, "quant::QuantConv2d ('", path(),
               "'): batch norm '", bn.path(), "' of ", bn.num_features, " channels before a conv of ",
               geometry.in_channels, " input channels, input ", shape_str(x.sizes()));
  bn.count_batch();
  // as forward(): the weight first, then the input quantizer (here with the batch norm and ReLU before it)
  autograd::ModuleNameGuard guard(path());
  const Tensor wq = quantized_weight();
  CodedTensor coded;
  const bool want_codes = CodedSaveGuard::wanted(x);
  const Tensor xq =
      pact_quantizer ? batch_norm_relu_pact(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.options.momentum,
                                            bn.options.eps, act_alpha, spec.act_bits, want_codes ? &coded : nullptr)
                     : batch_norm_relu_quantize(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                bn.options.momentum, bn.options.eps, act_alpha, act_levels,
                                                spec.semantics, spec.grad_scale, want_codes ? &coded : nullptr);
  if (!coded.codes.defined()) coded.codebook = input_codebook(xq, spec, act_alpha, act_levels);
  const CodedSaveGuard save_guard(xq, coded);
  return conv2d(xq, wq, bias, params());
}

void QuantConv2d::convert_state(DType dtype) {
  act_levels = act_levels.to(dtype);
  weight_quant->levels = weight_quant->levels.to(dtype);
}

std::string QuantConv2d::extra_repr() const {
  const auto& g = geometry;
  std::string s = std::to_string(g.in_channels) + ", " + std::to_string(g.out_channels) + ", kernel_size=(" +
                  std::to_string(g.kernel) + ", " + std::to_string(g.kernel) + "), stride=(" +
                  std::to_string(g.stride) + ", " + std::to_string(g.stride) + ")";
  if (g.padding) s += ", padding=(" + std::to_string(g.padding) + ", " + std::to_string(g.padding) + ")";
  if (!g.bias) s += ", bias=False";
  return s + ", " + spec.str();
}

// ---- QuantLinear ----

QuantLinear::QuantLinear(const nn::LinearSpec& g, const QuantSpec& s) : Module("QuantLinear"), geometry(g), spec(s) {
  spec.validate();
  MINIDL_CHECK(g.in_features > 0 && g.out_features > 0, "quant::QuantLinear ('", g.name,
               "'): invalid geometry in=", g.in_features, " out=", g.out_features);
  weight = register_parameter("weight", empty({g.out_features, g.in_features}));
  if (g.bias) bias = register_parameter("bias", empty({g.out_features}));
  default_init(weight, bias);
  if (spec.has_act_alpha()) act_alpha = register_parameter("act_alpha", scalar_tensor(spec.act_alpha_default()));
  weight_quant = std::make_shared<WeightQuantizer>(spec);
  if (spec.has_weight_alpha()) register_module("weight_quant", weight_quant);
  if (uses_act_levels(spec)) act_levels = LevelSet::make(scheme_of(spec.act), spec.act_bits, false);
}

Tensor QuantLinear::quantized_weight() { return weight_quant->forward(weight); }

Tensor QuantLinear::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 2 && x.size(1) == geometry.in_features, "quant::QuantLinear ('", path(),
               "'): expected input (N, ", geometry.in_features, "), got ", shape_str(x.sizes()));
  const Tensor wq = quantized_weight();
  CodedTensor coded;
  const Tensor xq = quantize_input(x, spec, act_alpha, act_levels, CodedSaveGuard::wanted(x) ? &coded : nullptr);
  if (!coded.codes.defined()) coded.codebook = input_codebook(xq, spec, act_alpha, act_levels);
  const CodedSaveGuard guard(xq, coded);
  return linear(xq, wq, bias);
}

void QuantLinear::convert_state(DType dtype) {
  act_levels = act_levels.to(dtype);
  weight_quant->levels = weight_quant->levels.to(dtype);
}

std::string QuantLinear::extra_repr() const {
  return "in_features=" + std::to_string(geometry.in_features) +
         ", out_features=" + std::to_string(geometry.out_features) + ", bias=" + (geometry.bias ? "True" : "False") +
         ", " + spec.str();
}

}  // namespace minidl::quant
