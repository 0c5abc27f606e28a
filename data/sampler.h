// Samplers: which dataset indices an epoch visits, in what order, when that is not simply the loader's own
// (seeded) shuffle of the whole dataset. DataLoaderOptions::sampler takes one.
//
// DistributedSampler (PyTorch's torch.utils.data.distributed.DistributedSampler): rank r of a world of W
// visits positions r, r+W, r+2W, ... of the epoch's global order, which is the same seeded shuffle a
// single-process DataLoader uses (data::epoch_order). So with per-rank batch B, step s of W ranks sees exactly
// the samples of step s of one process with batch W*B. A dataset size not divisible by W is padded by repeating
// the order's first samples (every rank gets ceil(n/W)), or truncated with drop_last.
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Samples per epoch.
  virtual int64_t size() const = 0;
  /// The dataset indices of epoch `epoch`, in visiting order (size() of them).
  virtual std::vector<int64_t> order(int64_t epoch) const = 0;
};

class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t dataset_size, int rank, int world_size, bool shuffle = true, uint64_t seed = 0,
                     bool drop_last = false);
  int64_t size() const override { return per_rank_; }
  std::vector<int64_t> order(int64_t epoch) const override;

 private:
  int64_t n_;
  int rank_, world_;
  bool shuffle_;
  uint64_t seed_;
  int64_t per_rank_;
};

}  // namespace minidl::data
