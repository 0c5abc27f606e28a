// Conv2d and Linear whose output gradient feeds ActNN's gradient scale S (spec/quant.md 2.4: ActNN's set_scale
// runs at the start of each compressed op's backward with its output gradient). They are nn::Conv2d / nn::Linear
// with the same parameters, names and forward values; only a grad_probe follows the output. The factories plug
// them into a model through ResNetConfig / PreActResNetConfig's conv and linear slots.
#pragma once

#include <memory>

#include "nn/models/resnet.h"
#include "nn/modules/conv.h"
#include "nn/modules/linear.h"
#include "quant/actnn/adaptive_bits.h"

namespace minidl::quant::actnn {

class ProbedConv2d final : public nn::Conv2d {
 public:
  ProbedConv2d(const nn::ConvSpec& s, std::shared_ptr<AdaptiveBits> policy);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<AdaptiveBits> policy_;
  bool declared_ = false;
};

class ProbedLinear final : public nn::Linear {
 public:
  ProbedLinear(const nn::LinearSpec& s, std::shared_ptr<AdaptiveBits> policy);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<AdaptiveBits> policy_;
};

nn::ConvFactory probed_conv_factory(std::shared_ptr<AdaptiveBits> policy);
nn::LinearFactory probed_linear_factory(std::shared_ptr<AdaptiveBits> policy);

}  // namespace minidl::quant::actnn
