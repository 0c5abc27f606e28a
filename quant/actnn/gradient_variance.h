// ActNN's "Overall Var" measurement (spec/quant.md 2.8; image_classification/debug.py::get_var): how much
// noise activation compression adds to the conv / linear weight gradients, against the exact gradients of the
// same batches and against the batch-to-batch (sampling) variance.
//   1. compression off, gradient scales updated: the exact weight gradients of each batch; g_bar = their mean;
//   2. the model state is restored; with per-layer allocation, one compressed backward on the first batch and a
//      forced allocation;
//   3. per batch: the exact gradient g_e, then `samples` compressed backward passes g_1..g_k on the same batch;
//      per weight element var = mean g_k^2 - (mean g_k)^2, bias = (mean g_k - g_e)^2, sample var =
//      (g_e - g_bar)^2;
//   4. each summed over every element of every conv / linear weight and averaged over the batches.
// Gradient scales are frozen after step 1 (the reference's QScheme.update_scale = False); with per-layer
// allocation the budgets are re-allocated after every backward of step 3 from the batch just seen, as the
// reference's controller does (its allocation follows every backward).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/saved_tensor.h"
#include "nn/module.h"
#include "quant/actnn/adaptive_bits.h"

namespace minidl::quant::actnn {

struct VarianceBatch {
  Tensor images, labels;
  std::vector<int64_t> indices;  // dataset indices (for --usegradient)
};

struct LayerVariance {
  std::string name;  // the weight's dotted name
  double grad_sqnorm = 0, sample_var = 0, bias = 0, var = 0;
};

struct VarianceReport {
  double bias = 0, var = 0, sample_var = 0;  // "Overall Bias / Var / SampleVar"
  std::vector<LayerVariance> layers;
  int64_t batches = 0;
  /// "Overall Bias = ..., Var = ..., SampleVar = ..." (the reference's line).
  std::string overall() const;
};

/// Runs the measurement on `model` (put in train mode) over `batches`. `hooks` compresses (the packer's hooks);
/// `policy` (may be null: fixed bits) gets the batch indices, and its per-layer allocation is forced in step 2
/// when it does per-layer allocation. The loss is cross-entropy. The model's state (parameters and buffers) is
/// restored at the end.
VarianceReport measure_gradient_variance(nn::Module& model, const std::vector<VarianceBatch>& batches,
                                         const autograd::SavedTensorHooks& hooks,
                                         const std::shared_ptr<AdaptiveBits>& policy, int samples = 3);

}  // namespace minidl::quant::actnn
