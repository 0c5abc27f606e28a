// SGD with momentum, dampening, Nesterov and weight decay, with PyTorch's update rule (torch.optim.SGD):
//   d = g + wd * p                       (L2 weight decay; with decoupled_weight_decay=1: p *= 1 - lr * wd)
//   buf = d on the first step, else momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
#pragma once

#include "optim/optimizer.h"

namespace minidl::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool decoupled_weight_decay = false;
  Options to_map() const;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& defaults);
  /// Groups may override any option by name ("lr", "momentum", "dampening", "weight_decay", "nesterov",
  /// "decoupled_weight_decay"; booleans as 0/1).
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);
  void step() override;
};

}  // namespace minidl::optim
