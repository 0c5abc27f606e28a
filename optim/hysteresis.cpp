// The hysteresis optimizer (see hysteresis.h). Steps run on the parameter's backend (Backend::hysteresis_update
// for binary parameters, sgd_update for float ones); the one-time binarisation at construction runs on the host.
#include "optim/hysteresis.h"

#include <cmath>

#include "optim/device_update.h"

namespace minidl::optim {

Options HysteresisOptions::to_map() const {
  return {{"lr", lr},
          {"momentum", momentum},
          {"dampening", dampening},
          {"weight_decay", weight_decay},
          {"nesterov", nesterov ? 1.0 : 0.0},
          {"threshold", threshold},
          {"binary", binary ? 1.0 : 0.0},
          {"mode", static_cast<double>(mode)}};
}

namespace {
constexpr const char* kOp = "optim::Hysteresis";

// alpha = mean |V| of one tensor.
template <typename T>
T mean_abs(const T* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::abs(static_cast<double>(v[i]));
  return static_cast<T>(n ? s / static_cast<double>(n) : 0.0);
}
}  // namespace

Hysteresis::Hysteresis(std::vector<ParamGroup> groups, const HysteresisOptions& d)
    : Optimizer("Hysteresis", std::move(groups), d.to_map()) {
  size_t idx = 0;
  for (auto& g : param_groups()) {
    MINIDL_CHECK(g.get("momentum") >= 0.0 && g.get("weight_decay") >= 0.0, kOp, ": invalid momentum ",
                 g.get("momentum"), " or weight_decay ", g.get("weight_decay"));
    MINIDL_CHECK(g.get("threshold") >= 0.0, kOp, ": threshold must be >= 0, got ", g.get("threshold"));
    MINIDL_CHECK(g.get("mode") == 0.0 || g.get("mode") == 1.0, kOp, ": mode must be 0 (classical) or 1 (one-step)");
    MINIDL_CHECK(g.get("nesterov") == 0.0 || (g.get("momentum") > 0.0 && g.get("dampening") == 0.0), kOp,
                 ": Nesterov momentum requires a momentum and zero dampening");
    for (auto& p : g.params) {
      if (g.get("binary") != 0.0) {
        // Latent copy = the current values; sign = their sign (0 -> +1); P = mean|V| * sign. Formed once on the
        // host, then placed on the parameter's device with its state.
        Tensor v_h = p.detach().to(kCPU).contiguous().clone();
        Tensor s_h = empty(v_h.sizes(), TensorOptions{}.dtype(v_h.dtype())),
               w_h = empty(v_h.sizes(), TensorOptions{}.dtype(v_h.dtype()));
        const int64_t n = p.numel();
        dispatch_floating(p.dtype(), kOp, [&](auto tag) {
          using T = decltype(tag);
          const T* vv = v_h.data<T>();
          T* ss = s_h.data<T>();
          T* w = w_h.data<T>();
          const T a = mean_abs(vv, n);
          for (int64_t i = 0; i < n; ++i) {
            ss[i] = vv[i] < T(0) ? T(-1) : T(1);
            w[i] = a * ss[i];
          }
        });
        state_tensor(idx, "latent", p).copy_(v_h.to(p.device()));
        state_tensor(idx, "sign", p).copy_(s_h.to(p.device()));
        p.detach().copy_(w_h.to(p.device()));
      }
      ++idx;
    }
  }
}

Tensor Hysteresis::latent(size_t index) const {
  const auto& st = state(index);
  auto it = st.find("latent");
  MINIDL_CHECK(it != st.end(), kOp, ": parameter ", index, " is not binary (it has no latent copy)");
  return it->second;
}

void Hysteresis::step() {
  flips_ = 0;
  binary_elems_ = 0;
  for_each_param_with_grad([&](ParamGroup& group, Tensor& p, size_t idx) {
    const double momentum = group.get("momentum");
    const bool binary = group.get("binary") != 0.0;
    const Tensor g = detail::device_grad(p, kOp);
    Tensor buf;
    bool first = false;
    if (momentum != 0.0) buf = state_tensor(idx, "momentum_buffer", p, &first);
    if (!binary) {  // a float group is SGD on P itself (L2 decay, momentum, Nesterov)
      SgdUpdateParams u;
      u.lr = group.get("lr");
      u.momentum = momentum;
      u.dampening = group.get("dampening");
      u.weight_decay = group.get("weight_decay");
      u.nesterov = group.get("nesterov") != 0.0;
      u.first_step = first;
      detail::update_contiguous(p, [&](Tensor& w) { backend_for(w).sgd_update(w, buf, g, u); });
      return;
    }
    auto& st = mutable_state(idx);
    MINIDL_CHECK(st.count("latent") && st.count("sign"), kOp, ": binary parameter ", idx,
                 " has no latent state (load a state dict of a Hysteresis optimizer)");
    Tensor latent_t = state_tensor(idx, "latent", p), sign_t = state_tensor(idx, "sign", p);
    HysteresisUpdateParams u;
    u.lr = group.get("lr");
    u.momentum = momentum;
    u.dampening = group.get("dampening");
    u.weight_decay = group.get("weight_decay");
    u.threshold = group.get("threshold");
    u.nesterov = group.get("nesterov") != 0.0;
    u.one_step = group.get("mode") == 1.0;
    u.first_step = first;
    flips_ += detail::update_contiguous(
        p, [&](Tensor& w) { return backend_for(w).hysteresis_update(w, latent_t, sign_t, buf, g, u); });
    binary_elems_ += p.numel();
  });
}

}  // namespace minidl::optim
