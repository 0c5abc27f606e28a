// nn::Conv2d over (N, C, H, W) with weight (K, C/groups, R, S), PyTorch's layout, state-dict names (`weight`,
// `bias`) and default initialisation (kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in));
// bias with the same bound).
#pragma once

#include "backends/op_params.h"
#include "nn/module.h"

namespace minidl::nn {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_h = 3, kernel_w = 3;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& o);
  /// Square kernel shorthand: Conv2d(in, out, k, stride, padding, bias).
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
         bool bias = true);
  /// x (N, C, H, W) -> (N, K, P, Q).
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();
  Conv2dParams params() const;

  Conv2dOptions options;
  Tensor weight;  // (K, C/groups, R, S)
  Tensor bias;    // (K) or undefined
};

}  // namespace minidl::nn
