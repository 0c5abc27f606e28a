// DistributedDataParallel (see ddp.h).
#include "distributed/ddp.h"

#include <chrono>
#include <cstring>

#include "autograd/grad_hooks.h"
#include "autograd/grad_mode.h"
#include "distributed/sync_batch_norm.h"

namespace minidl::distributed {

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, ProcessGroupPtr group,
                                                 DDPOptions options)
    : module_(std::move(module)), group_(std::move(group)), options_(options) {
  MINIDL_CHECK(module_ && group_, "DistributedDataParallel: null module or process group");
  params_ = module_->parameters();
  MINIDL_CHECK(!params_.empty(), "DistributedDataParallel: the module has no parameters");
  // Same start on every rank: rank 0's parameters and buffers.
  {
    autograd::NoGradGuard no_grad;
    for (const Tensor& p : params_) {
      MINIDL_CHECK(p.device().is_cpu() || group_->backend_name() == "nccl", "DistributedDataParallel: a parameter on ",
                   p.device().str(), " needs the nccl backend");
      MINIDL_CHECK(p.is_contiguous(), "DistributedDataParallel: parameters must be contiguous");
      group_->broadcast(p.detach(), 0);
    }
    for (const Tensor& b : module_->buffers()) group_->broadcast(b.detach(), 0);
  }
  if (options_.sync_batchnorm) convert_sync_batchnorm(*module_, group_);

  // Buckets in reverse registration order, split by size and dtype.
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    if (!p.requires_grad()) continue;
    if (buckets_.empty() || buckets_.back().flat.defined()) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    int64_t used = b.offsets.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel();
    const bool other_dtype = !b.params.empty() && params_[b.params.back()].dtype() != p.dtype();
    if (!b.params.empty() &&
        (other_dtype || static_cast<size_t>(used + p.numel()) * p.element_size() > options_.bucket_bytes)) {
      b.flat = empty({used}, TensorOptions().dtype(params_[b.params.back()].dtype()).device(p.device()));
      buckets_.emplace_back();
      used = 0;
    }
    Bucket& cur = buckets_.back();
    cur.params.push_back(k);
    cur.offsets.push_back(used);
  }
  Bucket& last = buckets_.back();
  if (!last.flat.defined()) {
    const Tensor& lp = params_[last.params.back()];
    last.flat = empty({last.offsets.back() + lp.numel()}, TensorOptions().dtype(lp.dtype()).device(lp.device()));
  }
  where_.assign(params_.size(), {SIZE_MAX, 0});
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (size_t s = 0; s < buckets_[b].params.size(); ++s) where_[buckets_[b].params[s]] = {b, s};
  param_ready_.assign(params_.size(), false);

  comm_group_ = group_->new_group();
  comm_thread_ = std::thread([this] { comm_loop(); });
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!params_[k].requires_grad()) continue;
    hooks_.push_back(autograd::add_grad_ready_hook(params_[k], [this, k](const Tensor&) { on_grad_ready(k); }));
  }
}

DistributedDataParallel::~DistributedDataParallel() {
  for (int64_t h : hooks_) autograd::remove_grad_ready_hook(h);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  comm_thread_.join();
}

Tensor DistributedDataParallel::forward(const Tensor& x) {
  if (module_->is_training() && options_.broadcast_buffers && !options_.sync_batchnorm && group_->size() > 1) {
    autograd::NoGradGuard no_grad;
    for (const Tensor& b : module_->buffers()) group_->broadcast(b.detach(), 0);
  }
  return (*module_)(x);
}

void DistributedDataParallel::on_grad_ready(size_t k) {
  if (!in_backward_) {
    in_backward_ = true;
    next_launch_ = 0;
    for (auto& b : buckets_) b.ready = 0, b.launched = b.done = false;
    std::fill(param_ready_.begin(), param_ready_.end(), false);
    autograd::queue_backward_callback([this] { finish(); });
  }
  if (param_ready_[k]) return;
  param_ready_[k] = true;
  auto [bi, slot] = where_[k];
  Bucket& b = buckets_[bi];
  // Into the bucket now: the .grad may change later (another backward), the bucket's copy is this pass's.
  const Tensor& p = params_[k];
  const Tensor g = p.grad();
  char* dst = static_cast<char*>(b.flat.raw_data()) + b.offsets[slot] * static_cast<int64_t>(p.element_size());
  if (g.defined()) {
    const Tensor gc = g.is_contiguous() ? g : g.contiguous();
    std::memcpy(dst, gc.raw_data(), p.nbytes());
  } else {
    std::memset(dst, 0, p.nbytes());
  }
  ++b.ready;
  if (options_.overlap) launch_ready_buckets(false);
}

// Buckets go out in index order on every rank (the collectives must match), each once all its gradients are in
// (or every one, at the end of backward).
void DistributedDataParallel::launch_ready_buckets(bool all) {
  while (next_launch_ < buckets_.size()) {
    Bucket& b = buckets_[next_launch_];
    if (!all && b.ready < static_cast<int>(b.params.size())) return;
    launch(next_launch_++);
  }
}

void DistributedDataParallel::launch(size_t bi) {
  buckets_[bi].launched = true;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(bi);
  }
  cv_.notify_all();
}

void DistributedDataParallel::comm_loop() {
  for (;;) {
    size_t bi;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      bi = queue_.front();
      queue_.pop_front();
    }
    std::exception_ptr err;
    try {
      if (!comm_error_) comm_group_->allreduce(buckets_[bi].flat, ReduceOp::Sum);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      if (err && !comm_error_) comm_error_ = err;
      buckets_[bi].done = true;
    }
    cv_.notify_all();
  }
}

void DistributedDataParallel::finish() {
  // Parameters no gradient reached on this rank (unused in this forward) contribute zeros.
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].requires_grad() && !param_ready_[k]) on_grad_ready(k);
  in_backward_ = false;  // the next on_grad_ready starts the next pass
  launch_ready_buckets(true);
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      for (const auto& b : buckets_)
        if (!b.done) return false;
      return true;
    });
    if (comm_error_) {
      std::exception_ptr e = comm_error_;
      comm_error_ = nullptr;
      std::rethrow_exception(e);
    }
  }
  last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double inv = 1.0 / group_->size();
  for (Bucket& b : buckets_) {
    for (size_t s = 0; s < b.params.size(); ++s) {
      const Tensor& p = params_[b.params[s]];
      Tensor avg = empty(p.sizes(), TensorOptions().dtype(p.dtype()).device(p.device()));
      const int64_t n = p.numel();
      if (p.dtype() == DType::f64) {
        const double* src = b.flat.data<double>() + b.offsets[s];
        double* d = avg.data<double>();
        for (int64_t i = 0; i < n; ++i) d[i] = src[i] * inv;
      } else {
        const float* src = b.flat.data<float>() + b.offsets[s];
        float* d = avg.data<float>();
        for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(src[i] * inv);
      }
      p.impl().grad = avg.impl_ptr();
    }
  }
}

}  // namespace minidl::distributed
