// The checkpoint file layout the example programs share: one safetensors file holding the model ("model."
// keys), the optimizer ("optimizer."), the scheduler ("scheduler."), and metadata (format, next epoch, best
// accuracy, the run's config as JSON). Written atomically by save_safetensors (temp file, fsync, rename), so
// a killed run never leaves a half-written checkpoint.
#pragma once

#include <minidl.h>
#include <nn/module.h>
#include <optim/lr_scheduler.h>
#include <optim/optimizer.h>

#include <string>

namespace minidl_examples {

struct CheckpointContents {
  minidl::TensorMap model, optimizer, scheduler;
  minidl::Metadata metadata;
  int64_t next_epoch = 0;
  double best_acc = 0.0;
  std::string config_json;  // empty in foreign checkpoints (e.g. converted torchvision weights)
};

void save_checkpoint_file(const std::string& path, const std::string& format, const minidl::nn::Module& model,
                          const minidl::optim::Optimizer& opt, const minidl::optim::LRScheduler& sched,
                          int64_t next_epoch, double best_acc, const std::string& config_json);

/// Reads a checkpoint; a directory means <dir>/last.safetensors. A file without "model." keys (a bare state
/// dict such as torchvision weights converted to safetensors) loads as model weights only.
CheckpointContents load_checkpoint_file(const std::string& path);

}  // namespace minidl_examples
