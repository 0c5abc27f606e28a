// nn::BatchNorm2d (see batch_norm.h). The running statistics are updated inside the batch_norm op
// (autograd/ops.h); the module only counts batches, as PyTorch's num_batches_tracked does.
#include "nn/modules/batch_norm.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/init.h"

namespace minidl::nn {

BatchNorm2d::BatchNorm2d(int64_t c, const BatchNormOptions& o) : Module("BatchNorm2d"), num_features(c), options(o) {
  MINIDL_CHECK(c > 0, "nn::BatchNorm2d: num_features must be positive, got ", c);
  MINIDL_CHECK(o.eps > 0.0 && o.momentum >= 0.0 && o.momentum <= 1.0, "nn::BatchNorm2d: invalid eps=", o.eps,
               " or momentum=", o.momentum);
  if (o.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, TensorOptions{}.dtype(DType::i64)));
  }
}

void BatchNorm2d::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
  if (running_mean.defined()) {
    init::zeros_(running_mean);
    init::ones_(running_var);
    init::zeros_(num_batches_tracked);
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_impl(x, false); }

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  autograd::ModuleNameGuard guard(path());
  return forward_impl(x, true);
}

Tensor BatchNorm2d::forward_add_relu(Tensor x, const Tensor& residual) {
  autograd::ModuleNameGuard guard(path());
  return forward_impl(std::move(x), true, residual);
}

Tensor BatchNorm2d::forward_impl(Tensor x, bool relu, const Tensor& residual) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == num_features, "nn::BatchNorm2d ('", path(), "'): expected input (N, ",
               num_features, ", H, W), got ", shape_str(x.sizes()));
  // Without running statistics PyTorch normalises with batch statistics in eval too.
  const bool use_batch_stats = is_training() || !running_mean.defined();
  if (is_training()) count_batch();
  if (is_training() && training_override) return training_override->forward(*this, x, relu, residual);
  if (residual.defined())
    return batch_norm_add_relu(std::move(x), residual, running_mean, running_var, weight, bias, use_batch_stats,
                               options.momentum, options.eps);
  if (relu)
    return batch_norm_relu(x, running_mean, running_var, weight, bias, use_batch_stats, options.momentum, options.eps);
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, options.momentum, options.eps);
}

// On the host the counter is bumped in place. On a device it is rewritten by a fill kernel from a host mirror:
// reading it back each step (as this did before) is a device-to-host copy that waits for the stream, once per
// batch norm per step, which kept an H200 from running ahead of the host (ResNet-18 batch 64 spent 74 % of its
// profiled host time in those copies). The mirror is read from the device only when the tensor is not the one it
// last wrote (first step, load_state_dict, to()).
void BatchNorm2d::count_batch() {
  if (!num_batches_tracked.defined()) return;
  if (num_batches_tracked.device().is_cpu()) {
    num_batches_tracked.data<int64_t>()[0] += 1;
    num_batches_tracked.bump_version();
    return;
  }
  autograd::NoGradGuard no_grad;
  Tensor t = num_batches_tracked.detach();
  const bool mirror_current = tracked_storage_.lock() == t.storage() && tracked_version_ == t.version();
  if (!mirror_current) tracked_mirror_ = t.item<int64_t>();
  ++tracked_mirror_;
  t.fill_(static_cast<double>(tracked_mirror_));  // exact: counts stay far below 2^53
  tracked_storage_ = t.storage();
  tracked_version_ = t.version();
}

std::string BatchNorm2d::extra_repr() const {
  std::string s = std::to_string(num_features) + ", eps=" + std::to_string(options.eps) +
                  ", momentum=" + std::to_string(options.momentum) + ", affine=" + (options.affine ? "True" : "False") +
                  ", track_running_stats=" + (options.track_running_stats ? "True" : "False");
  return s;
}

}  // namespace minidl::nn
