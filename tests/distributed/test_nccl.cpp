// The NCCL process group with world size 1 on a GPU: allreduce, broadcast, allgather and barrier on CUDA tensors.
// Reports skipped without NCCL in the build or without a device (scripts/gpu-check runs it where there is one).
#include <doctest/doctest.h>

#include "backends/cuda/cuda_device.h"
#include "distributed/init.h"
#include "distributed/process_group_nccl.h"
#include "rank_threads.h"
#include "tensor/tensor.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::distributed;
using namespace std::chrono_literals;

TEST_CASE("process group (nccl): world size 1 on a GPU") {
  if (!nccl_available()) MINIDL_SKIP("this minidl was built without NCCL");
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device: " << cuda_device_status());
  InitOptions o = minidl_test::thread_rank_options(minidl_test::fresh_store_dir(), 0, 1, 30s);
  o.backend = "nccl";
  auto pg = init_process_group(o);
  CHECK(pg->backend_name() == "nccl");
  Tensor t = full({1000}, 2.5).to(Device::cuda(0));
  pg->allreduce(t, ReduceOp::Sum);
  for (float v : t.to_vector<float>()) CHECK(v == 2.5f);
  pg->allreduce(t, ReduceOp::Average);
  pg->broadcast(t, 0);
  for (float v : t.to_vector<float>()) CHECK(v == 2.5f);
  auto all = pg->allgather(t);
  REQUIRE(all.size() == 1);
  CHECK(all[0].to_vector<float>() == t.to_vector<float>());
  pg->barrier();
  CHECK_THROWS_WITH_AS(pg->allreduce(full({4}, 1.0)), doctest::Contains("CUDA tensors"), Error);
}
