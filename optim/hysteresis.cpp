// The hysteresis optimizer (see hysteresis.h). Loops run on host memory (optim/host_update.h).
#include "optim/hysteresis.h"

#include <cmath>

#include "optim/host_update.h"

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

template <typename T>
T sgn(T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
}

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
        // Latent copy = the current values; sign = their sign (0 -> +1); P = mean|V| * sign.
        Tensor v = state_tensor(idx, "latent", p);
        Tensor s = state_tensor(idx, "sign", p);
        Tensor host = p.detach().to(kCPU).contiguous();
        const int64_t n = p.numel();
        detail::update_on_host(p, [&](auto* w) {
          using T = std::remove_pointer_t<decltype(w)>;
          const T* src = host.data<T>();
          T* vv = v.data<T>();
          T* ss = s.data<T>();
          for (int64_t i = 0; i < n; ++i) vv[i] = src[i];
          const T a = mean_abs(vv, n);
          for (int64_t i = 0; i < n; ++i) {
            ss[i] = vv[i] < T(0) ? T(-1) : T(1);
            w[i] = a * ss[i];
          }
        });
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
    const double lr = group.get("lr"), momentum = group.get("momentum"), dampening = group.get("dampening"),
                 wd = group.get("weight_decay"), t = group.get("threshold");
    const bool nesterov = group.get("nesterov") != 0.0, binary = group.get("binary") != 0.0;
    const bool one_step = group.get("mode") == 1.0;
    Tensor g = detail::host_grad(p, kOp);
    Tensor buf;
    bool first = false;
    if (momentum != 0.0) buf = state_tensor(idx, "momentum_buffer", p, &first);
    Tensor latent_t, sign_t;
    if (binary) {
      auto& st = mutable_state(idx);
      MINIDL_CHECK(st.count("latent") && st.count("sign"), kOp, ": binary parameter ", idx,
                   " has no latent state (load a state dict of a Hysteresis optimizer)");
      latent_t = st.at("latent");
      sign_t = st.at("sign");
    }
    const int64_t n = p.numel();
    int64_t flips = 0;
    detail::update_on_host(p, [&](auto* w) {
      using T = std::remove_pointer_t<decltype(w)>;
      const T* gd = g.data<T>();
      T* b = buf.defined() ? buf.data<T>() : nullptr;
      T* v = binary ? latent_t.data<T>() : w;  // float parameters: V is P itself
      const T tlr = T(lr), tm = T(momentum), tdamp = T(1.0 - dampening), twd = T(wd);
      std::vector<T> v_old;
      if (binary && one_step) v_old.assign(v, v + n);
      for (int64_t i = 0; i < n; ++i) {
        T d = gd[i];
        if (wd != 0.0) d += twd * w[i];  // decay on P, as the reference
        if (b) {
          b[i] = first ? d : tm * b[i] + tdamp * d;
          d = nesterov ? d + tm * b[i] : b[i];
        }
        v[i] -= tlr * d;
      }
      if (!binary) return;
      const T a = mean_abs(v, n), tt = T(t);
      T* s = sign_t.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        if (one_step) {
          const T vo = v_old[i], vn = v[i];
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
    if (binary) {
      flips_ += flips;
      binary_elems_ += n;
    }
  });
}

}  // namespace minidl::optim
