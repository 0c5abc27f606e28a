// The quantizers as differentiable ops (each an autograd Function with its forward and backward in one file
// in quant/op_*.cpp). Formulas, straight-through rules and test vectors: spec/quant.md sections 1, 3 and 6.
//
// Alphas are 0-dim (or one-element) tensors; an alpha <= 0 is an error (the reference divides by it).
// grad_scale multiplies an alpha's gradient (APoT-I's optional grad_scale; 1 = off).
#pragma once

#include "quant/levels.h"
#include "tensor/tensor.h"

namespace minidl::quant {

/// The two published APoT code generations (spec section 1): APoT-I (ImageNet folder, minidl's default):
/// gradients through the weight-normalisation statistics, clipped weight STE for b >= 3, activations clamped to
/// [0, 1]. APoT-C (CIFAR folder, the released CIFAR checkpoints): detached statistics, unclipped weight STE,
/// activations clipped above only, first/last 8-bit codes not clamped.
enum class Semantics : uint8_t { APoT_I, APoT_C };
const char* semantics_name(Semantics s);  // "APoT-I", "APoT-C"
/// Accepts "APoT-I"/"apot-i"/"I" and "APoT-C"/"apot-c"/"C".
Semantics parse_semantics(const std::string& s);

/// Section 1.4: (w - mean(w)) / std(w) over the whole tensor, unbiased std, no epsilon (a constant tensor is an
/// error). detach_stats (APoT-C): mean and std are constants for autograd (dL/dw = g / std); otherwise (APoT-I)
/// the gradient flows through them.
Tensor weight_standardize(const Tensor& w, bool detach_stats);

/// Sections 1.5 / 1.6: signed weight quantizer with the reparameterised clipping function.
/// x = w_hat / alpha, c = clamp(x, -1, 1), out = alpha * (levels.rounding ? round(c * s) / s
/// : sign(c) * P(|c|)). dL/dw_hat = g * 1[|x| <= 1] when clip_ste (APoT-I, b >= 3), else g;
/// dL/dalpha = sum g * (|x| > 1 ? sign(x) : q - x).
Tensor quantize_weight(const Tensor& w_hat, const Tensor& alpha, const LevelSet& levels, bool clip_ste,
                       double grad_scale = 1.0);
/// The weight quantizer with the spec's rules picked from the level set and semantics: clip_ste = APoT-I and
/// bits >= 3 (2-bit weights always use the "calibrated" unclipped gradient).
Tensor quantize_weight(const Tensor& w_hat, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                       double grad_scale = 1.0);

/// Section 1.7: unsigned activation quantizer. x = X / alpha; APoT-I: c = clamp(x, 0, 1), dL/dX = g*1[0<=x<=1];
/// APoT-C: c = min(x, 1), dL/dX = g*1[x<=1]. out = alpha * (rounding ? round(c*s)/s : P(c)).
/// dL/dalpha = sum g * (1[x > 1] + (q - x) * 1[lo <= x <= 1]) with lo = 0 (I) or -inf (C).
Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale = 1.0);
struct CodedTensor;  // quant/coded_saves.h
/// The same, also setting *coded to its output as u8 codes into activation_codebook(alpha, levels) when the backend
/// writes them in its forward pass (the cpu backend, without saved-tensor hooks): what a layer saves for its
/// weight gradient instead of the output (coded_saves.h). *coded is left empty (codes undefined) otherwise, or when
/// an element has no code (APoT-C's uniform path below zero).
Tensor quantize_activation(const Tensor& x, const Tensor& alpha, const LevelSet& levels, Semantics sem,
                           double grad_scale, CodedTensor* coded);

/// relu(batch_norm(x)) in training, then quantize_activation, as one op on host tensors: the same outputs, running
/// statistics and gradients bit for bit as batch_norm_relu(x, ..., training = true) followed by
/// quantize_activation(.., alpha, levels, sem, grad_scale, coded) without saved-tensor hooks; its backward is one
/// Backend::batch_norm_relu_quantize_backward (the cpu backend runs the two passes block by block in cache).
/// QuantConv2d::forward_after_bn_relu uses it for the batch norm + ReLU before a quantized conv in a ResNet block
/// while fused_bn_relu_quantize() is on (default; MINIDL_QAT_FUSE_BN=0 or set_fused_bn_relu_quantize(false) turn
/// it off).
Tensor batch_norm_relu_quantize(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                const Tensor& alpha, const LevelSet& levels, Semantics sem, double grad_scale,
                                CodedTensor* coded);
/// The same with PACT as the quantizer: batch_norm_relu(x, ..., training = true) followed by pact(.., alpha, bits,
/// coded), bit for bit.
Tensor batch_norm_relu_pact(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, double momentum, double eps, const Tensor& alpha,
                            int bits, CodedTensor* coded);
bool fused_bn_relu_quantize();
void set_fused_bn_relu_quantize(bool on);

/// Sections 1.9 / 4.2: the first/last layer "8-bit" weights: m = max(w) (signed maximum, detached),
/// codes = round(127 * w / m), out = codes * m / 127, identity gradient. clamp_codes (minidl's default) limits
/// the codes to [-127, 127]; APoT-C does not (codes below -127 when |min w| > max w). m <= 0 is an error.
Tensor signed_max_int8(const Tensor& w, bool clamp_codes);

/// Section 3.4 (minidl's PACT): y = clamp(round(x * k / (alpha + 1e-6)), 0, k) * alpha / k, k = 2^bits - 1.
/// dL/dx = g * 1[0 < x < alpha]; dL/dalpha = sum g * 1[x > alpha]. alpha is an ordinary learnable tensor (its L2
/// term comes from the optimizer's parameter group, not from inside backward as in the reference).
Tensor pact(const Tensor& x, const Tensor& alpha, int bits);
/// The same, also setting *coded to its output as u8 codes into pact_forward_codebook(alpha, k)
/// (backends/codebook.h) when the backend writes them in its forward pass (the cpu backend, without saved-tensor
/// hooks), as quantize_activation's coded form; *coded is left empty otherwise.
Tensor pact(const Tensor& x, const Tensor& alpha, int bits, CodedTensor* coded);

/// Section 3.2 (Quantized_ResNet's BinActive as wired): y = min(max(round(x), 0), k), k = 2^bits - 1 (integer
/// grid, step 1, no scale); dL/dx = g * 1[0 < x < k].
Tensor int_grid_activation(const Tensor& x, int bits);

/// Section 3.3: per-layer scaled sign, out = mean(|w|) * sign(w) (sign(0) = 0), identity straight-through
/// gradient (dL/dw = g, as the reference feeds the gradient at the binarised value to the latent weights).
Tensor binarize(const Tensor& w);

}  // namespace minidl::quant
