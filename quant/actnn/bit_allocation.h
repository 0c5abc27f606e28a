// ActNN's bit allocation (spec/quant.md 2.5-2.7) as pure functions: the greedy solver, the per-sample
// allocation inside a layer and the per-layer allocation across layers. No tensors, no global state: the
// packer feeds them sensitivities (sensitivity.h) and reads back bits.
//
// The objective is the predicted weight-gradient variance sum_i C_i / (2^b_i - 1)^2 under a budget on stored
// code bits sum_i b_i * w_i <= T.
//
// The all-zero first iteration (spec 2.7, pitfall 6). Sensitivities come from earlier backward passes, so in
// the first iteration every C is 0, every greedy key is 0, and the reference's heap strips bits from the
// highest index first: 4 samples, ibits 8, budget 8 -> [5, 1, 1, 1]; per layer the last layers get 1 bit and
// the first ones 8. `greedy_bits` reproduces that exactly (it is the reference solver, section 6 B4.7);
// `allocate_bits`, which the per-sample and per-layer allocations use, instead gives uniform bits when every C
// is 0 (minidl's decision in the spec's preamble): floor(T / sum w) each, capped at the start, and then one
// more bit to the lowest indices while the budget allows.
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::quant::actnn {

/// The reference greedy (calc_precision.cc): start from `bits` (each >= 1), repeatedly take one bit from the
/// item whose removal raises the objective least per unit weight (keys C_i * (1/(2^b-1)^2 - 1/(2^(b-1)-1)^2)
/// / w_i, stored as float32, ties to the larger index), never below 1 bit, until sum b_i * w_i <= target.
/// Throws minidl::Error when the sizes disagree, a C is negative or not finite, a weight is not positive, or
/// the target is below 1 bit per unit of weight.
std::vector<int> greedy_bits(std::vector<int> bits, const std::vector<float>& C, const std::vector<int64_t>& w,
                             double target);
/// Unit weights.
std::vector<int> greedy_bits(std::vector<int> bits, const std::vector<float>& C, double target);

/// greedy_bits, except that all-zero C gives uniform bits (see the file comment).
std::vector<int> allocate_bits(std::vector<int> bits, const std::vector<float>& C, const std::vector<int64_t>& w,
                               double target);

/// sum_i C_i / (2^b_i - 1)^2: the variance the allocation predicts.
double predicted_variance(const std::vector<int>& bits, const std::vector<float>& C);

/// Per-sample bits inside one layer (spec 2.5): budget floor(layer_bits * N), start ibits, unit weights. When
/// ibits <= layer_bits the start already meets the budget and every sample keeps ibits (no adaptivity). C has
/// one entry per sample.
std::vector<int> per_sample_bits(const std::vector<float>& C, double layer_bits, int ibits);

/// What the per-layer allocation knows of one compressed layer: its per-sample sensitivities from the last
/// forward and the elements per sample of its input (D_l).
struct LayerSensitivity {
  std::vector<float> C;  // one per sample of the last batch
  int64_t dim = 0;       // elements per sample
};

struct PerLayerBits {
  std::vector<double> bits;       // each layer's budget for the next iteration (bits_l)
  std::vector<int> initial_bits;  // each layer's new ibits (changed only when ibits == group bits)
};

/// Per-layer allocation across the layers of one group (spec 2.6), budget sum_l D_l * group_bits per sample:
/// - ibits == group_bits: one greedy over layers (C_l = sum_n C_l,n, w_l = D_l, start 8); the integer result is
///   each layer's bits and its new ibits;
/// - otherwise: one greedy over all (layer, sample) pairs (w = D_l, start ibits); bits_l = mean_n b_l,n (a
///   float), ibits unchanged.
/// Every layer must have the same number of samples (in the second case). Uses allocate_bits (uniform when all
/// C are 0).
PerLayerBits allocate_per_layer(const std::vector<LayerSensitivity>& layers, double group_bits, int ibits);

}  // namespace minidl::quant::actnn
