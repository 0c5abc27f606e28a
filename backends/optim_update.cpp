// The host reference of the optimizer-update primitives (Backend's defaults, run by ref and cpu): the loops
// optim/ ran before the updates moved behind the Backend interface, unchanged, so CPU training stays
// bit-identical. Elementwise loops are split over OpenMP threads (each element's arithmetic is independent
// of the split); mean |V| is one sequential double sum.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/backend.h"
#include "backends/optim_checks.h"

namespace minidl {
namespace {

// Host memory only: the reference loops read through data pointers.
void check_host(const Backend& be, const char* op, const Tensor& param) {
  MINIDL_CHECK(param.device().is_cpu(), op, ": backend ", be.name(), " has no kernel for device ",
               param.device().str());
}

template <typename T>
T* ptr_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <typename T>
T sgn(T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
}

}  // namespace

void check_optim_operand(const std::string& who, const char* what, const Tensor& param, const Tensor& t) {
  MINIDL_CHECK(t.defined(), who, ": ", what, " is undefined");
  MINIDL_CHECK(t.sizes() == param.sizes(), who, ": ", what, " shape ", shape_str(t.sizes()),
               " differs from parameter shape ", shape_str(param.sizes()));
  MINIDL_CHECK(t.dtype() == param.dtype(), who, ": ", what, " dtype ", dtype_name(t.dtype()),
               " differs from parameter dtype ", dtype_name(param.dtype()));
  MINIDL_CHECK(t.device() == param.device(), who, ": ", what, " lives on ", t.device().str(), ", the parameter on ",
               param.device().str());
  MINIDL_CHECK(t.is_contiguous(), who, ": ", what, " must be contiguous");
}

void check_sgd_update(const std::string& who, const Tensor& param, const Tensor& momentum_buf, const Tensor& grad,
                      const SgdUpdateParams& p) {
  check_optim_operand(who, "parameter", param, param);
  check_optim_operand(who, "gradient", param, grad);
  MINIDL_CHECK(momentum_buf.defined() == (p.momentum != 0.0), who,
               ": the momentum buffer must be given exactly when momentum is non-zero");
  if (momentum_buf.defined()) check_optim_operand(who, "momentum buffer", param, momentum_buf);
}

void check_adam_update(const std::string& who, const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                       const Tensor& max_exp_avg_sq, const Tensor& grad, const AdamUpdateParams& p) {
  check_optim_operand(who, "parameter", param, param);
  check_optim_operand(who, "gradient", param, grad);
  check_optim_operand(who, "exp_avg", param, exp_avg);
  check_optim_operand(who, "exp_avg_sq", param, exp_avg_sq);
  MINIDL_CHECK(max_exp_avg_sq.defined() == p.amsgrad, who, ": max_exp_avg_sq must be given exactly with amsgrad");
  if (max_exp_avg_sq.defined()) check_optim_operand(who, "max_exp_avg_sq", param, max_exp_avg_sq);
}

void check_hysteresis_update(const std::string& who, const Tensor& param, const Tensor& latent, const Tensor& sign,
                             const Tensor& momentum_buf, const Tensor& grad, const HysteresisUpdateParams& p) {
  check_optim_operand(who, "parameter", param, param);
  check_optim_operand(who, "gradient", param, grad);
  check_optim_operand(who, "latent", param, latent);
  check_optim_operand(who, "sign", param, sign);
  MINIDL_CHECK(momentum_buf.defined() == (p.momentum != 0.0), who,
               ": the momentum buffer must be given exactly when momentum is non-zero");
  if (momentum_buf.defined()) check_optim_operand(who, "momentum buffer", param, momentum_buf);
}

void Backend::sgd_update(Tensor& param, Tensor& momentum_buf, const Tensor& grad, const SgdUpdateParams& p) {
  const char* op = "sgd_update";
  check_sgd_update(name() + " backend: " + op, param, momentum_buf, grad, p);
  check_host(*this, op, param);
  const int64_t n = param.numel();
  dispatch_floating(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* w = param.data<T>();
    const T* gd = grad.data<T>();
    T* b = ptr_or_null<T>(momentum_buf);
    const bool decoupled = p.decoupled_weight_decay, nesterov = p.nesterov, first = p.first_step;
    const double wd = p.weight_decay;
    const T tlr = T(p.lr), tm = T(p.momentum), tdamp = T(1.0 - p.dampening), twd = T(wd), tdecay = T(1.0 - p.lr * wd);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T d = gd[i];
      if (decoupled) {
        w[i] *= tdecay;
      } else if (wd != 0.0) {
        d += twd * w[i];
      }
      if (b) {
        b[i] = first ? d : tm * b[i] + tdamp * d;
        d = nesterov ? d + tm * b[i] : b[i];
      }
      w[i] -= tlr * d;
    }
  });
  param.bump_version();
}

