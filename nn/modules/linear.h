// nn::Linear: y = x @ W^T + b with W (out, in), PyTorch's layout and default initialisation
// (kaiming_uniform_(a=sqrt(5)) for W, i.e. U(-1/sqrt(in), 1/sqrt(in)), and the same bound for b).
#pragma once

#include "nn/module.h"

namespace minidl::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  /// x (N, in) -> (N, out).
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  /// Re-draws the parameters with PyTorch's defaults.
  void reset_parameters();

  int64_t in_features, out_features;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
};

}  // namespace minidl::nn
