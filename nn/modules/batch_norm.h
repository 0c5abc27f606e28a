// nn::BatchNorm2d over (N, C, H, W) with PyTorch's defaults (momentum 0.1, eps 1e-5, affine, tracking running
// statistics) and state-dict names (`weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked` i64).
// Training normalises with batch statistics and updates the running ones; eval uses the running ones.
#pragma once

#include "nn/module.h"

namespace minidl::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm2d;

/// Replaces a BatchNorm2d's training-mode computation, e.g. with batch statistics synchronised across processes
/// (distributed::SyncBatchNorm). Gets the module (options, running statistics, parameters), the input, and
/// what to fuse after it: relu, and a residual added before the relu when defined.
class BatchNormTrainingOverride {
 public:
  virtual ~BatchNormTrainingOverride() = default;
  virtual Tensor forward(BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& residual) = 0;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& o = {});
  Tensor forward(const Tensor& x) override;
  /// relu(forward(x)) as one fused op (batch_norm_relu), under this module's name for saved-tensor hooks.
  Tensor forward_relu(const Tensor& x);
  /// relu(forward(x) + residual) as one fused op (batch_norm_add_relu; residual of x's shape), under this
  /// module's name: the tail of a ResNet block. x by value: moving the only handle in lets the op write its
  /// output over x under activation compression (batch_norm_add_relu).
  Tensor forward_add_relu(Tensor x, const Tensor& residual);
  std::string extra_repr() const override;
  /// Running stats back to mean 0, var 1, counter 0; weight 1, bias 0.
  void reset_parameters();

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                    // (C) when affine
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), i64 0-dim when tracking
  /// When set, training-mode forwards go through it (num_batches_tracked is still counted here).
  std::shared_ptr<BatchNormTrainingOverride> training_override;
  /// num_batches_tracked += 1, as a training forward does; for an op that computes this module's training forward
  /// itself (quant::batch_norm_relu_quantize). Nothing when the counter is not tracked.
  void count_batch();

 private:
  // residual: added before the ReLU when defined (relu must then be true)
  Tensor forward_impl(Tensor x, bool relu, const Tensor& residual = {});

  // The host mirror of a device num_batches_tracked: trusted while the tensor is the storage and version it last
  // wrote (a load, copy_ or move re-reads it once).
  int64_t tracked_mirror_ = 0;
  std::weak_ptr<Storage> tracked_storage_;
  uint64_t tracked_version_ = 0;
};

}  // namespace minidl::nn