void Backend::adam_update(Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                          const Tensor& grad, const AdamUpdateParams& p) {
  const char* op = "adam_update";
  check_adam_update(name() + " backend: " + op, param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, p);
  check_host(*this, op, param);
  const int64_t n = param.numel();
  dispatch_floating(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* w = param.data<T>();
    const T* gd = grad.data<T>();
    T* md = exp_avg.data<T>();
    T* vd = exp_avg_sq.data<T>();
    T* vm = ptr_or_null<T>(max_exp_avg_sq);
    const double wd = p.weight_decay;
    const T tb1 = T(p.beta1), tb2 = T(p.beta2), ob1 = T(1.0 - p.beta1), ob2 = T(1.0 - p.beta2), twd = T(wd),
            teps = T(p.eps), tstep = T(p.step_size), tisb = T(p.inv_sqrt_bc2), tdecay = T(1.0 - p.lr * wd);
    const bool decoupled = p.decoupled_weight_decay;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T gi = gd[i];
      if (decoupled) {
        w[i] *= tdecay;
      } else if (wd != 0.0) {
        gi += twd * w[i];
      }
      md[i] = tb1 * md[i] + ob1 * gi;
      vd[i] = tb2 * vd[i] + ob2 * gi * gi;
      T second = vd[i];
      if (vm) {
        vm[i] = std::max(vm[i], vd[i]);
        second = vm[i];
      }
      w[i] -= tstep * md[i] / (std::sqrt(second) * tisb + teps);
    }
  });
  param.bump_version();
}

int64_t Backend::hysteresis_update(Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                                   const Tensor& grad, const HysteresisUpdateParams& p) {
  const char* op = "hysteresis_update";
  check_hysteresis_update(name() + " backend: " + op, param, latent, sign, momentum_buf, grad, p);
  check_host(*this, op, param);
  const int64_t n = param.numel();
  int64_t flips = 0;
  dispatch_floating(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* w = param.data<T>();
    const T* gd = grad.data<T>();
    T* b = ptr_or_null<T>(momentum_buf);
    T* v = latent.data<T>();
    T* s = sign.data<T>();
    const double wd = p.weight_decay;
    const bool first = p.first_step, nesterov = p.nesterov, one_step = p.one_step;
    const T tlr = T(p.lr), tm = T(p.momentum), tdamp = T(1.0 - p.dampening), twd = T(wd);
    std::vector<T> v_old;
    if (one_step) v_old.assign(v, v + n);
    for (int64_t i = 0; i < n; ++i) {
      T d = gd[i];
      if (wd != 0.0) d += twd * w[i];  // decay on P, as the reference
      if (b) {
        b[i] = first ? d : tm * b[i] + tdamp * d;
        d = nesterov ? d + tm * b[i] : b[i];
      }
      v[i] -= tlr * d;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::abs(static_cast<double>(v[i]));
    const T a = static_cast<T>(n ? sum / static_cast<double>(n) : 0.0), tt = T(p.threshold);
    for (int64_t i = 0; i < n; ++i) {
      if (one_step) {
        const T vo = v_old[static_cast<size_t>(i)], vn = v[i];
        const T before = sgn(w[i]);
        if ((vo > T(0) && vn > T(0)) || (vo < T(0) && vn < T(0))) {
          w[i] = a * sgn(vn);
        } else if (vo < T(0) && vn > T(0) && vn >= tt) {
          w[i] = a;
        } else if (vo > T(0) && vn < T(0) && vn <= -tt) {
          w[i] = -a;
        } else {
          w[i] = a * vn;
        }
        flips += sgn(w[i]) != before;
        s[i] = sgn(w[i]);
      } else {
        const T prev = s[i];
        const T now = v[i] >= tt ? T(1) : (v[i] <= -tt ? T(-1) : prev);
        flips += now != prev;
        s[i] = now;
        w[i] = a * now;
      }
    }
  });
  param.bump_version();
  return flips;
}

}  // namespace minidl
