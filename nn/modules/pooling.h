// Pooling layers over (N, C, H, W): MaxPool2d, AvgPool2d (count_include_pad like PyTorch's default) and
// AdaptiveAvgPool2d (PyTorch's cell bounds; (1, 1) is global average pooling).
#pragma once

#include "backends/op_params.h"
#include "nn/module.h"

namespace minidl::nn {

class MaxPool2d : public Module {
 public:
  /// stride 0 means stride = kernel_size (PyTorch's default).
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pool2dParams params;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pool2dParams params;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  explicit AdaptiveAvgPool2d(int64_t out_size) : AdaptiveAvgPool2d(out_size, out_size) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t out_h, out_w;
};

}  // namespace minidl::nn
