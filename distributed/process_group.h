// distributed::ProcessGroup: the collectives data-parallel training needs (allreduce, broadcast, allgather,
// barrier) over a fixed set of ranks. Implementations wrap existing engines: Gloo for CPU tensors
// (process_group_gloo.h), NCCL for CUDA tensors (process_group_nccl.h). Every rank must call the same
// collectives in the same order on tensors of the same shape and dtype. A peer that dies or stops answering
// makes the collective throw minidl::Error on every survivor within the group's timeout, instead of hanging.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::distributed {

enum class ReduceOp { Sum, Average, Max };

class ProcessGroup {
 public:
  ProcessGroup(int rank, int size) : rank_(rank), size_(size) {}
  virtual ~ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// "gloo" or "nccl".
  virtual std::string backend_name() const = 0;

  /// In place over every rank: t = op(t of each rank). t must be contiguous (f32, f64 or i64).
  virtual void allreduce(const Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  /// In place: every rank's t becomes root's t.
  virtual void broadcast(const Tensor& t, int root = 0) = 0;
  /// Every rank's t, in rank order (each of t's shape and dtype).
  virtual std::vector<Tensor> allgather(const Tensor& t) = 0;
  /// Returns once every rank has entered it.
  virtual void barrier() = 0;
  /// A second, independent communicator over the same ranks (its own connections and ordering), so two
  /// threads of one rank can run collectives concurrently (DDP's gradient buckets beside SyncBatchNorm).
  virtual std::shared_ptr<ProcessGroup> new_group() = 0;

 private:
  int rank_;
  int size_;
};

using ProcessGroupPtr = std::shared_ptr<ProcessGroup>;

}  // namespace minidl::distributed
