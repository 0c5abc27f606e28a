// DistributedSampler (see sampler.h).
#include "data/sampler.h"

#include "core/error.h"
#include "data/sample_rng.h"

namespace minidl::data {

DistributedSampler::DistributedSampler(int64_t n, int rank, int world, bool shuffle, uint64_t seed, bool drop_last)
    : n_(n), rank_(rank), world_(world), shuffle_(shuffle), seed_(seed) {
  MINIDL_CHECK(world >= 1 && rank >= 0 && rank < world, "DistributedSampler: rank ", rank, " outside world size ",
               world);
  MINIDL_CHECK(n >= 0, "DistributedSampler: negative dataset size ", n);
  per_rank_ = drop_last ? n / world : (n + world - 1) / world;
  MINIDL_CHECK(per_rank_ > 0 || n == 0, "DistributedSampler: ", n, " samples cannot feed ", world,
               " ranks with drop_last");
}

std::vector<int64_t> DistributedSampler::order(int64_t epoch) const {
  std::vector<int64_t> global = epoch_order(n_, shuffle_, seed_, epoch);
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank_));
  for (int64_t i = 0; i < per_rank_; ++i) {
    const int64_t pos = rank_ + i * world_;  // padded positions wrap to the order's start
    mine.push_back(global[static_cast<size_t>(pos % n_)]);
  }
  return mine;
}

}  // namespace minidl::data
