// ProcessGroup on Gloo (CPU tensors, TCP transport). Gloo's ring algorithms do the work; this class maps
// tensors to Gloo buffers, numbers the collectives (Gloo's tags) and turns Gloo's exceptions (a peer that closed
// its connections, a timeout) into minidl::Error naming the collective and the rank. Built when Gloo was found
// (MINIDL_HAVE_GLOO); init_process_group says so otherwise.
#pragma once

#include <chrono>
#include <memory>

#include "distributed/process_group.h"
#include "distributed/store.h"

namespace gloo {
class Context;
namespace transport {
class Device;
}
}  // namespace gloo

namespace minidl::distributed {

class ProcessGroupGloo : public ProcessGroup {
 public:
  /// Connects to every other rank through `store` (keys under `prefix`); `host` is the address peers reach
  /// this rank at.
  ProcessGroupGloo(StorePtr store, int rank, int size, const std::string& host, std::chrono::milliseconds timeout,
                   std::string prefix = "pg0");
  ~ProcessGroupGloo() override;

  std::string backend_name() const override { return "gloo"; }
  void allreduce(const Tensor& t, ReduceOp op = ReduceOp::Sum) override;
  void broadcast(const Tensor& t, int root = 0) override;
  std::vector<Tensor> allgather(const Tensor& t) override;
  void barrier() override;
  std::shared_ptr<ProcessGroup> new_group() override;

 private:
  ProcessGroupGloo(StorePtr store, std::shared_ptr<gloo::transport::Device> device, int rank, int size,
                   const std::string& host, std::chrono::milliseconds timeout, std::string prefix);
  template <typename F>
  void guarded(const char* what, F&& f);

  StorePtr store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  std::string host_;
  std::chrono::milliseconds timeout_;
  std::string prefix_;
  uint32_t next_tag_ = 1;
  int groups_made_ = 0;
};

}  // namespace minidl::distributed
