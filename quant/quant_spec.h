// QuantSpec: how one layer quantizes its weights and its input activations (scheme + bits each, the APoT
// semantics, alpha initial values). Bits 32 mean full precision for that side. The schemes beyond the level
// sets: Binary weights (per-layer scaled sign), SignedMax8 weights (APoT's first/last-layer 8-bit rule), PACT
// activations (learnable clip, PACT gradients) and IntGrid activations (Quantized_ResNet's BinActive).
#pragma once

#include <string>

#include "quant/levels.h"
#include "quant/ops.h"

namespace minidl::quant {

enum class WeightQuant : uint8_t { Float, Uniform, PoT, APoT, Binary, SignedMax8 };
enum class ActQuant : uint8_t { Float, Uniform, PoT, APoT, PACT, IntGrid };

const char* weight_quant_name(WeightQuant w);  // "float", "uniform", "pot", "apot", "binary", "int8"
const char* act_quant_name(ActQuant a);        // "float", "uniform", "pot", "apot", "pact", "intgrid"

struct QuantSpec {
  WeightQuant weight = WeightQuant::APoT;
  int weight_bits = 4;
  ActQuant act = ActQuant::APoT;
  int act_bits = 4;
  Semantics semantics = Semantics::APoT_I;
  double grad_scale = 1.0;  // multiplies both alphas' gradients (APoT-I's grad_scale; 1 = off)
  /// Initial clip values; <= 0 means the defaults: weight 3.0; activation 6.0 (APoT-I), 8.0 (APoT-C), or
  /// 2^bits - 1 for PACT (the reference's init).
  double weight_alpha_init = 0.0;
  double act_alpha_init = 0.0;
  /// Binary weights: false = forward binarises the stored (latent) weights with binarize(); true = forward uses
  /// the stored weights as they are, because the hysteresis optimizer keeps the latent copies and writes the
  /// binarised values into the parameter (Quantized_ResNet's --use_quantize_weight).
  bool binary_from_optimizer = false;

  /// Full precision on both sides.
  static QuantSpec full_precision();
  /// The same scheme and bits for weights and activations ("apot", "pot", "uniform"); bits 32 = float.
  static QuantSpec same(Scheme s, int bits, Semantics sem = Semantics::APoT_I);
  /// APoT's first conv / last fc: 8-bit signed-max weights, float inputs.
  static QuantSpec first_last_int8(Semantics sem = Semantics::APoT_I);

  bool weight_quantized() const { return weight != WeightQuant::Float && weight_bits != 32; }
  bool act_quantized() const { return act != ActQuant::Float && act_bits != 32; }
  bool has_weight_alpha() const;
  bool has_act_alpha() const;
  double weight_alpha_default() const;
  double act_alpha_default() const;
  /// Throws a one-line minidl::Error for an invalid combination (bit width outside the scheme's range, ...).
  void validate() const;
  /// "w4a4 (apot/apot, APoT-I)", "w32a32 (float)", "w1a2 (binary/pact)".
  std::string str() const;
};

}  // namespace minidl::quant
