// Batch normalisation of the cpu backend over (N,C), (N,C,L) or (N,C,H,W), f32 and f64: OpenMP over
// channels, each channel a set of contiguous runs (one per sample) folded with simd reductions in double.
// Why not oneDNN: on the plain NCHW layout the interface hands over, oneDNN 2.6 only has its simple
// `ncsp_bnorm` (measured ~14x the time of a ReLU over the same tensor, against ~3-4x for these loops), and its
// jit kernels need the blocked layout, whose reorders cost as much as the loops. When activations stay blocked
// across conv/bn/relu (later optimisation, see cpu_conv.cpp), oneDNN's fused bnorm+relu becomes the right tool.
// Training forward: two passes (mean, then squared deviations) for a stable biased variance; backward is
// gx = w*invstd * (gy - mean(gy) - xhat * mean(gy*xhat)), written as gx = a*gy + b*(x - mean) + d.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

struct BnGeom {
  int64_t N = 0, C = 0, S = 1;  // x viewed as (N, C, S), contiguous
  double M() const { return static_cast<double>(N * S); }
};

BnGeom check_bn_input(const char* op, const Tensor& x) {
  cpu::check_cpu(op, "x", x);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  MINIDL_CHECK(x.dim() >= 2 && x.dim() <= 4, op, " (backend cpu): input must be (N,C), (N,C,L) or (N,C,H,W), got ",
               shape_str(x.sizes()));
  BnGeom g;
  g.N = x.sizes()[0];
  g.C = x.sizes()[1];
  for (int64_t d = 2; d < x.dim(); ++d) g.S *= x.sizes()[static_cast<size_t>(d)];
  MINIDL_CHECK(g.N * g.S > 0 && g.C > 0, op, " (backend cpu): no elements per channel in x ", shape_str(x.sizes()));
  return g;
}

// A (C) vector as doubles: t's values, or `fallback` everywhere when t is undefined.
std::vector<double> channel_values(const char* op, const char* what, const Tensor& t, int64_t C, DType dt,
                                   double fallback) {
  std::vector<double> v(static_cast<size_t>(C), fallback);
  if (!t.defined()) return v;
  cpu::check_tensor(op, what, t, dt, {C});
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(t.raw_data());
    for (int64_t c = 0; c < C; ++c) v[static_cast<size_t>(c)] = static_cast<double>(p[c * t.strides()[0]]);
  });
  return v;
}

// Writes a (C) result into t (any stride) when t is defined.
void store_channels(const char* op, const char* what, Tensor& t, const std::vector<double>& v, DType dt) {
  if (!t.defined()) return;
  const int64_t C = static_cast<int64_t>(v.size());
  cpu::check_tensor(op, what, t, dt, {C});
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t c = 0; c < C; ++c) p[c * t.strides()[0]] = static_cast<T>(v[static_cast<size_t>(c)]);
  });
}

template <typename T>
double sum_run(const T* p, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
  return s;
}

template <typename T>
double sqdev_run(const T* p, int64_t n, double mean) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - mean;
    s += d * d;
  }
  return s;
}

// y = x * a + b over one channel (all N runs).
template <typename T>
void affine_channel(T* y, const T* x, const BnGeom& g, int64_t c, double a, double b) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  for (int64_t n = 0; n < g.N; ++n) {
    const int64_t off = (n * g.C + c) * g.S;
    const T* xr = x + off;
    T* yr = y + off;
#pragma omp simd
    for (int64_t i = 0; i < g.S; ++i) yr[i] = xr[i] * ta + tb;
  }
}

template <typename T>
void bn_train_fwd(T* y, const T* x, const BnGeom& g, double eps, const std::vector<double>& w,
                  const std::vector<double>& b, std::vector<double>& mean, std::vector<double>& invstd) {
  cpu::parallel_for(g.C, 3 * g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) s += sum_run(x + (n * g.C + c) * g.S, g.S);
      const double m = s / g.M();
      double q = 0;
      for (int64_t n = 0; n < g.N; ++n) q += sqdev_run(x + (n * g.C + c) * g.S, g.S, m);
      const double is = 1.0 / std::sqrt(q / g.M() + eps);
      const auto cc = static_cast<size_t>(c);
      mean[cc] = m;
      invstd[cc] = is;
      const double a = is * w[cc];
      affine_channel(y, x, g, c, a, b[cc] - m * a);
    }
  });
}

template <typename T>
void bn_infer(T* y, const T* x, const BnGeom& g, double eps, const std::vector<double>& w, const std::vector<double>& b,
              const std::vector<double>& mean, const std::vector<double>& var) {
  cpu::parallel_for(g.C, g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto cc = static_cast<size_t>(c);
      const double a = w[cc] / std::sqrt(var[cc] + eps);
      affine_channel(y, x, g, c, a, b[cc] - mean[cc] * a);
    }
  });
}

