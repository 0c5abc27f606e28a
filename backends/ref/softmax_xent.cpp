// Ref log-softmax over the last dim (rows of (N, C); leading dims of any rank are rows too) and the negative
// log-likelihood loss with label smoothing, forward and backward, as backend.h defines them:
//   loss = mean_n -( (1-s) * logp[n, t_n] + s/C * sum_c logp[n, c] ).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {
namespace {

// Shape and strides of the leading (row) dims of t, for walking one row offset at a time.
struct Rows {
  Shape sizes, x_strides, y_strides, z_strides;
  int64_t C = 0;
};

Rows rows_of(const Tensor& x, const Tensor& y, const Tensor* z) {
  Rows r;
  const size_t lead = x.sizes().size() - 1;
  r.sizes.assign(x.sizes().begin(), x.sizes().begin() + static_cast<std::ptrdiff_t>(lead));
  r.x_strides.assign(x.strides().begin(), x.strides().begin() + static_cast<std::ptrdiff_t>(lead));
  r.y_strides.assign(y.strides().begin(), y.strides().begin() + static_cast<std::ptrdiff_t>(lead));
  if (z) r.z_strides.assign(z->strides().begin(), z->strides().begin() + static_cast<std::ptrdiff_t>(lead));
  r.C = x.sizes().back();
  return r;
}

// Reads target[n] (i64, or i32 accepted too) and checks it is a class index in [0, C).
int64_t target_at(const Tensor& target, int64_t n, int64_t C, const char* op) {
  int64_t t = 0;
  if (target.dtype() == DType::i64) {
    t = target.data<int64_t>()[n * target.stride(0)];
  } else if (target.dtype() == DType::i32) {
    t = target.data<int32_t>()[n * target.stride(0)];
  } else {
    MINIDL_FAIL("ref ", op, ": target must be int64 (or int32), got ", dtype_name(target.dtype()));
  }
  MINIDL_CHECK(t >= 0 && t < C, "ref ", op, ": target[", n, "] = ", t, " is not a class index in [0, ", C, ")");
  return t;
}

}  // namespace

void RefBackend::log_softmax_forward(Tensor& y, const Tensor& x) {
  const char* op = "log_softmax_forward";
  ref::check_host(y, op, "y");
  ref::check_host(x, op, "x");
  MINIDL_CHECK(x.dim() >= 1, "ref ", op, ": expected at least 1 dim, got a scalar");
  ref::check_shape(y, x.sizes(), op, "y");
  ref::check_dtype(y, x.dtype(), op, "y");
  const Rows r = rows_of(x, y, nullptr);
  const int64_t xs = x.strides().back(), ys = y.strides().back();
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    ref::for_each_offset<2>(r.sizes, {&r.x_strides, &r.y_strides}, [&](const auto& off) {
      const T* row = px + off[0];
      // y = x - max - log(sum exp(x - max)): subtracting the max keeps exp from overflowing.
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < r.C; ++c) mx = std::max(mx, static_cast<double>(row[c * xs]));
      double se = 0.0;
      for (int64_t c = 0; c < r.C; ++c) se += std::exp(static_cast<double>(row[c * xs]) - mx);
      const double lse = mx + std::log(se);
      for (int64_t c = 0; c < r.C; ++c) py[off[1] + c * ys] = static_cast<T>(static_cast<double>(row[c * xs]) - lse);
    });
  });
}

