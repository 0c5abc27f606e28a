// ProcessGroupGloo (see process_group_gloo.h). Compiled to nothing without Gloo (MINIDL_HAVE_GLOO off).
#include "distributed/process_group_gloo.h"

#if defined(MINIDL_HAVE_GLOO)

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/common/logging.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <cstring>

#include "autograd/grad_mode.h"
#include "core/error.h"

namespace minidl::distributed {
namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// minidl's Store seen as Gloo's, for Context::connectFullMesh.
class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(StorePtr store, std::chrono::milliseconds timeout) : store_(std::move(store)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override { store_->set(key, data); }
  std::vector<char> get(const std::string& key) override { return store_->get(key); }
  void wait(const std::vector<std::string>& keys) override { store_->wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    store_->wait(keys, timeout);
  }

 private:
  StorePtr store_;
  std::chrono::milliseconds timeout_;
};

template <typename T>
ReduceFn reduce_fn(ReduceOp op) {
  return op == ReduceOp::Max ? static_cast<ReduceFn>(&gloo::max<T>) : static_cast<ReduceFn>(&gloo::sum<T>);
}

void check_tensor(const Tensor& t, const char* what) {
  MINIDL_CHECK(t.defined(), "distributed::", what, ": undefined tensor");
  MINIDL_CHECK(t.device().is_cpu(), "distributed::", what, ": the gloo process group takes CPU tensors (use the nccl ",
               "backend for CUDA tensors)");
  MINIDL_CHECK(t.is_contiguous(), "distributed::", what, ": the tensor must be contiguous, got strides ",
               shape_str(t.strides()));
  MINIDL_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64, "distributed::", what,
               ": dtype ", dtype_name(t.dtype()), " is not supported (f32, f64, i64)");
}

}  // namespace

ProcessGroupGloo::ProcessGroupGloo(StorePtr store, int rank, int size, const std::string& host,
                                   std::chrono::milliseconds timeout, std::string prefix)
    : ProcessGroupGloo(std::move(store), nullptr, rank, size, host, timeout, std::move(prefix)) {}

ProcessGroupGloo::ProcessGroupGloo(StorePtr store, std::shared_ptr<gloo::transport::Device> device, int rank, int size,
                                   const std::string& host, std::chrono::milliseconds timeout, std::string prefix)
    : ProcessGroup(rank, size),
      store_(std::move(store)),
      device_(std::move(device)),
      host_(host),
      timeout_(timeout),
      prefix_(std::move(prefix)) {
  MINIDL_CHECK(size >= 1 && rank >= 0 && rank < size, "distributed: rank ", rank, " is outside world size ", size);
  guarded("rendezvous", [&] {
    if (!device_) {
      gloo::transport::tcp::attr attr;
      attr.hostname = host_;
      device_ = gloo::transport::tcp::CreateDevice(attr);
    }
    GlooStore scoped(std::make_shared<PrefixStore>(prefix_, store_), timeout_);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->setTimeout(timeout_);
    ctx->connectFullMesh(scoped, device_);
    context_ = std::move(ctx);
  });
}

ProcessGroupGloo::~ProcessGroupGloo() = default;

template <typename F>
void ProcessGroupGloo::guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const minidl::Error& e) {
    throw minidl::Error(
        detail::concat("distributed (gloo, rank ", rank(), " of ", size(), "): ", what, " failed: ", e.what()));
  } catch (const std::exception& e) {
    // Gloo reports a dead peer as "Connection closed by peer" / "Connection reset" and a silent one as a
    // timeout; either way this rank cannot go on.
    throw minidl::Error(detail::concat("distributed (gloo, rank ", rank(), " of ", size(), "): ", what,
                                       " failed (a peer died or timed out after ", timeout_.count(),
                                       " ms): ", e.what()));
  }
}

void ProcessGroupGloo::allreduce(const Tensor& t, ReduceOp op) {
  check_tensor(t, "allreduce");
  if (t.numel() == 0) return;
  guarded("allreduce", [&] {
    gloo::AllreduceOptions o(context_);
    const size_t n = static_cast<size_t>(t.numel());
    switch (t.dtype()) {
      case DType::f32:
        o.setOutput(t.data<float>(), n);
        o.setReduceFunction(reduce_fn<float>(op));
        break;
      case DType::f64:
        o.setOutput(t.data<double>(), n);
        o.setReduceFunction(reduce_fn<double>(op));
        break;
      default:
        o.setOutput(t.data<int64_t>(), n);
        o.setReduceFunction(reduce_fn<int64_t>(op));
        break;
    }
    o.setTag(next_tag_++);
    o.setTimeout(timeout_);
    gloo::allreduce(o);
  });
  if (op == ReduceOp::Average && size() > 1) {
    const double inv = 1.0 / size();
    const int64_t n = t.numel();
    if (t.dtype() == DType::f32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(p[i] * inv);
    } else if (t.dtype() == DType::f64) {
      double* p = t.data<double>();
      for (int64_t i = 0; i < n; ++i) p[i] *= inv;
    } else {
      int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] /= size();
    }
  }
  t.bump_version();
}

void ProcessGroupGloo::broadcast(const Tensor& t, int root) {
  check_tensor(t, "broadcast");
  MINIDL_CHECK(root >= 0 && root < size(), "distributed::broadcast: root ", root, " outside world size ", size());
  if (t.numel() == 0 || size() == 1) return;
  guarded("broadcast", [&] {
    gloo::BroadcastOptions o(context_);
    o.setOutput(static_cast<char*>(t.raw_data()), t.nbytes());
    o.setRoot(root);
    o.setTag(next_tag_++);
    o.setTimeout(timeout_);
    gloo::broadcast(o);
  });
  t.bump_version();
}

std::vector<Tensor> ProcessGroupGloo::allgather(const Tensor& t) {
  check_tensor(t, "allgather");
  Shape big = t.sizes();
  big.insert(big.begin(), size());
  Tensor all = empty(big, TensorOptions().dtype(t.dtype()));
  if (t.numel() > 0) {
    guarded("allgather", [&] {
      gloo::AllgatherOptions o(context_);
      o.setInput(static_cast<char*>(t.raw_data()), t.nbytes());
      o.setOutput(static_cast<char*>(all.raw_data()), t.nbytes() * static_cast<size_t>(size()));
      o.setTag(next_tag_++);
      o.setTimeout(timeout_);
      gloo::allgather(o);
    });
  }
  std::vector<Tensor> out;
  for (int r = 0; r < size(); ++r) {
    Tensor piece = empty(t.sizes(), TensorOptions().dtype(t.dtype()));
    std::memcpy(piece.raw_data(), static_cast<char*>(all.raw_data()) + t.nbytes() * static_cast<size_t>(r), t.nbytes());
    out.push_back(piece);
  }
  return out;
}

void ProcessGroupGloo::barrier() {
  guarded("barrier", [&] {
    gloo::BarrierOptions o(context_);
    o.setTag(next_tag_++);
    o.setTimeout(timeout_);
    gloo::barrier(o);
  });
}

std::shared_ptr<ProcessGroup> ProcessGroupGloo::new_group() {
  // Every rank calls new_group in the same order, so the n-th group of each rank meets under the same prefix.
  const std::string prefix = prefix_ + "." + std::to_string(++groups_made_);
  return std::shared_ptr<ProcessGroup>(new ProcessGroupGloo(store_, device_, rank(), size(), host_, timeout_, prefix));
}

}  // namespace minidl::distributed

#endif  // MINIDL_HAVE_GLOO
