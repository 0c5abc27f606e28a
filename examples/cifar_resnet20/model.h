// The network and the optimizer's parameter groups for a Config.
#pragma once

#include <nn/models/resnet.h>
#include <optim/optimizer.h>

#include "config.h"

namespace cifar_resnet20 {

/// The (quantized) ResNet of --arch/--scheme/--bit for the dataset's channels and classes.
std::shared_ptr<minidl::nn::Module> make_model(const Config& c, int64_t in_channels, int64_t num_classes);

/// Parameter groups: weights (lr, wd) and, for quantized models, clipping parameters (alpha lr / wd, spec 1.12).
std::vector<minidl::optim::ParamGroup> param_groups(const minidl::nn::Module& model, const Config& c);

}  // namespace cifar_resnet20
