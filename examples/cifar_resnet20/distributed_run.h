// Distributed training for cifar_resnet20: active when the program is launched as one of several processes
// (mpirun -np N, or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT as torchrun sets them). --batch-size stays the
// global batch: each rank takes batch/N samples of every step through a DistributedSampler (the same samples,
// step by step, as one process), gradients are averaged by DistributedDataParallel, rank 0 alone prints and
// writes checkpoints and metrics, and every rank resumes from the same file.
#pragma once

#include <minidl.h>

#include <memory>

#include "config.h"

namespace cifar_resnet20 {

class DistributedRun {
 public:
  /// Rendezvous (when launched distributed) and wrap `model`; a single process gets world size 1 and no DDP.
  DistributedRun(const std::shared_ptr<minidl::nn::Module>& model, const Config& c);
  ~DistributedRun();

  bool active() const { return ddp_ != nullptr; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int world() const { return group_ ? group_->size() : 1; }
  bool is_main() const { return rank() == 0; }
  /// This rank's share of the global batch (throws unless it divides evenly).
  int64_t local_batch(int64_t global_batch) const;
  /// The train sampler of this rank (null for a single process: the loader shuffles by itself).
  std::shared_ptr<const minidl::data::Sampler> train_sampler(int64_t dataset_size, uint64_t seed) const;
  /// The model's forward, through DDP when distributed. Pass the batch with std::move: the model then frees
  /// it once its first layer has consumed it (Module::forward_owned).
  minidl::Tensor forward(minidl::nn::Module& model, minidl::Tensor x);
  /// Sums over the ranks (for the logged loss and accuracy of the global batch).
  std::vector<double> sum(std::vector<double> v) const;
  /// Waits until every rank is here (after rank 0 wrote a checkpoint).
  void barrier() const;
  /// Seconds spent waiting for gradient communication at the ends of backward passes so far.
  double comm_wait_seconds() const { return comm_wait_s_; }
  void add_comm_wait() { comm_wait_s_ += ddp_ ? ddp_->last_wait_seconds() : 0.0; }

 private:
  minidl::distributed::ProcessGroupPtr group_;
  std::unique_ptr<minidl::distributed::DistributedDataParallel> ddp_;
  double comm_wait_s_ = 0;
};

}  // namespace cifar_resnet20
