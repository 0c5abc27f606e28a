// The float64 comparison of a packed ResNet with its fake-quant model (issue 18, "Exactness"; docs/deploy.md,
// "Exactness in float64"). PackedLayer::forward_f64 / PackedResNet::forward_f64 (declared in packed_resnet.h,
// defined in packed_reference.cpp) evaluate the packed model in double with exact integer sums;
// make_f64_reference turns the trained fake-quant model into the same model in float64, so that the two differ
// only by double rounding (~1e-16 relative) and a float32 rounding near a quantizer midpoint cannot flip a code.
#pragma once

#include "nn/models/resnet.h"
#include "quant/levels.h"
#include "quant/packed/packed_resnet.h"

namespace minidl::quant {

/// A PoT / APoT level set with its magnitudes at their exact values n / n_max (quant::integer_levels) as float64.
/// LevelSet::make builds the magnitudes as the reference code does, float32(v) * float32(1 / max), also in
/// float64; for APoT that is up to 7e-8 away from v / max, which is what the packed codes times their unit mean.
/// Rounding (uniform) sets, whose grid k / steps is already computed in the tensor's dtype, come back unchanged.
LevelSet exact_levels_f64(const LevelSet& levels);

/// Turns `model`, the trained fake-quant CIFAR ResNet (float32, eval mode) that `packed` was made from, into the
/// float64 reference of `packed`, then converts it to float64 (Module::to); it runs on the ref backend (the cpu
/// backend's convolutions are float32 only). What changes, and why it is the same model (docs/deploy.md):
///  - each batch norm becomes the map the cpu backend's float32 inference kernel applies, x * a + b with
///    a = gamma / sqrt(var + eps) and b = beta - mean * a computed in double and rounded to float32 (written as
///    running mean 0, running var 1, eps 0, weight a, bias b, so the ref backend's formula computes x * a + b);
///  - each quantized weight is frozen at the float32 model's code times its unit, in double (its quantizer then
///    passes the weight through): the value the packed code stands for, where the float32 tensor holds it
///    rounded (binary: the float32 mean |w| the float32 model computed, not a float64 mean);
///  - the PoT / APoT activation level sets take their exact values (exact_levels_f64).
/// Checks, and throws minidl::Error naming the layer when one fails: every packed layer has its module; the
/// float32 model's quantized weights lie within float32 rounding of the packed codes times unit (a different
/// code is a whole unit away); the activation quantizers and clips are the packed layers'; each folded batch norm
/// equals the packed scale and shift bit for bit; the fc bias equals the packed shift.
void make_f64_reference(nn::ResNet& model, const PackedResNet& packed);

}  // namespace minidl::quant
