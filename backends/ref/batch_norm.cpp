// Ref batch norm over (N,C,H,W) or (N,C): training forward (batch mean and biased-variance inverse std saved for
// backward), inference with running stats, and the training-mode backward. Statistics are two-pass sums in
// double. Undefined weight / bias mean 1 / 0. An (N,C) input is read as (N,C,1,1).
#include <cmath>
#include <vector>

#include "backends/ref/checks.h"
#include "backends/ref/ref_backend.h"
#include "backends/ref/strided.h"

namespace minidl {
namespace {

// Checks x is (N,C) or (N,C,H,W) and returns C.
int64_t bn_channels(const char* op, const Tensor& x) {
  MINIDL_CHECK(x.dim() == 2 || x.dim() == 4, "ref ", op, ": expected x of shape (N, C) or (N, C, H, W), got ",
               shape_str(x.sizes()));
  return x.size(1);
}

// A per-channel tensor (C), when defined, must be a host tensor of shape (C) and the input dtype.
void check_per_channel(const char* op, const Tensor& t, const char* what, int64_t C, DType dtype) {
  if (!t.defined()) return;
  ref::check_host(t, op, what);
  ref::check_shape(t, {C}, op, what);
  ref::check_dtype(t, dtype, op, what);
}

template <typename T>
double channel_value(const Tensor& t, int64_t c, double fallback) {
  return t.defined() ? static_cast<double>(t.data<T>()[c * t.stride(0)]) : fallback;
}

}  // namespace

void RefBackend::batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                             const Tensor& weight, const Tensor& bias, double eps,
                                             OpStatePtr& /*state: nothing to keep*/) {
  const char* op = "batch_norm_forward_training";
  ref::check_host(x, op, "x");
  ref::check_host(y, op, "y");
  const int64_t C = bn_channels(op, x);
  ref::check_shape(y, x.sizes(), op, "y");
  ref::check_dtype(y, x.dtype(), op, "y");
  check_per_channel(op, weight, "weight", C, x.dtype());
  check_per_channel(op, bias, "bias", C, x.dtype());
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), "ref ", op, ": save_mean and save_invstd are required");
  check_per_channel(op, save_mean, "save_mean", C, x.dtype());
  check_per_channel(op, save_invstd, "save_invstd", C, x.dtype());
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc_padded<const T, 4>(x, ref::Pad::Back, op);  // (N, C, H, W)
    auto Y = ref::acc_padded<T, 4>(y, ref::Pad::Back, op);
    const int64_t N = X.sz[0], H = X.sz[2], W = X.sz[3];
    const double M = static_cast<double>(N * H * W);  // elements per channel
    MINIDL_CHECK(N * H * W > 0, "ref ", op, ": no elements per channel in x ", shape_str(x.sizes()));
    for (int64_t c = 0; c < C; ++c) {
      double sum = 0.0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) sum += static_cast<double>(X(n, c, h, w));
      const double mean = sum / M;
      double sq = 0.0;  // second pass: sum of squared deviations (biased variance = sq / M)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            const double d = static_cast<double>(X(n, c, h, w)) - mean;
            sq += d * d;
          }
      const double invstd = 1.0 / std::sqrt(sq / M + eps);
      const double gamma = channel_value<T>(weight, c, 1.0);
      const double beta = channel_value<T>(bias, c, 0.0);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            Y(n, c, h, w) = static_cast<T>((static_cast<double>(X(n, c, h, w)) - mean) * invstd * gamma + beta);
      save_mean.data<T>()[c * save_mean.stride(0)] = static_cast<T>(mean);
      save_invstd.data<T>()[c * save_invstd.stride(0)] = static_cast<T>(invstd);
    }
  });
}

