// SGD (see sgd.h). The per-element loops run on host memory (optim/host_update.h) with OpenMP.
#include "optim/sgd.h"

#include "optim/host_update.h"

namespace minidl::optim {

Options SGDOptions::to_map() const {
  return {{"lr", lr},
          {"momentum", momentum},
          {"dampening", dampening},
          {"weight_decay", weight_decay},
          {"nesterov", nesterov ? 1.0 : 0.0},
          {"decoupled_weight_decay", decoupled_weight_decay ? 1.0 : 0.0}};
}

namespace {
std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
  std::vector<ParamGroup> g(1);
  g[0].params = std::move(params);
  return g;
}

void check_group(const ParamGroup& g) {
  MINIDL_CHECK(g.get("momentum") >= 0.0, "optim::SGD: invalid momentum ", g.get("momentum"));
  MINIDL_CHECK(g.get("weight_decay") >= 0.0, "optim::SGD: invalid weight_decay ", g.get("weight_decay"));
  MINIDL_CHECK(g.get("nesterov") == 0.0 || (g.get("momentum") > 0.0 && g.get("dampening") == 0.0),
               "optim::SGD: Nesterov momentum requires a momentum and zero dampening");
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& d) : SGD(one_group(std::move(params)), d) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& d) : Optimizer("SGD", std::move(groups), d.to_map()) {
  for (const auto& g : param_groups()) check_group(g);
}

void SGD::step() {
  for_each_param_with_grad([&](ParamGroup& group, Tensor& p, size_t idx) {
    const double lr = group.get("lr"), momentum = group.get("momentum"), dampening = group.get("dampening"),
                 wd = group.get("weight_decay");
    const bool nesterov = group.get("nesterov") != 0.0, decoupled = group.get("decoupled_weight_decay") != 0.0;
    Tensor g = detail::host_grad(p, "optim::SGD");
    Tensor buf;
    bool first = false;
    if (momentum != 0.0) buf = state_tensor(idx, "momentum_buffer", p, &first);
    const int64_t n = p.numel();
    detail::update_on_host(p, [&](auto* w) {
      using T = std::remove_pointer_t<decltype(w)>;
      const T* gd = g.data<T>();
      T* b = buf.defined() ? buf.data<T>() : nullptr;
      const T tlr = T(lr), tm = T(momentum), tdamp = T(1.0 - dampening), twd = T(wd), tdecay = T(1.0 - lr * wd);
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
  });
}

}  // namespace minidl::optim
