// ActNN's packer: a SavedTensorHooks that stores what backward needs in compressed form (spec/quant.md section
// 2.2), deciding by SaveInfo alone (kind, op, module):
//   conv2d / linear input (Activation)        per-group stochastically rounded codes (L1+), actnn_codec.h
//   batch-norm input (Activation)             the same (L2+); its batch mean / inverse std (Statistic) stay exact
//   Mask (ReLU output, dropout / STE masks)   1 bit per element (L1+), restored as 0/1 in the original dtype
//   Index (max-pool positions, labels)        u8 when every value fits, else i32 (L1+)
//   Coefficient (a quantizer's alpha factor)  codes at coef_bits (L1+): only sum(g * coef) uses it
//   Parameter, Statistic, Output, other ops   exact
// Average pooling saves no tensor at all (its backward needs only the input shape). Forward is never touched,
// so outputs are bit-identical at every level; at L0 every tensor is stored as is.
//
// It also accounts for every byte the tape holds through it (tensors stored exactly are counted once per
// storage, so a tensor saved by two ops counts once), by category, live and at the peak.
#pragma once

#include <memory>
#include <string>

#include "autograd/saved_tensor.h"
#include "quant/actnn/bit_policy.h"
#include "quant/actnn/config.h"

namespace minidl::quant::actnn {

/// Bytes the tape holds through a packer, by what they are.
struct TapeBytes {
  size_t codes = 0;    // packed activation / coefficient codes
  size_t meta = 0;     // per-group (lo, hi) and per-sample bit widths
  size_t masks = 0;    // 1-bit masks
  size_t indices = 0;  // narrowed indices
  size_t exact = 0;    // tensors stored as is (statistics, outputs, uncompressed activations), once per storage
  size_t params = 0;   // parameter-kind tensors (weights; alive in the model anyway): not in total()
  size_t total() const { return codes + meta + masks + indices + exact; }
};

class Packer {
 public:
  explicit Packer(Config cfg);
  ~Packer();
  const Config& config() const;
  /// Replaces the bit choice (default FixedBits).
  void set_bit_policy(std::shared_ptr<BitPolicy> policy);
  /// The hooks; install them with autograd::SavedTensorHooksGuard. They share the packer's state (a payload on
  /// the tape keeps it alive, so the packer may go first).
  autograd::SavedTensorHooks hooks() const;
  /// The fixed bits of a tensor saved by `info` (per-module override, else the level's bits); 0 when it is not
  /// compressed by codes.
  int layer_bits(const autograd::SaveInfo& info) const;

  TapeBytes live() const;
  /// The byte counts at the moment total() was highest since the last reset_peak().
  TapeBytes peak() const;
  void reset_peak();
  /// The bits chosen per module, op and kind (the latest save of each), with elements and bytes: one line each.
  std::string bit_map() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace minidl::quant::actnn
