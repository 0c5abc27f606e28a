// The two jobs of cifar_resnet20: training (with progress, metrics CSV, checkpoints, resume) and evaluation
// (the seeds' "Test: [i/N] ... * Prec X%" output, and --predict for inference on a tensor file).
#pragma once

#include "config.h"

namespace cifar_resnet20 {

int run_training(const Config& c);
int run_evaluation(const Config& c);

}  // namespace cifar_resnet20