void RefBackend::batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean,
                                              const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                              double eps) {
  const char* op = "batch_norm_forward_inference";
  ref::check_host(x, op, "x");
  ref::check_host(y, op, "y");
  const int64_t C = bn_channels(op, x);
  ref::check_shape(y, x.sizes(), op, "y");
  ref::check_dtype(y, x.dtype(), op, "y");
  MINIDL_CHECK(running_mean.defined() && running_var.defined(), "ref ", op,
               ": running_mean and running_var are required");
  check_per_channel(op, running_mean, "running_mean", C, x.dtype());
  check_per_channel(op, running_var, "running_var", C, x.dtype());
  check_per_channel(op, weight, "weight", C, x.dtype());
  check_per_channel(op, bias, "bias", C, x.dtype());
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc_padded<const T, 4>(x, ref::Pad::Back, op);  // (N, C, H, W)
    auto Y = ref::acc_padded<T, 4>(y, ref::Pad::Back, op);
    for (int64_t c = 0; c < C; ++c) {
      const double mean = channel_value<T>(running_mean, c, 0.0);
      const double invstd = 1.0 / std::sqrt(channel_value<T>(running_var, c, 1.0) + eps);
      const double gamma = channel_value<T>(weight, c, 1.0);
      const double beta = channel_value<T>(bias, c, 0.0);
      for (int64_t n = 0; n < X.sz[0]; ++n)
        for (int64_t h = 0; h < X.sz[2]; ++h)
          for (int64_t w = 0; w < X.sz[3]; ++w)
            Y(n, c, h, w) = static_cast<T>((static_cast<double>(X(n, c, h, w)) - mean) * invstd * gamma + beta);
    }
  });
}

void RefBackend::batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                     const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight,
                                     double /*eps: save_invstd already has it*/, OpStatePtr& /*state*/) {
  const char* op = "batch_norm_backward";
  ref::check_host(x, op, "x");
  ref::check_host(gy, op, "gy");
  const int64_t C = bn_channels(op, x);
  ref::check_shape(gy, x.sizes(), op, "gy");
  ref::check_dtype(gy, x.dtype(), op, "gy");
  if (gx.defined()) {
    ref::check_host(gx, op, "gx");
    ref::check_shape(gx, x.sizes(), op, "gx");
    ref::check_dtype(gx, x.dtype(), op, "gx");
  }
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), "ref ", op, ": save_mean and save_invstd are required");
  check_per_channel(op, save_mean, "save_mean", C, x.dtype());
  check_per_channel(op, save_invstd, "save_invstd", C, x.dtype());
  check_per_channel(op, weight, "weight", C, x.dtype());
  check_per_channel(op, gweight, "gweight", C, x.dtype());
  check_per_channel(op, gbias, "gbias", C, x.dtype());
  ref::dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto X = ref::acc_padded<const T, 4>(x, ref::Pad::Back, op);  // (N, C, H, W)
    auto GY = ref::acc_padded<const T, 4>(gy, ref::Pad::Back, op);
    const int64_t N = X.sz[0], H = X.sz[2], W = X.sz[3];
    const double M = static_cast<double>(N * H * W);
    for (int64_t c = 0; c < C; ++c) {
      const double mean = channel_value<T>(save_mean, c, 0.0);
      const double invstd = channel_value<T>(save_invstd, c, 1.0);
      const double gamma = channel_value<T>(weight, c, 1.0);
      // sum_gy = sum gy = dL/dbeta;  sum_gy_xhat = sum gy * xhat = dL/dgamma, xhat = (x - mean) * invstd
      double sum_gy = 0.0, sum_gy_xhat = 0.0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            const double g = static_cast<double>(GY(n, c, h, w));
            sum_gy += g;
            sum_gy_xhat += g * (static_cast<double>(X(n, c, h, w)) - mean) * invstd;
          }
      if (gweight.defined()) gweight.data<T>()[c * gweight.stride(0)] = static_cast<T>(sum_gy_xhat);
      if (gbias.defined()) gbias.data<T>()[c * gbias.stride(0)] = static_cast<T>(sum_gy);
      if (!gx.defined() || M == 0) continue;
      // gx = gamma * invstd / M * (M * gy - sum_gy - xhat * sum_gy_xhat)
      auto GX = ref::acc_padded<T, 4>(gx, ref::Pad::Back, op);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            const double xhat = (static_cast<double>(X(n, c, h, w)) - mean) * invstd;
            const double g = static_cast<double>(GY(n, c, h, w));
            GX(n, c, h, w) = static_cast<T>(gamma * invstd / M * (M * g - sum_gy - xhat * sum_gy_xhat));
          }
    }
  });
}

}  // namespace minidl
