// ResNet-18/34 with torchvision names: float (--bit 32) or APoT-quantized as the APoT ImageNet code (seed 000,
// spec/quant.md 1.9): every conv inside the blocks (downsample included) at --bit, APoT-I semantics, the first
// conv and the fc with 8-bit weights and float inputs. One SGD group for everything, alphas included (the
// ImageNet script's HEAD, spec 1.12).
#pragma once

#include <nn/models/resnet.h>
#include <optim/lr_scheduler.h>
#include <optim/optimizer.h>

#include <memory>

#include "config.h"

namespace imagenet_resnet18 {

std::shared_ptr<minidl::nn::ResNet> make_model(const Config& c, int64_t num_classes);
std::unique_ptr<minidl::optim::Optimizer> make_optimizer(const minidl::nn::Module& model, const Config& c);
/// Step-wise schedule: lr *= 0.1 at the --schedule epochs, or cosine over the whole run.
std::unique_ptr<minidl::optim::LRScheduler> make_scheduler(minidl::optim::Optimizer& opt, const Config& c,
                                                           int64_t steps_per_epoch);

}  // namespace imagenet_resnet18
