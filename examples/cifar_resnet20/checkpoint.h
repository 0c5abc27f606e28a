// Checkpoints: one safetensors file holding the model ("model." keys), the optimizer ("optimizer."), the
// scheduler ("scheduler.", including its step count), and in its metadata the training position (epoch and
// step within it), the partial epoch's running metrics, the global RNG state, the best accuracy and the full
// config. Written atomically (save_safetensors writes a temp file, fsyncs and renames), so a killed run never
// leaves a half-written checkpoint; the temp files a kill leaves behind are removed by the next run.
#pragma once

#include <minidl.h>
#include <nn/module.h>
#include <optim/lr_scheduler.h>
#include <optim/optimizer.h>

#include <filesystem>

#include "config.h"

namespace cifar_resnet20 {

/// Where training stands and what it has accumulated, everything beyond the model/optimizer/scheduler tensors
/// that a resumed run needs to continue bit for bit. Augmentation and shuffling need no state here: they are
/// pure functions of (config seed, epoch, sample index) (data/sample_rng.h).
struct TrainState {
  int64_t next_epoch = 0;  // the epoch to run or continue
  int64_t next_step = 0;   // batches of next_epoch already trained (0 = the epoch has not started)
  double best_acc = 0.0;
  // Running metrics of the partial epoch next_epoch (all zero when next_step == 0), so its metrics.csv row
  // and summary cover the whole epoch.
  double loss_sum = 0.0;  // sum of batch loss x batch size
  int64_t seen = 0, correct = 0;
  double train_seconds = 0.0;  // training time spent on the epoch before the checkpoint
  // The global generator (dropout, initialisers): its seed and the next counter offset it hands out.
  uint64_t rng_seed = 0, rng_offset = 0;
  bool has_rng = false;  // false for checkpoints written before the RNG state was saved
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

/// A run killed while writing a checkpoint or metrics.csv leaves its temporary file ("<name>.tmp...") behind:
/// the file it was replacing is intact, the temporary one is garbage and never read. Removes such leftovers of
/// this program's files in `dir`, printing one line for each.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace cifar_resnet20
