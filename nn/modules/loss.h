// Loss modules: CrossEntropyLoss (mean over the batch, with label smoothing as PyTorch's) and MSELoss (mean).
// They take two inputs, so they are called as loss(input, target) rather than through forward(x).
#pragma once

#include "nn/module.h"

namespace minidl::nn {

class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(double label_smoothing = 0.0);
  using Module::forward;
  using Module::operator();
  /// logits (N, C) and target i64 (N) -> 0-dim mean loss.
  Tensor forward(const Tensor& logits, const Tensor& target);
  Tensor operator()(const Tensor& logits, const Tensor& target);
  std::string extra_repr() const override;
  double label_smoothing;
};

class MSELoss : public Module {
 public:
  MSELoss() : Module("MSELoss") {}
  using Module::forward;
  using Module::operator();
  /// mean((input - target)^2), shapes equal.
  Tensor forward(const Tensor& input, const Tensor& target);
  Tensor operator()(const Tensor& input, const Tensor& target);
};

}  // namespace minidl::nn
