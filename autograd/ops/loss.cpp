// log_softmax, nll_loss (with label smoothing), cross_entropy = nll_loss(log_softmax) and mse_loss.
// log_softmax and nll_loss are Functions over the backend's row-wise (N, C) primitives; log_softmax over another
// dim or rank is brought to that layout with differentiable views. mse_loss composes sub, mul and mean.
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

struct LogSoftmaxFn : autograd::Function<LogSoftmaxFn> {
  static constexpr const char* kName = "log_softmax";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = new_like(x.sizes(), x);
    backend_for(x).log_softmax_forward(y, x);
    ctx.save(y, SaveKind::Output);
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor y = ctx.saved(0);
    Tensor gx = new_like(y.sizes(), g[0]);
    backend_for(g[0]).log_softmax_backward(gx, g[0], y);
    return {gx};
  }
};

struct NllLossFn : autograd::Function<NllLossFn> {
  static constexpr const char* kName = "nll_loss";
  static Tensor forward(Context& ctx, const Tensor& logp, const Tensor& target, double smoothing) {
    Tensor loss = new_like({}, logp);
    backend_for(logp).nll_loss_forward(loss, logp, target, smoothing);
    ctx.save(target, SaveKind::Index);
    ctx.data["shape"] = logp.sizes();
    ctx.data["smoothing"] = smoothing;
    return loss;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor glogp = new_like(ctx.get<Shape>("shape"), g[0]);
    backend_for(g[0]).nll_loss_backward(glogp, g[0], ctx.saved(0), ctx.get<double>("smoothing"));
    return {glogp, Tensor()};
  }
};

}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_floating("log_softmax", x);
  MINIDL_CHECK(x.dim() >= 1, "log_softmax: input ", shape_str(x.sizes()), " must have at least one dimension");
  dim = wrap_dim(dim, x.dim(), "log_softmax");
  // Another dim: the rows of the transposed view, then back. The result is made contiguous, as PyTorch's: a
  // transposed result would make layout visible (x.view(...) of it fails where PyTorch's succeeds).
  if (dim != x.dim() - 1) return log_softmax(x.transpose(dim, -1), -1).transpose(dim, -1).contiguous();
  if (x.dim() != 2) {
    // Rows of the last dim: fold the leading dims into N.
    return LogSoftmaxFn::apply(x.reshape({-1, x.size(-1)})).reshape(x.sizes());
  }
  return LogSoftmaxFn::apply(x);
}

Tensor nll_loss(const Tensor& logp, const Tensor& target, double label_smoothing) {
  check_floating("nll_loss", logp);
  MINIDL_CHECK(logp.dim() == 2, "nll_loss: log-probabilities ", shape_str(logp.sizes()), " must be (N, C)");
  MINIDL_CHECK(target.defined() && (target.dtype() == DType::i64 || target.dtype() == DType::i32),
               "nll_loss: target must be an int64 tensor of class indices");
  MINIDL_CHECK(target.dim() == 1 && target.size(0) == logp.size(0), "nll_loss: target ", shape_str(target.sizes()),
               " does not match log-probabilities ", shape_str(logp.sizes()), " (expected [", logp.size(0), "])");
  MINIDL_CHECK(target.device() == logp.device(), "nll_loss: target on ", target.device().str(),
               " but log-probabilities on ", logp.device().str());
  MINIDL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "nll_loss: label_smoothing must be in [0, 1], got ",
               label_smoothing);
  Tensor t = target.dtype() == DType::i64 ? target : target.to(DType::i64);
  if (t.device().is_cpu()) {
    // A class index out of range would read out of bounds in a kernel: refuse it here with the culprit.
    const int64_t c = logp.size(1);
    const std::vector<int64_t> v = t.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i) {
      MINIDL_CHECK(v[i] >= 0 && v[i] < c, "nll_loss: target[", i, "] = ", v[i], " is out of range for ", c, " classes");
    }
  }
  return NllLossFn::apply(logp, t, label_smoothing);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  MINIDL_CHECK(logits.dim() == 2, "cross_entropy: logits ", shape_str(logits.sizes()), " must be (N, C)");
  return nll_loss(log_softmax(logits, -1), target, label_smoothing);
}

Tensor mse_loss(const Tensor& a, const Tensor& b) {
  MINIDL_CHECK(a.sizes() == b.sizes(), "mse_loss: shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
               " differ");
  Tensor d = a - b;
  return (d * d).mean();
}

}  // namespace minidl
