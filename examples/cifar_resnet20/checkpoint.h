// Checkpoints: one safetensors file holding the model ("model." keys), the optimizer ("optimizer."), the
// scheduler ("scheduler."), and in its metadata the epoch, best accuracy and the full config. Written
// atomically (save_safetensors writes a temp file, fsyncs and renames), so a killed run never leaves a
// half-written checkpoint.
#pragma once

#include <minidl.h>
#include <nn/module.h>
#include <optim/lr_scheduler.h>
#include <optim/optimizer.h>

#include "config.h"

namespace cifar_resnet20 {

struct TrainState {
  int64_t next_epoch = 0;  // the first epoch still to run
  double best_acc = 0.0;
};

void save_checkpoint(const std::string& path, const minidl::nn::Module& model, const minidl::optim::Optimizer& opt,
                     const minidl::optim::LRScheduler& sched, const TrainState& st, const Config& c);

struct Checkpoint {
  minidl::TensorMap model, optimizer, scheduler;
  TrainState state;
  std::optional<Config> config;  // absent in foreign checkpoints (e.g. the APoT release)
  minidl::Metadata metadata;
};

/// Reads a checkpoint; a path that is a directory means <dir>/last.safetensors. Foreign checkpoints (no
/// "model." prefix, e.g. converted PyTorch ones) load as model weights only.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace cifar_resnet20
