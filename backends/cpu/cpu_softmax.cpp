// Log-softmax over the last dim (rows of (N, C); leading dims of any rank are rows) and the label-smoothed NLL loss of
// the cpu backend, f32 and f64. Rows run in parallel; each row is max, sum of exp (in double), subtract. The loss sums
// in double.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

void check_2d(const char* op, const char* what, const Tensor& t) {
  cpu::check_cpu(op, what, t);
  MINIDL_CHECK(t.dim() == 2, op, " (backend cpu): ", what, " must be (N, C), got ", shape_str(t.sizes()));
  if (!is_floating(t.dtype())) cpu::unsupported(op, t.dtype());
}

// Reads target[n] (i64 or i32) and checks its range.
std::vector<int64_t> read_targets(const char* op, const Tensor& target, int64_t N, int64_t C) {
  cpu::check_cpu(op, "target", target);
  MINIDL_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, op,
               " (backend cpu): target must be int64 (or int32), got ", dtype_name(target.dtype()));
  MINIDL_CHECK(target.dim() == 1 && target.sizes()[0] == N, op, " (backend cpu): target shape ",
               shape_str(target.sizes()), " does not match ", N, " rows");
  std::vector<int64_t> t(static_cast<size_t>(N));
  const Tensor tc = cpu::contiguous_input(target);
  for (int64_t n = 0; n < N; ++n) {
    t[static_cast<size_t>(n)] =
        tc.dtype() == DType::i64 ? tc.data<int64_t>()[n] : static_cast<int64_t>(tc.data<int32_t>()[n]);
    MINIDL_CHECK(t[static_cast<size_t>(n)] >= 0 && t[static_cast<size_t>(n)] < C, op, " (backend cpu): target ",
                 t[static_cast<size_t>(n)], " at row ", n, " is outside [0, ", C, ")");
  }
  return t;
}

// Log-softmax works on rows of the last dim; leading dims of any rank are rows (as in the ref backend).
void check_rows(const char* op, const char* what, const Tensor& t) {
  cpu::check_cpu(op, what, t);
  MINIDL_CHECK(t.dim() >= 1, op, " (backend cpu): ", what, " must have at least one dim");
  if (!is_floating(t.dtype())) cpu::unsupported(op, t.dtype());
}

void check_smoothing(const char* op, double s) {
  MINIDL_CHECK(s >= 0.0 && s <= 1.0, op, " (backend cpu): label_smoothing ", s, " is outside [0, 1]");
}

}  // namespace

void CpuBackend::log_softmax_forward(Tensor& y, const Tensor& x) {
  const char* op = "log_softmax_forward";
  check_rows(op, "x", x);
  cpu::check_tensor(op, "y", y, x.dtype(), x.sizes());
  MINIDL_CHECK(y.is_contiguous(), op, " (backend cpu): y must be contiguous");
  const Tensor xc = cpu::contiguous_input(x);
  const int64_t C = x.sizes().back();
  if (C == 0) return;
  const int64_t N = x.numel() / C;
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    cpu::parallel_for(N, 4 * C, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const T* xr = xp + n * C;
        T* yr = yp + n * C;
        T m = xr[0];
        for (int64_t c = 1; c < C; ++c) m = xr[c] > m ? xr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(xr[c] - m));
        const T lse = m + static_cast<T>(std::log(s));
        for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] - lse;
      }
    });
  });
}

void CpuBackend::log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) {
  const char* op = "log_softmax_backward";
  check_rows(op, "y", y);
  cpu::check_tensor(op, "gy", gy, y.dtype(), y.sizes());
  cpu::check_tensor(op, "gx", gx, y.dtype(), y.sizes());
  MINIDL_CHECK(gx.is_contiguous(), op, " (backend cpu): gx must be contiguous");
  const Tensor yc = cpu::contiguous_input(y), gc = cpu::contiguous_input(gy);
  const int64_t C = y.sizes().back();
  if (C == 0) return;
  const int64_t N = y.numel() / C;
  dispatch_floating(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* yp = yc.data<T>();
    const T* gp = gc.data<T>();
    T* xp = gx.data<T>();
    cpu::parallel_for(N, 4 * C, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const T* yr = yp + n * C;
        const T* gr = gp + n * C;
        T* xr = xp + n * C;
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += gr[c];
        const T st = static_cast<T>(s);
        for (int64_t c = 0; c < C; ++c) xr[c] = gr[c] - std::exp(yr[c]) * st;
      }
    });
  });
}

void CpuBackend::nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double s) {
  const char* op = "nll_loss_forward";
  check_2d(op, "logp", logp);
  check_smoothing(op, s);
  cpu::check_tensor(op, "loss", loss, logp.dtype(), {});
  const int64_t N = logp.sizes()[0], C = logp.sizes()[1];
  const auto t = read_targets(op, target, N, C);
  const Tensor lc = cpu::contiguous_input(logp);
  dispatch_floating(logp.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* lp = lc.data<T>();
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = lp + n * C;
      double row_sum = 0;
      if (s != 0.0) {
        for (int64_t c = 0; c < C; ++c) row_sum += row[c];
      }
      total +=
          -((1.0 - s) * static_cast<double>(row[t[static_cast<size_t>(n)]]) + s / static_cast<double>(C) * row_sum);
    }
    loss.data<T>()[0] = static_cast<T>(N > 0 ? total / static_cast<double>(N) : std::nan(""));
  });
}

void CpuBackend::nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target, double s) {
  const char* op = "nll_loss_backward";
  check_2d(op, "glogp", glogp);
  check_smoothing(op, s);
  MINIDL_CHECK(glogp.is_contiguous(), op, " (backend cpu): glogp must be contiguous");
  cpu::check_cpu(op, "gloss", gloss);
  MINIDL_CHECK(gloss.numel() == 1 && gloss.dtype() == glogp.dtype(), op,
               " (backend cpu): gloss must be a one-element tensor of dtype ", dtype_name(glogp.dtype()));
  const int64_t N = glogp.sizes()[0], C = glogp.sizes()[1];
  const auto t = read_targets(op, target, N, C);
  dispatch_floating(glogp.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const double g = static_cast<double>(*static_cast<const T*>(gloss.raw_data())) / static_cast<double>(N);
    const T off = static_cast<T>(-g * s / static_cast<double>(C));
    const T hit = static_cast<T>(-g * (1.0 - s) - g * s / static_cast<double>(C));
    T* gp = glogp.data<T>();
    cpu::parallel_for(N, C, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        T* row = gp + n * C;
        for (int64_t c = 0; c < C; ++c) row[c] = off;
        row[t[static_cast<size_t>(n)]] = hit;
      }
    });
  });
}

}  // namespace minidl
