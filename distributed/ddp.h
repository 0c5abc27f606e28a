// DistributedDataParallel: data-parallel training of one model replica per rank, as PyTorch's DDP.
//   - wrapping broadcasts rank 0's parameters and buffers to every rank (same start everywhere);
//   - gradients are averaged over the ranks during backward: parameters are grouped in buckets of about
//     bucket_bytes (25 MB), in reverse registration order (roughly the order backward finishes them); when the
//     last gradient of a bucket is final (autograd's gradient-ready hook) the bucket's allreduce starts on a
//     communication thread while backward goes on; at the end of backward (a queued backward callback) the
//     remaining buckets are sent, all are awaited and the averages written back to .grad. So after
//     loss.backward() every rank holds the same averaged gradients, and any optimizer (SGD, Adam, the
//     hysteresis optimizer for binary weights) takes the same step on every rank;
//   - every parameter counts, quantizer parameters (clipping alphas) included; a parameter that got no gradient
//     on a rank contributes zeros;
//   - BatchNorm: per-rank batch statistics with rank 0's running statistics broadcast before each forward
//     (PyTorch's default, broadcast_buffers), or sync_batchnorm = true: statistics of the global batch
//     (SyncBatchNorm), which makes N ranks x batch B train exactly as one process with batch N*B.
// A dead or silent peer turns into a minidl::Error from forward or loss.backward() within the group's timeout.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "distributed/process_group.h"
#include "nn/module.h"

namespace minidl::distributed {

struct DDPOptions {
  size_t bucket_bytes = 25u << 20;
  /// Start each bucket's allreduce as soon as it is ready (false: all buckets after backward, for comparison).
  bool overlap = true;
  /// Broadcast rank 0's buffers (BN running statistics) before every training forward.
  bool broadcast_buffers = true;
  /// Synchronise BatchNorm statistics over the ranks (SyncBatchNorm on every BatchNorm2d).
  bool sync_batchnorm = false;
};

class DistributedDataParallel {
 public:
  DistributedDataParallel(std::shared_ptr<nn::Module> module, ProcessGroupPtr group, DDPOptions options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// The wrapped module's forward (after the buffer broadcast, in training mode).
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  nn::Module& module() { return *module_; }
  const std::shared_ptr<nn::Module>& module_ptr() const { return module_; }
  const ProcessGroupPtr& group() const { return group_; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  /// Seconds the last backward spent at its end waiting for communication still in flight.
  double last_wait_seconds() const { return last_wait_s_; }

 private:
  struct Bucket {
    std::vector<size_t> params;    // indices into params_
    std::vector<int64_t> offsets;  // element offset of each in `flat`
    Tensor flat;                   // the bucket's gradients, contiguous
    int ready = 0;
    bool launched = false;
    bool done = false;
  };
  void on_grad_ready(size_t param_index);
  void launch_ready_buckets(bool all);
  void launch(size_t bucket);
  void finish();
  void comm_loop();

  std::shared_ptr<nn::Module> module_;
  ProcessGroupPtr group_;       // forward-time collectives (buffers, SyncBatchNorm)
  ProcessGroupPtr comm_group_;  // the buckets' allreduces, on comm_thread_
  DDPOptions options_;
  std::vector<Tensor> params_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, slot)
  std::vector<Bucket> buckets_;
  std::vector<int64_t> hooks_;
  std::vector<bool> param_ready_;
  bool in_backward_ = false;
  size_t next_launch_ = 0;
  double last_wait_s_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> queue_;
  std::exception_ptr comm_error_;
  bool stopping_ = false;
  std::thread comm_thread_;
};

}  // namespace minidl::distributed