void RefBackend::log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) {
  const char* op = "log_softmax_backward";
  ref::check_host(gx, op, "gx");
  ref::check_host(gy, op, "gy");
  ref::check_host(y, op, "y");
  MINIDL_CHECK(y.dim() >= 1, "ref ", op, ": expected at least 1 dim, got a scalar");
  ref::check_shape(gy, y.sizes(), op, "gy");
  ref::check_shape(gx, y.sizes(), op, "gx");
  ref::check_dtype(gy, y.dtype(), op, "gy");
  ref::check_dtype(gx, y.dtype(), op, "gx");
  const Rows r = rows_of(y, gy, &gx);
  const int64_t ys = y.strides().back(), gys = gy.strides().back(), gxs = gx.strides().back();
  ref::dispatch_float(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* py = y.data<T>();
    const T* pgy = gy.data<T>();
    T* pgx = gx.data<T>();
    ref::for_each_offset<3>(r.sizes, {&r.x_strides, &r.y_strides, &r.z_strides}, [&](const auto& off) {
      // gx = gy - exp(y) * sum(gy), per row
      double sg = 0.0;
      for (int64_t c = 0; c < r.C; ++c) sg += static_cast<double>(pgy[off[1] + c * gys]);
      for (int64_t c = 0; c < r.C; ++c) {
        const double g = static_cast<double>(pgy[off[1] + c * gys]);
        pgx[off[2] + c * gxs] = static_cast<T>(g - std::exp(static_cast<double>(py[off[0] + c * ys])) * sg);
      }
    });
  });
}

void RefBackend::nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double label_smoothing) {
  const char* op = "nll_loss_forward";
  ref::check_host(loss, op, "loss");
  ref::check_host(logp, op, "logp");
  ref::check_host(target, op, "target");
  MINIDL_CHECK(logp.dim() == 2, "ref ", op, ": logp must be (N, C), got ", shape_str(logp.sizes()));
  ref::check_shape(target, {logp.size(0)}, op, "target");
  ref::check_shape(loss, {}, op, "loss");
  ref::check_dtype(loss, logp.dtype(), op, "loss");
  MINIDL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "ref ", op, ": label_smoothing ",
               label_smoothing, " is outside [0, 1]");
  ref::dispatch_float(logp.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto L = ref::acc<const T, 2>(logp, op);  // (N, C)
    const int64_t N = L.sz[0], C = L.sz[1];
    const double s = label_smoothing;
    double total = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t t = target_at(target, n, C, op);
      double row_sum = 0.0;
      if (s != 0.0) {
        for (int64_t c = 0; c < C; ++c) row_sum += static_cast<double>(L(n, c));
      }
      total += -((1.0 - s) * static_cast<double>(L(n, t)) + s / static_cast<double>(C) * row_sum);
    }
    // mean over rows; N = 0 gives 0/0 = NaN, as PyTorch's mean reduction does
    loss.data<T>()[0] = static_cast<T>(total / static_cast<double>(N));
  });
}

void RefBackend::nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target,
                                   double label_smoothing) {
  const char* op = "nll_loss_backward";
  ref::check_host(glogp, op, "glogp");
  ref::check_host(gloss, op, "gloss");
  ref::check_host(target, op, "target");
  MINIDL_CHECK(glogp.dim() == 2, "ref ", op, ": glogp must be (N, C), got ", shape_str(glogp.sizes()));
  ref::check_shape(target, {glogp.size(0)}, op, "target");
  MINIDL_CHECK(gloss.numel() == 1, "ref ", op, ": gloss must hold one value, got shape ",
               shape_str(gloss.sizes()));
  ref::check_dtype(gloss, glogp.dtype(), op, "gloss");
  MINIDL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "ref ", op, ": label_smoothing ",
               label_smoothing, " is outside [0, 1]");
  ref::dispatch_float(glogp.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto G = ref::acc<T, 2>(glogp, op);  // (N, C)
    const int64_t N = G.sz[0], C = G.sz[1];
    const double s = label_smoothing;
    const double g = static_cast<double>(gloss.data<T>()[0]) / static_cast<double>(N);
    // d loss / d logp[n, c] = -( (1-s) * [c == t_n] + s/C ) / N
    for (int64_t n = 0; n < N; ++n) {
      const int64_t t = target_at(target, n, C, op);
      for (int64_t c = 0; c < C; ++c) {
        const double d = (c == t ? (1.0 - s) : 0.0) + s / static_cast<double>(C);
        G(n, c) = static_cast<T>(-g * d);
      }
    }
  });
}

}  // namespace minidl
