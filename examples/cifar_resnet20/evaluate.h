// Test-set evaluation shared by training (after every epoch) and --evaluate.
#pragma once

#include <data/loader.h>
#include <nn/module.h>

namespace cifar_resnet20 {

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // percent
};

/// Runs the model in eval mode over the loader; prints the seeds' lines every print_freq batches when verbose.
/// max_batches > 0 stops early (smoke tests). Images are cast to `dtype`, the dtype the model was converted to.
EvalResult evaluate(minidl::nn::Module& model, minidl::data::DataLoader& loader, int64_t print_freq, bool verbose,
                    int64_t max_batches = -1, minidl::DType dtype = minidl::DType::f32);

/// Number of rows of logits (N, C) whose argmax equals the label.
int64_t count_correct(const minidl::Tensor& logits, const minidl::Tensor& labels);

}  // namespace cifar_resnet20
