// The two jobs: training (PyTorch ImageNet-example progress lines with the data-wait column, validation after
// every epoch, checkpoints, resume) and -e evaluation.
#pragma once

#include "config.h"

namespace imagenet_resnet18 {

int run_training(const Config& flags);
int run_evaluation(const Config& flags);

}  // namespace imagenet_resnet18
