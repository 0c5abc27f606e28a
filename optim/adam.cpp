// Adam and AdamW (see adam.h). Loops run on host memory (optim/host_update.h) with OpenMP.
#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "optim/host_update.h"

namespace minidl::optim {

Options AdamOptions::to_map() const {
  return {{"lr", lr},     {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay},
          {"amsgrad", amsgrad ? 1.0 : 0.0}};
}

namespace {
std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
  std::vector<ParamGroup> g(1);
  g[0].params = std::move(params);
  return g;
}
}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& d) : Adam("Adam", one_group(std::move(params)), d, false) {}
Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& d) : Adam("Adam", std::move(groups), d, false) {}

Adam::Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& d, bool decoupled)
    : Optimizer(name, std::move(groups), d.to_map()), decoupled_(decoupled) {
  for (const auto& g : param_groups()) {
    MINIDL_CHECK(g.get("beta1") >= 0.0 && g.get("beta1") < 1.0 && g.get("beta2") >= 0.0 && g.get("beta2") < 1.0,
                 "optim::", name, ": betas must be in [0, 1), got (", g.get("beta1"), ", ", g.get("beta2"), ")");
    MINIDL_CHECK(g.get("eps") >= 0.0 && g.get("weight_decay") >= 0.0, "optim::", name, ": invalid eps ",
                 g.get("eps"), " or weight_decay ", g.get("weight_decay"));
  }
}

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& d) : Adam("AdamW", one_group(std::move(params)), d, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& d) : Adam("AdamW", std::move(groups), d, true) {}

void Adam::step() {
  for_each_param_with_grad([&](ParamGroup& group, Tensor& p, size_t idx) {
    const double lr = group.get("lr"), b1 = group.get("beta1"), b2 = group.get("beta2"), eps = group.get("eps"),
                 wd = group.get("weight_decay");
    const bool amsgrad = group.get("amsgrad") != 0.0;
    Tensor g = detail::host_grad(p, decoupled_ ? "optim::AdamW" : "optim::Adam");

    auto& st = mutable_state(idx);
    if (!st.count("step")) st["step"] = scalar_tensor(0.0, TensorOptions{}.dtype(DType::f64));
    double& t = st["step"].data<double>()[0];
    t += 1.0;
    Tensor m = state_tensor(idx, "exp_avg", p), v = state_tensor(idx, "exp_avg_sq", p);
    Tensor vmax = amsgrad ? state_tensor(idx, "max_exp_avg_sq", p) : Tensor();

    const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
    const double step_size = lr / bc1, inv_sqrt_bc2 = 1.0 / std::sqrt(bc2);
    const int64_t n = p.numel();
    detail::update_on_host(p, [&](auto* w) {
      using T = std::remove_pointer_t<decltype(w)>;
      const T* gd = g.data<T>();
      T* md = m.data<T>();
      T* vd = v.data<T>();
      T* vm = vmax.defined() ? vmax.data<T>() : nullptr;
      const T tb1 = T(b1), tb2 = T(b2), ob1 = T(1.0 - b1), ob2 = T(1.0 - b2), twd = T(wd), teps = T(eps),
              tstep = T(step_size), tisb = T(inv_sqrt_bc2), tdecay = T(1.0 - lr * wd);
      const bool decoupled = decoupled_;
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
  });
}

}  // namespace minidl::optim