template <typename T>
void bn_bwd(T* gx, const T* gy, const T* x, const BnGeom& g, const std::vector<double>& mean,
            const std::vector<double>& invstd, const std::vector<double>& w, std::vector<double>& gw,
            std::vector<double>& gb) {
  cpu::parallel_for(g.C, 3 * g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto cc = static_cast<size_t>(c);
      const double m = mean[cc], is = invstd[cc];
      double sg = 0, sgd = 0;  // sum gy, sum gy * (x - mean)
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        const T* gr = gy + off;
        const T* xr = x + off;
        double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t i = 0; i < g.S; ++i) {
          const double gv = static_cast<double>(gr[i]);
          s1 += gv;
          s2 += gv * (static_cast<double>(xr[i]) - m);
        }
        sg += s1;
        sgd += s2;
      }
      const double sum_gy_xhat = sgd * is;
      gb[cc] = sg;
      gw[cc] = sum_gy_xhat;
      if (!gx) continue;
      const double A = w[cc] * is, B = -w[cc] * is * is * sum_gy_xhat / g.M(), D = -w[cc] * is * sg / g.M();
      const T ta = static_cast<T>(A), tb = static_cast<T>(B), td = static_cast<T>(D), tm = static_cast<T>(m);
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        const T* gr = gy + off;
        const T* xr = x + off;
        T* o = gx + off;
#pragma omp simd
        for (int64_t i = 0; i < g.S; ++i) o[i] = ta * gr[i] + tb * (xr[i] - tm) + td;
      }
    }
  });
}

}  // namespace

void CpuBackend::batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                             const Tensor& weight, const Tensor& bias, double eps,
                                             OpStatePtr& /*state: nothing to keep*/) {
  const char* op = "batch_norm_forward_training";
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "y", y, dt, x.sizes());
  MINIDL_CHECK(y.is_contiguous(), op, " (backend cpu): y must be contiguous");
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), op,
               " (backend cpu): save_mean and save_invstd are required");
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  const auto b = channel_values(op, "bias", bias, g.C, dt, 0.0);
  std::vector<double> mean(static_cast<size_t>(g.C)), invstd(static_cast<size_t>(g.C));
  const Tensor xc = cpu::contiguous_input(x);
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    bn_train_fwd<T>(y.data<T>(), xc.data<T>(), g, eps, w, b, mean, invstd);
  });
  store_channels(op, "save_mean", save_mean, mean, dt);
  store_channels(op, "save_invstd", save_invstd, invstd, dt);
}

void CpuBackend::batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean,
                                              const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                              double eps) {
  const char* op = "batch_norm_forward_inference";
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "y", y, dt, x.sizes());
  MINIDL_CHECK(y.is_contiguous(), op, " (backend cpu): y must be contiguous");
  MINIDL_CHECK(running_mean.defined() && running_var.defined(), op,
               " (backend cpu): running_mean and running_var are required");
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  const auto b = channel_values(op, "bias", bias, g.C, dt, 0.0);
  const auto mean = channel_values(op, "running_mean", running_mean, g.C, dt, 0.0);
  const auto var = channel_values(op, "running_var", running_var, g.C, dt, 1.0);
  const Tensor xc = cpu::contiguous_input(x);
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    bn_infer<T>(y.data<T>(), xc.data<T>(), g, eps, w, b, mean, var);
  });
}

void CpuBackend::batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                     const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight,
                                     double /*eps: save_invstd has it*/, OpStatePtr& /*state*/) {
  const char* op = "batch_norm_backward";
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "gy", gy, dt, x.sizes());
  if (gx.defined()) {
    cpu::check_tensor(op, "gx", gx, dt, x.sizes());
    MINIDL_CHECK(gx.is_contiguous(), op, " (backend cpu): gx must be contiguous");
  }
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), op,
               " (backend cpu): save_mean and save_invstd are required");
  const auto mean = channel_values(op, "save_mean", save_mean, g.C, dt, 0.0);
  const auto invstd = channel_values(op, "save_invstd", save_invstd, g.C, dt, 1.0);
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  std::vector<double> gw(static_cast<size_t>(g.C)), gb(static_cast<size_t>(g.C));
  const Tensor xc = cpu::contiguous_input(x), gyc = cpu::contiguous_input(gy);
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    bn_bwd<T>(gx.defined() ? gx.data<T>() : nullptr, gyc.data<T>(), xc.data<T>(), g, mean, invstd, w, gw, gb);
  });
  store_channels(op, "gweight", gweight, gw, dt);
  store_channels(op, "gbias", gbias, gb, dt);
}

}  // namespace minidl
