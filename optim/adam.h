// Adam and AdamW with PyTorch's update rules (torch.optim.Adam / AdamW), per element, step t from 1:
//   Adam:  g += wd * p (L2)        AdamW: p *= 1 - lr * wd (decoupled)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v), used in place of v)
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// State per parameter: "step" (0-dim float64), "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
#pragma once

#include "optim/optimizer.h"

namespace minidl::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  Options to_map() const;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& defaults = {});
  /// Groups may override "lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad" (0/1).
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = {});
  void step() override;

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& defaults, bool decoupled);

 private:
  bool decoupled_;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default weight_decay for AdamW is 0.01.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& defaults = adamw_defaults());
  AdamW(std::vector<ParamGroup> groups, const AdamOptions& defaults = adamw_defaults());
  static AdamOptions adamw_defaults() {
    AdamOptions o;
    o.weight_decay = 0.01;
    return o;
  }
};

}  // namespace minidl::optim
