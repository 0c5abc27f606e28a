// Adam and AdamW (see adam.h). The update runs on the parameter's backend (Backend::adam_update).
#include "optim/adam.h"

#include <cmath>

#include "optim/device_update.h"

namespace minidl::optim {

Options AdamOptions::to_map() const {
  return {{"lr", lr},
          {"beta1", beta1},
          {"beta2", beta2},
          {"eps", eps},
          {"weight_decay", weight_decay},
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
    MINIDL_CHECK(g.get("eps") >= 0.0 && g.get("weight_decay") >= 0.0, "optim::", name, ": invalid eps ", g.get("eps"),
                 " or weight_decay ", g.get("weight_decay"));
  }
}

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& d) : Adam("AdamW", one_group(std::move(params)), d, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& d) : Adam("AdamW", std::move(groups), d, true) {}

void Adam::step() {
  for_each_param_with_grad([&](ParamGroup& group, Tensor& p, size_t idx) {
    AdamUpdateParams u;
    u.lr = group.get("lr");
    u.beta1 = group.get("beta1");
    u.beta2 = group.get("beta2");
    u.eps = group.get("eps");
    u.weight_decay = group.get("weight_decay");
    u.amsgrad = group.get("amsgrad") != 0.0;
    u.decoupled_weight_decay = decoupled_;
    const Tensor g = detail::device_grad(p, decoupled_ ? "optim::AdamW" : "optim::Adam");

    // The step count stays a host scalar: it only feeds the bias corrections, formed here in double.
    auto& st = mutable_state(idx);
    if (!st.count("step")) st["step"] = scalar_tensor(0.0, TensorOptions{}.dtype(DType::f64));
    double& t = st["step"].data<double>()[0];
    t += 1.0;
    Tensor m = state_tensor(idx, "exp_avg", p), v = state_tensor(idx, "exp_avg_sq", p);
    Tensor vmax = u.amsgrad ? state_tensor(idx, "max_exp_avg_sq", p) : Tensor();
    const double bc1 = 1.0 - std::pow(u.beta1, t), bc2 = 1.0 - std::pow(u.beta2, t);
    u.step_size = u.lr / bc1;
    u.inv_sqrt_bc2 = 1.0 / std::sqrt(bc2);
    detail::update_contiguous(p, [&](Tensor& w) { backend_for(w).adam_update(w, m, v, vmax, g, u); });
  });
}

}  // namespace minidl::optim
