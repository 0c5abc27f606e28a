// SyncBatchNorm (see sync_batch_norm.h): one autograd Function, computed on the host in double accumulators.
#include "distributed/sync_batch_norm.h"

#include <cmath>

#include "autograd/function.h"
#include "autograd/ops.h"

namespace minidl::distributed {
namespace {

struct SyncArgs {
  ProcessGroup* group;
  Tensor running_mean, running_var;  // undefined when the module does not track them
  double momentum, eps;
};

template <typename T>
void forward_impl(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const SyncArgs& a,
                  std::vector<double>& mean, std::vector<double>& invstd, double& count) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const T* px = x.data<T>();
  Tensor stats = zeros({2 * C + 1}, TensorOptions().dtype(DType::f64));
  double* s = stats.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* p = px + (n * C + c) * HW;
      double s1 = 0, s2 = 0;
      for (int64_t i = 0; i < HW; ++i) {
        s1 += p[i];
        s2 += static_cast<double>(p[i]) * p[i];
      }
      s[c] += s1;
      s[C + c] += s2;
    }
  s[2 * C] = static_cast<double>(N * HW);
  a.group->allreduce(stats, ReduceOp::Sum);
  count = s[2 * C];
  MINIDL_CHECK(count > 1, "SyncBatchNorm: expected more than 1 value per channel over all ranks, got ", count);
  mean.resize(C);
  invstd.resize(C);
  std::vector<double> var(C);
  for (int64_t c = 0; c < C; ++c) {
    mean[c] = s[c] / count;
    var[c] = std::max(0.0, s[C + c] / count - mean[c] * mean[c]);
    invstd[c] = 1.0 / std::sqrt(var[c] + a.eps);
  }
  const T* pw = w.data<T>();
  const T* pb = b.data<T>();
  T* py = y.data<T>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* p = px + (n * C + c) * HW;
      T* q = py + (n * C + c) * HW;
      const double scale = invstd[c] * pw[c], shift = pb[c] - mean[c] * scale;
      for (int64_t i = 0; i < HW; ++i) q[i] = static_cast<T>(p[i] * scale + shift);
    }
  if (a.running_mean.defined()) {
    T* rm = a.running_mean.data<T>();
    T* rv = a.running_var.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = static_cast<T>((1 - a.momentum) * rm[c] + a.momentum * mean[c]);
      rv[c] = static_cast<T>((1 - a.momentum) * rv[c] + a.momentum * var[c] * count / (count - 1));
    }
    a.running_mean.bump_version();
    a.running_var.bump_version();
  }
}

template <typename T>
void backward_impl(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                   const Tensor& db, ProcessGroup& group, const std::vector<double>& mean,
                   const std::vector<double>& invstd, double count) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const T* px = x.data<T>();
  const T* pg = dy.data<T>();
  Tensor sums = zeros({2 * C}, TensorOptions().dtype(DType::f64));
  double* s = sums.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* p = px + (n * C + c) * HW;
      const T* g = pg + (n * C + c) * HW;
      double s1 = 0, s2 = 0;
      for (int64_t i = 0; i < HW; ++i) {
        s1 += g[i];
        s2 += g[i] * (p[i] - mean[c]);
      }
      s[c] += s1;
      s[C + c] += s2 * invstd[c];
    }
  // local sums: the parameter gradients of this rank's samples
  T* pdw = dw.data<T>();
  T* pdb = db.data<T>();
  for (int64_t c = 0; c < C; ++c) {
    pdw[c] = static_cast<T>(s[C + c]);
    pdb[c] = static_cast<T>(s[c]);
  }
  group.allreduce(sums, ReduceOp::Sum);
  const T* pw = w.data<T>();
  T* pdx = dx.data<T>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* p = px + (n * C + c) * HW;
      const T* g = pg + (n * C + c) * HW;
      T* q = pdx + (n * C + c) * HW;
      const double mdy = s[c] / count, mdyx = s[C + c] / count, k = pw[c] * invstd[c];
      for (int64_t i = 0; i < HW; ++i) {
        const double xhat = (p[i] - mean[c]) * invstd[c];
        q[i] = static_cast<T>(k * (g[i] - mdy - xhat * mdyx));
      }
    }
}

struct SyncBatchNormFn : autograd::Function<SyncBatchNormFn> {
  static constexpr const char* kName = "sync_batch_norm";

  static Tensor forward(autograd::Context& ctx, const Tensor& x_in, const Tensor& w_in, const Tensor& b_in,
                        const SyncArgs& a) {
    const Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.contiguous();
    Tensor y = empty(x.sizes(), TensorOptions().dtype(x.dtype()));
    std::vector<double> mean, invstd;
    double count = 0;
    if (x.dtype() == DType::f64) {
      forward_impl<double>(x, w, b, y, a, mean, invstd, count);
    } else {
      forward_impl<float>(x, w, b, y, a, mean, invstd, count);
    }
    ctx.save(x, autograd::SaveKind::Activation);
    ctx.save(w, autograd::SaveKind::Parameter);
    ctx.data["mean"] = mean;
    ctx.data["invstd"] = invstd;
    ctx.data["count"] = count;
    ctx.data["group"] = a.group;
    return y;
  }

  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor>&& grads) {
    const Tensor x = ctx.saved(0), w = ctx.saved(1);
    const Tensor dy = grads[0].contiguous();
    const auto opts = TensorOptions().dtype(x.dtype());
    Tensor dx = empty(x.sizes(), opts), dw = empty(w.sizes(), opts), db = empty(w.sizes(), opts);
    const auto& mean = ctx.get<std::vector<double>>("mean");
    const auto& invstd = ctx.get<std::vector<double>>("invstd");
    ProcessGroup& g = *ctx.get<ProcessGroup*>("group");
    if (x.dtype() == DType::f64) {
      backward_impl<double>(x, w, dy, dx, dw, db, g, mean, invstd, ctx.get<double>("count"));
    } else {
      backward_impl<float>(x, w, dy, dx, dw, db, g, mean, invstd, ctx.get<double>("count"));
    }
    return {dx, dw, db};
  }
};

}  // namespace

SyncBatchNorm::SyncBatchNorm(ProcessGroupPtr group) : group_(std::move(group)) {
  MINIDL_CHECK(group_ != nullptr, "SyncBatchNorm: no process group");
}

Tensor SyncBatchNorm::forward(nn::BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& residual) {
  MINIDL_CHECK(bn.weight.defined() && bn.bias.defined(), "SyncBatchNorm ('", bn.path(),
               "'): only affine batch norm is supported");
  MINIDL_CHECK(x.device().is_cpu() && (x.dtype() == DType::f32 || x.dtype() == DType::f64), "SyncBatchNorm ('",
               bn.path(), "'): CPU f32/f64 tensors only, got ", dtype_name(x.dtype()), " on ", x.device().str());
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == bn.num_features, "SyncBatchNorm ('", bn.path(), "'): expected input (N, ",
               bn.num_features, ", H, W), got ", shape_str(x.sizes()));
  SyncArgs a{group_.get(), bn.running_mean, bn.running_var, bn.options.momentum, bn.options.eps};
  Tensor y = SyncBatchNormFn::apply(x, bn.weight, bn.bias, a);
  if (residual.defined()) y = add(y, residual);
  return relu ? minidl::relu(y) : y;
}

int convert_sync_batchnorm(nn::Module& model, const ProcessGroupPtr& group) {
  auto sync = std::make_shared<SyncBatchNorm>(group);
  int n = 0;
  model.apply([&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) {
      bn->training_override = sync;
      ++n;
    }
  });
  return n;
}

}  // namespace minidl::distributed
