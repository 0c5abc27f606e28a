// DistributedRun (see distributed_run.h).
#include "distributed_run.h"

#include <core/env.h>

#include <cstdio>

namespace cifar_resnet20 {

using namespace minidl;

DistributedRun::DistributedRun(const std::shared_ptr<nn::Module>& model, const Config& c) {
  if (!distributed::launched_distributed()) return;
  const distributed::InitOptions o = distributed::init_options_from_env();
  group_ = distributed::init_process_group(o);
  // Rank 0 speaks for the job: the other ranks' stdout goes to /dev/null (errors still reach stderr).
  if (group_->rank() != 0 && !env_string("MINIDL_DIST_ALL_RANKS_PRINT")) {
    MINIDL_CHECK(std::freopen("/dev/null", "w", stdout) != nullptr, "cannot silence stdout of rank ", rank());
  }
  distributed::DDPOptions d;
  d.sync_batchnorm = c.sync_bn;
  d.overlap = !c.no_overlap;
  d.bucket_bytes = static_cast<size_t>(c.bucket_mb * (1 << 20));
  ddp_ = std::make_unique<distributed::DistributedDataParallel>(model, group_, d);
  std::printf("=> distributed: world size %d (%s, %s), %d gradient buckets, overlap %s, BatchNorm %s\n", world(),
              o.where.c_str(), group_->backend_name().c_str(), ddp_->num_buckets(), d.overlap ? "on" : "off",
              c.sync_bn ? "synchronised" : "per rank");
}

DistributedRun::~DistributedRun() = default;

int64_t DistributedRun::local_batch(int64_t global_batch) const {
  MINIDL_CHECK(global_batch % world() == 0, "--batch-size ", global_batch, " (the global batch) is not divisible by ",
               "the world size ", world());
  return global_batch / world();
}

std::shared_ptr<const data::Sampler> DistributedRun::train_sampler(int64_t n, uint64_t seed) const {
  if (!active()) return nullptr;
  return std::make_shared<data::DistributedSampler>(n, rank(), world(), /*shuffle=*/true, seed);
}

Tensor DistributedRun::forward(nn::Module& model, Tensor x) { return ddp_ ? (*ddp_)(x) : model(std::move(x)); }

std::vector<double> DistributedRun::sum(std::vector<double> v) const {
  return distributed::all_sum(group_.get(), std::move(v));
}

void DistributedRun::barrier() const {
  if (group_) group_->barrier();
}

}  // namespace cifar_resnet20
