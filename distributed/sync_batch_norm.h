// SyncBatchNorm: batch norm whose training statistics are those of the global batch (every rank's samples),
// as PyTorch's nn.SyncBatchNorm. Forward allreduces per-channel sums (sum, sum of squares, count); backward
// allreduces the per-channel sums of dy and dy*xhat, so N ranks x batch B give the gradients of one process
// with batch N*B. Weight and bias gradients stay local sums (DDP averages them like every other gradient).
// Installed on existing BatchNorm2d modules (convert_sync_batchnorm): the model code does not change.
#pragma once

#include "distributed/process_group.h"
#include "nn/module.h"
#include "nn/modules/batch_norm.h"

namespace minidl::distributed {

class SyncBatchNorm : public nn::BatchNormTrainingOverride {
 public:
  explicit SyncBatchNorm(ProcessGroupPtr group);
  Tensor forward(nn::BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& residual) override;

 private:
  ProcessGroupPtr group_;
};

/// Makes every BatchNorm2d in `model` synchronise its training statistics over `group` (CPU, f32 or f64,
/// affine). Returns how many modules were converted.
int convert_sync_batchnorm(nn::Module& model, const ProcessGroupPtr& group);

}  // namespace minidl::distributed
