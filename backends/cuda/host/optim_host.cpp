// cuda-host loops over the optimizer-update kernel bodies (see optim_host.h). mean |V| of the hysteresis step is
// summed in double in index order, as the reference does; the GPU sums it in a fixed tree (cuda_optim.cu).
#include "backends/cuda/host/optim_host.h"

#include <vector>

#include "backends/cuda/kernels/optim_update.h"
#include "backends/optim_checks.h"

namespace minidl::cuda::host {
namespace {

void check_host(const std::string& who, const Tensor& param) {
  MINIDL_CHECK(param.device().is_cpu(), who, ": the parameter lives on ", param.device().str(),
               "; this executor runs on host memory");
}

template <typename T>
T* ptr_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void sgd_update(const std::string& who, Tensor& param, Tensor& momentum_buf, const Tensor& grad,
                const SgdUpdateParams& p) {
  check_sgd_update(who, param, momentum_buf, grad, p);
  check_host(who, param);
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    const auto c = kern::sgd_coef<T>(p);
    T* w = param.data<T>();
    T* b = ptr_or_null<T>(momentum_buf);
    const T* g = grad.data<T>();
    for (int64_t i = 0, n = param.numel(); i < n; ++i) kern::sgd_element(i, w, b, g, c);
  });
  param.bump_version();
}

void adam_update(const std::string& who, Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const Tensor& grad, const AdamUpdateParams& p) {
  check_adam_update(who, param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, p);
  check_host(who, param);
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    const auto c = kern::adam_coef<T>(p);
    T *w = param.data<T>(), *m = exp_avg.data<T>(), *v = exp_avg_sq.data<T>(), *vm = ptr_or_null<T>(max_exp_avg_sq);
    const T* g = grad.data<T>();
    for (int64_t i = 0, n = param.numel(); i < n; ++i) kern::adam_element(i, w, m, v, vm, g, c);
  });
  param.bump_version();
}

int64_t hysteresis_update(const std::string& who, Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                          const Tensor& grad, const HysteresisUpdateParams& p) {
  check_hysteresis_update(who, param, latent, sign, momentum_buf, grad, p);
  check_host(who, param);
  int64_t flips = 0;
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    const auto c = kern::hysteresis_coef<T>(p);
    const int64_t n = param.numel();
    T *w = param.data<T>(), *v = latent.data<T>(), *s = sign.data<T>(), *b = ptr_or_null<T>(momentum_buf);
    const T* g = grad.data<T>();
    std::vector<T> v_old(p.one_step ? static_cast<size_t>(n) : 0);
    T* vo = p.one_step ? v_old.data() : nullptr;
    for (int64_t i = 0; i < n; ++i) kern::hysteresis_sgd_element(i, w, v, b, g, vo, c);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::abs(static_cast<double>(v[i]));
    const T alpha = static_cast<T>(n ? sum / static_cast<double>(n) : 0.0);
    for (int64_t i = 0; i < n; ++i) flips += kern::hysteresis_sign_element(i, w, v, vo, s, alpha, c);
  });
  param.bump_version();
  return flips;
}

}  // namespace minidl::cuda::host
