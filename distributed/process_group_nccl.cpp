// ProcessGroupNccl (see process_group_nccl.h). Without NCCL in the build only the factory's error remains.
#include "distributed/process_group_nccl.h"

#include "core/error.h"

#if defined(MINIDL_HAVE_NCCL)
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>
#endif

namespace minidl::distributed {

#if defined(MINIDL_HAVE_NCCL)
namespace {

void cuda_ok(cudaError_t e, const char* what) {
  MINIDL_CHECK(e == cudaSuccess, "distributed (nccl): ", what, ": ", cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
    default: MINIDL_FAIL("distributed (nccl): dtype ", dtype_name(d), " is not supported (f32, f64, i64)");
  }
}

void* device_ptr(const Tensor& t, const char* what) {
  MINIDL_CHECK(t.defined() && t.device().is_cuda(), "distributed::", what,
               ": the nccl process group takes CUDA tensors (use gloo for CPU tensors)");
  MINIDL_CHECK(t.is_contiguous(), "distributed::", what, ": the tensor must be contiguous");
  return static_cast<char*>(t.storage()->data()) + t.offset() * static_cast<int64_t>(t.element_size());
}

class ProcessGroupNccl : public ProcessGroup {
 public:
  ProcessGroupNccl(StorePtr store, int rank, int size, std::chrono::milliseconds timeout, std::string prefix)
      : ProcessGroup(rank, size), store_(std::move(store)), timeout_(timeout), prefix_(std::move(prefix)) {
    PrefixStore scoped(prefix_, store_);
    ncclUniqueId id;
    if (rank == 0) {
      check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      scoped.set("id", std::vector<char>(id.internal, id.internal + sizeof id.internal));
    } else {
      scoped.wait({"id"}, timeout_);
      auto v = scoped.get("id");
      MINIDL_CHECK(v.size() == sizeof id.internal, "distributed (nccl): malformed unique id in the store");
      std::memcpy(id.internal, v.data(), v.size());
    }
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // non-blocking: a missing peer shows up in wait() instead of hanging here
    check(ncclCommInitRankConfig(&comm_, size, id, rank, &config), "ncclCommInitRank");
    wait("ncclCommInitRank");
  }
  ~ProcessGroupNccl() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string backend_name() const override { return "nccl"; }

  void allreduce(const Tensor& t, ReduceOp op) override {
    void* p = device_ptr(t, "allreduce");
    producers_done();
    const ncclRedOp_t nop = op == ReduceOp::Sum ? ncclSum : op == ReduceOp::Average ? ncclAvg : ncclMax;
    check(ncclAllReduce(p, p, static_cast<size_t>(t.numel()), nccl_type(t.dtype()), nop, comm_, stream_),
          "ncclAllReduce");
    wait("allreduce");
    t.bump_version();
  }
  void broadcast(const Tensor& t, int root) override {
    void* p = device_ptr(t, "broadcast");
    producers_done();
    check(ncclBroadcast(p, p, static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, comm_, stream_),
          "ncclBroadcast");
    wait("broadcast");
    t.bump_version();
  }
  std::vector<Tensor> allgather(const Tensor& t) override {
    Shape big = t.sizes();
    big.insert(big.begin(), size());
    Tensor all = empty(big, TensorOptions().dtype(t.dtype()).device(t.device()));
    producers_done();
    check(ncclAllGather(device_ptr(t, "allgather"), device_ptr(all, "allgather"), static_cast<size_t>(t.numel()),
                        nccl_type(t.dtype()), comm_, stream_),
          "ncclAllGather");
    wait("allgather");
    Tensor host = all.to(kCPU);
    std::vector<Tensor> out;
    for (int r = 0; r < size(); ++r) {
      Tensor piece = empty(t.sizes(), TensorOptions().dtype(t.dtype()));
      std::memcpy(piece.raw_data(), static_cast<char*>(host.raw_data()) + t.nbytes() * static_cast<size_t>(r),
                  t.nbytes());
      out.push_back(piece.to(t.device()));
    }
    return out;
  }
  void barrier() override {
    Tensor one = ones({1}).to(Device::cuda(0));
    allreduce(one, ReduceOp::Sum);
  }
  std::shared_ptr<ProcessGroup> new_group() override {
    return std::make_shared<ProcessGroupNccl>(store_, rank(), size(), timeout_,
                                              prefix_ + "." + std::to_string(++groups_made_));
  }

 private:
  // minidl's kernels run on other streams: the tensor must be final before NCCL's stream reads it.
  static void producers_done() { cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
  void check(ncclResult_t r, const char* what) {
    MINIDL_CHECK(r == ncclSuccess || r == ncclInProgress, "distributed (nccl, rank ", rank(), " of ", size(),
                 "): ", what, " failed: ", ncclGetErrorString(r));
  }
  // Polls the stream and the communicator's async error until done or the timeout; a timeout aborts the
  // communicator (the only way to free a rank stuck on a dead peer).
  void wait(const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        MINIDL_FAIL("distributed (nccl, rank ", rank(), " of ", size(), "): ", what,
                    " failed: ", ncclGetErrorString(async));
      }
      if (async == ncclSuccess) {
        const cudaError_t q = cudaStreamQuery(stream_);
        if (q == cudaSuccess) return;
        if (q != cudaErrorNotReady) cuda_ok(q, what);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        MINIDL_FAIL("distributed (nccl, rank ", rank(), " of ", size(), "): ", what, " timed out after ",
                    timeout_.count(), " ms (a peer died or stopped calling collectives)");
      }
      std::this_thread::yield();
    }
  }

  StorePtr store_;
  std::chrono::milliseconds timeout_;
  std::string prefix_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int groups_made_ = 0;
};

}  // namespace

bool nccl_available() { return true; }

ProcessGroupPtr make_process_group_nccl(StorePtr store, int rank, int size, std::chrono::milliseconds timeout,
                                        const std::string& prefix) {
  return std::make_shared<ProcessGroupNccl>(std::move(store), rank, size, timeout, prefix);
}

#else

bool nccl_available() { return false; }

ProcessGroupPtr make_process_group_nccl(StorePtr, int, int, std::chrono::milliseconds, const std::string&) {
  MINIDL_FAIL("distributed: the nccl backend needs a minidl built with CUDA and NCCL (this one has none); use gloo");
}

#endif

}  // namespace minidl::distributed
