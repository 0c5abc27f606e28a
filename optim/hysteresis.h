// The hysteresis optimizer for binary weights (spec/quant.md section 3.3 and minidl's decision). Binary
// parameters keep a full-precision latent copy V in the optimizer state ("state.<i>.latent", so it is saved
// and resume works); the parameter P holds what forward uses. Each step takes the gradient at P (identity
// straight-through), applies SGD (L2 decay on P, momentum, Nesterov) to V, and writes P from V:
//  - Classical (default, the reference README's loop): alpha = mean|V| per tensor; the binary sign s flips to +1
//    only when V >= t, to -1 only when V <= -t, and otherwise keeps its previous value ("state.<i>.sign");
//    P = alpha * s.
//  - OneStep (the reference code): same-sign V_old, V -> P = alpha * sign(V); a zero crossing by at least t in
//    one step -> P = +-alpha; any other crossing (|V| < t, V_old = 0, V = 0) -> P = alpha * V (small, not binary).
// Groups whose option "binary" is 0 are plain SGD on P. The flip ratio of the last step (fraction of binary
// elements whose sign changed) is reported.
#pragma once

#include "optim/optimizer.h"

namespace minidl::optim {

enum class HysteresisMode { Classical = 0, OneStep = 1 };

struct HysteresisOptions {
  double lr = 0.1;
  double momentum = 0.9;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  double threshold = 0.1;  // t, the reference's --weight_thres
  bool binary = true;      // the default for groups that do not say
  HysteresisMode mode = HysteresisMode::Classical;
  Options to_map() const;
};

class Hysteresis : public Optimizer {
 public:
  /// Options per group: "lr", "momentum", "dampening", "weight_decay", "nesterov", "threshold", "binary" (0/1),
  /// "mode" (0 classical, 1 one-step). Binary parameters get their latent copy (= the current values) now, and
  /// P is binarised at once, so the first forward already sees binary weights.
  Hysteresis(std::vector<ParamGroup> groups, const HysteresisOptions& defaults);
  void step() override;

  /// Fraction of binary elements whose sign changed in the last step (0 before the first step).
  double last_flip_ratio() const { return binary_elems_ ? static_cast<double>(flips_) / binary_elems_ : 0.0; }
  int64_t last_flips() const { return flips_; }
  /// The latent full-precision copy of parameter `index` (over all groups in order); throws for a float one.
  Tensor latent(size_t index) const;

 private:
  int64_t flips_ = 0;
  int64_t binary_elems_ = 0;
};

}  // namespace minidl::optim
