// Conv2d / Linear with an output-gradient probe (see probed_layers.h).
#include "quant/actnn/probed_layers.h"

#include "autograd/saved_tensor.h"

namespace minidl::quant::actnn {

ProbedConv2d::ProbedConv2d(const nn::ConvSpec& s, std::shared_ptr<AdaptiveBits> policy)
    : nn::Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, s.bias), policy_(std::move(policy)) {}

Tensor ProbedConv2d::forward(const Tensor& x) {
  if (!declared_) {
    // The name the packer's SaveInfo carries for this conv's saved input is the module path current here.
    policy_->declare_conv(autograd::ModuleNameGuard::current(), weight.size(2) * weight.size(3), options.groups);
    declared_ = true;
  }
  return grad_probe(nn::Conv2d::forward(x), policy_);
}

ProbedLinear::ProbedLinear(const nn::LinearSpec& s, std::shared_ptr<AdaptiveBits> policy)
    : nn::Linear(s.in_features, s.out_features, s.bias), policy_(std::move(policy)) {}

Tensor ProbedLinear::forward(const Tensor& x) { return grad_probe(nn::Linear::forward(x), policy_); }

nn::ConvFactory probed_conv_factory(std::shared_ptr<AdaptiveBits> policy) {
  return [policy](const nn::ConvSpec& s) -> nn::ModulePtr { return std::make_shared<ProbedConv2d>(s, policy); };
}

nn::LinearFactory probed_linear_factory(std::shared_ptr<AdaptiveBits> policy) {
  return [policy](const nn::LinearSpec& s) -> nn::ModulePtr { return std::make_shared<ProbedLinear>(s, policy); };
}

}  // namespace minidl::quant::actnn
