// The quantization ops of minidl_run_op_program (tests/tools/quant_vs_torch.py generates them and runs the same
// program with a PyTorch transcription of spec/quant.md): the quantizer ops of quant/ops.h, and QuantConv2d /
// QuantLinear as layers (alone and after a batch norm + ReLU, the fused path of a ResNet block). The layers take
// their parameters from the program's leaves, so the leaves' gradients are the layer's.
#pragma once

#include <minidl.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/modules/batch_norm.h"
#include "quant/ops.h"
#include "quant/quant_layers.h"

namespace minidl::program_io {

using QuantOp = std::function<Tensor(const std::vector<Tensor>&, const nlohmann::json&)>;

inline quant::LevelSet level_set_of(const nlohmann::json& n, bool is_signed, const Tensor& like) {
  return quant::LevelSet::make(quant::parse_scheme(n.at("scheme").get<std::string>()), n.at("bits").get<int>(),
                               is_signed, like.dtype());
}

inline quant::Semantics semantics_of(const nlohmann::json& n) {
  return quant::parse_semantics(n.value("semantics", std::string("APoT-I")));
}

/// A layer's QuantSpec from the node: "weight" / "weight_bits", "act" / "act_bits" (quant_spec.h's names),
/// "semantics", "grad_scale".
inline quant::QuantSpec quant_spec_of(const nlohmann::json& n) {
  static const std::map<std::string, quant::WeightQuant> weights = {
      {"float", quant::WeightQuant::Float},   {"uniform", quant::WeightQuant::Uniform},
      {"pot", quant::WeightQuant::PoT},       {"apot", quant::WeightQuant::APoT},
      {"binary", quant::WeightQuant::Binary}, {"int8", quant::WeightQuant::SignedMax8}};
  static const std::map<std::string, quant::ActQuant> acts = {
      {"float", quant::ActQuant::Float}, {"uniform", quant::ActQuant::Uniform}, {"pot", quant::ActQuant::PoT},
      {"apot", quant::ActQuant::APoT},   {"pact", quant::ActQuant::PACT},       {"intgrid", quant::ActQuant::IntGrid}};
  quant::QuantSpec s;
  s.weight = weights.at(n.at("weight").get<std::string>());
  s.weight_bits = n.at("weight_bits").get<int>();
  s.act = acts.at(n.at("act").get<std::string>());
  s.act_bits = n.at("act_bits").get<int>();
  s.semantics = semantics_of(n);
  s.grad_scale = n.value("grad_scale", 1.0);
  return s;
}

/// The layer's parameters from in[first..]: weight, then act_alpha and wgt_alpha where the spec has them.
template <class Layer>
void take_parameters(Layer& layer, const std::vector<Tensor>& in, size_t first) {
  size_t i = first;
  layer.weight = in.at(i++);
  if (layer.spec.has_act_alpha()) layer.act_alpha = in.at(i++);
  if (layer.spec.has_weight_alpha()) layer.weight_quant->wgt_alpha = in.at(i++);
  MINIDL_CHECK(i == in.size(), "quantized layer: ", in.size(), " inputs, expected ", i);
}

inline Tensor run_quant_conv2d(const std::vector<Tensor>& in, const nlohmann::json& n, bool after_bn) {
  // in: x, [running_mean, running_var, bn weight, bn bias when after_bn], weight, [act_alpha], [wgt_alpha]
  const Tensor& w = in.at(after_bn ? 5 : 1);
  nn::ConvSpec g;
  g.name = "conv";
  g.out_channels = w.size(0);
  g.in_channels = w.size(1);
  g.kernel = w.size(2);
  g.stride = n.value("stride", 1);
  g.padding = n.value("padding", 0);
  quant::QuantConv2d conv(g, quant_spec_of(n));
  take_parameters(conv, in, after_bn ? 5 : 1);
  if (!after_bn) return conv.forward(in[0]);
  nn::BatchNormOptions o;
  o.momentum = n.value("momentum", 0.1);
  o.eps = n.value("eps", 1e-5);
  nn::BatchNorm2d bn(in[1].size(0), o);
  bn.running_mean = in[1];  // updated in place, as the op programs' batch_norm does
  bn.running_var = in[2];
  bn.weight = in[3];
  bn.bias = in[4];
  return conv.forward_after_bn_relu(bn, in[0]);
}

inline const std::map<std::string, QuantOp>& quant_ops() {
  static const std::map<std::string, QuantOp> table = {
      {"weight_standardize",
       [](auto& a, auto& n) { return quant::weight_standardize(a[0], n.at("detach_stats").template get<bool>()); }},
      {"quantize_weight",
       [](auto& a, auto& n) {
         return quant::quantize_weight(a[0], a[1], level_set_of(n, true, a[0]), semantics_of(n),
                                       n.value("grad_scale", 1.0));
       }},
      {"quantize_activation",
       [](auto& a, auto& n) {
         return quant::quantize_activation(a[0], a[1], level_set_of(n, false, a[0]), semantics_of(n),
                                           n.value("grad_scale", 1.0));
       }},
      {"batch_norm_relu_quantize",
       [](auto& a, auto& n) {
         // in: x, running_mean, running_var, weight, bias, alpha
         return quant::batch_norm_relu_quantize(a[0], a[1], a[2], a[3], a[4], n.value("momentum", 0.1),
                                                n.value("eps", 1e-5), a[5], level_set_of(n, false, a[0]),
                                                semantics_of(n), n.value("grad_scale", 1.0), nullptr);
       }},
      {"batch_norm_relu_pact",
       [](auto& a, auto& n) {
         return quant::batch_norm_relu_pact(a[0], a[1], a[2], a[3], a[4], n.value("momentum", 0.1),
                                            n.value("eps", 1e-5), a[5], n.at("bits").template get<int>(), nullptr);
       }},
      {"signed_max_int8",
       [](auto& a, auto& n) { return quant::signed_max_int8(a[0], n.at("clamp").template get<bool>()); }},
      {"pact", [](auto& a, auto& n) { return quant::pact(a[0], a[1], n.at("bits").template get<int>()); }},
      {"int_grid_activation",
       [](auto& a, auto& n) { return quant::int_grid_activation(a[0], n.at("bits").template get<int>()); }},
      {"binarize", [](auto& a, auto&) { return quant::binarize(a[0]); }},
      {"quant_conv2d", [](auto& a, auto& n) { return run_quant_conv2d(a, n, false); }},
      {"bn_relu_quant_conv2d", [](auto& a, auto& n) { return run_quant_conv2d(a, n, true); }},
      {"quant_linear",
       [](auto& a, auto& n) {
         nn::LinearSpec g;
         g.name = "fc";
         g.out_features = a.at(1).size(0);
         g.in_features = a.at(1).size(1);
         g.bias = false;
         quant::QuantLinear fc(g, quant_spec_of(n));
         take_parameters(fc, a, 1);
         return fc.forward(a[0]);
       }},
  };
  return table;
}

}  // namespace minidl::program_io
