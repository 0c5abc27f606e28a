// Optimizer parameter groups the quantization recipes need (spec/quant.md sections 1.12 and 3.3):
// APoT trains its clipping parameters with their own lr and weight decay; Quantized_ResNet's hysteresis
// optimizer binarises the block conv weights and trains everything else as plain SGD.
#pragma once

#include <vector>

#include "nn/module.h"
#include "optim/optimizer.h"

namespace minidl::quant {

/// Three groups: every parameter that is neither clip (options `rest`, may be empty = optimizer defaults),
/// the `act_alpha`s (`act`), the `wgt_alpha`s (`wgt`). APoT CIFAR: act {lr 0.1, wd 1e-4}, wgt {lr 0.02,
/// wd 1e-4}. Groups with no parameter are left out.
std::vector<optim::ParamGroup> alpha_param_groups(const nn::Module& model, const optim::Options& rest,
                                                  const optim::Options& act, const optim::Options& wgt);

/// Two groups for optim::Hysteresis: the weights of the layers with binary weights (option binary = 1), and
/// every other parameter (binary = 0: plain SGD).
std::vector<optim::ParamGroup> hysteresis_param_groups(const nn::Module& model);

}  // namespace minidl::quant
