// One ResNet training step on a fixed batch, with an ActNN packer on the tape when given: the logits, loss,
// every parameter's gradient and the packer's tape bytes after forward. Shared by the packer tests
// (tests/quant) and the GPU path test (tests/cuda).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/models/resnet.h"
#include "quant/actnn/packer.h"

namespace minidl_test {

struct ActnnStepResult {
  std::vector<float> logits, loss;
  std::map<std::string, std::vector<float>> grads;
  minidl::quant::actnn::TapeBytes peak;
};

inline ActnnStepResult resnet_step(minidl::nn::ResNet& model, const minidl::Tensor& x, const minidl::Tensor& y,
                                   minidl::quant::actnn::Packer* packer) {
  for (auto& [name, p] : model.named_parameters()) p.set_grad({});
  ActnnStepResult r;
  std::unique_ptr<minidl::autograd::SavedTensorHooksGuard> guard;
  if (packer) guard = std::make_unique<minidl::autograd::SavedTensorHooksGuard>(packer->hooks());
  minidl::Tensor logits = model(x);
  minidl::Tensor loss = minidl::cross_entropy(logits, y);
  r.logits = logits.to_vector<float>();
  r.loss = loss.to_vector<float>();
  if (packer) r.peak = packer->live();
  loss.backward();
  for (auto& [name, p] : model.named_parameters()) r.grads[name] = p.grad().to_vector<float>();
  return r;
}

}  // namespace minidl_test
