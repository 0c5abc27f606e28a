// SGD (see sgd.h). The update runs on the parameter's backend (Backend::sgd_update), state on its device.
#include "optim/sgd.h"

#include "optim/device_update.h"

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
    SgdUpdateParams u;
    u.lr = group.get("lr");
    u.momentum = group.get("momentum");
    u.dampening = group.get("dampening");
    u.weight_decay = group.get("weight_decay");
    u.nesterov = group.get("nesterov") != 0.0;
    u.decoupled_weight_decay = group.get("decoupled_weight_decay") != 0.0;
    const Tensor g = detail::device_grad(p, "optim::SGD");
    Tensor buf;
    if (u.momentum != 0.0) buf = state_tensor(idx, "momentum_buffer", p, &u.first_step);
    detail::update_contiguous(p, [&](Tensor& w) { backend_for(w).sgd_update(w, buf, g, u); });
  });
}

}  // namespace minidl::optim
