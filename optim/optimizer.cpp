// Optimizer base (see optimizer.h): group validation, zero_grad, state tensors and the state dict.
#include "optim/optimizer.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace minidl::optim {

double ParamGroup::get(const std::string& key) const {
  auto it = options.find(key);
  MINIDL_CHECK(it != options.end(), "optim: parameter group has no option '", key, "'");
  return it->second;
}

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, Options defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {
  MINIDL_CHECK(!groups.empty(), "optim::", name_, ": no parameter groups given");
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup g) {
  const size_t gi = groups_.size();
  MINIDL_CHECK(!g.params.empty(), "optim::", name_, ": parameter group ", gi, " has no parameters");
  for (const auto& [k, v] : g.options) {
    // initial_lr is added by LR schedulers (as in PyTorch).
    MINIDL_CHECK(defaults_.count(k) || k == "initial_lr", "optim::", name_, ": unknown option '", k,
                 "' in parameter group ", gi);
  }
  for (const auto& [k, v] : defaults_) g.options.emplace(k, v);
  MINIDL_CHECK(g.get("lr") >= 0.0, "optim::", name_, ": invalid learning rate ", g.get("lr"), " in group ", gi);
  std::set<const TensorImpl*> seen;
  for (const auto& grp : groups_)
    for (const auto& p : grp.params) seen.insert(p.impl_ptr().get());
  for (size_t i = 0; i < g.params.size(); ++i) {
    const Tensor& p = g.params[i];
    MINIDL_CHECK(p.defined(), "optim::", name_, ": parameter ", i, " of group ", gi, " is undefined");
    MINIDL_CHECK(is_floating(p.dtype()), "optim::", name_, ": parameter ", i, " of group ", gi,
                 " must be floating, got ", dtype_name(p.dtype()));
    MINIDL_CHECK(p.is_leaf(), "optim::", name_, ": can't optimize a non-leaf tensor (parameter ", i, " of group ", gi,
                 ")");
    MINIDL_CHECK(seen.insert(p.impl_ptr().get()).second, "optim::", name_, ": parameter ", i, " of group ", gi,
                 " appears in more than one place");
  }
  state_.resize(state_.size() + g.params.size());
  groups_.push_back(std::move(g));
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.set_grad(Tensor());
}

const std::map<std::string, Tensor>& Optimizer::state(size_t idx) const {
  MINIDL_CHECK(idx < state_.size(), "optim::", name_, ": parameter index ", idx, " out of range (", state_.size(),
               " parameters)");
  return state_[idx];
}

Tensor Optimizer::state_tensor(size_t idx, const std::string& key, const Tensor& param, bool* created) {
  auto& st = state_.at(idx);
  auto it = st.find(key);
  if (created) *created = it == st.end();
  if (it != st.end()) {
    // State follows its parameter (Module::to after the optimizer was made, or a state dict loaded on the
    // host): moved once, then kept on that device.
    if (it->second.device() != param.device()) it->second = it->second.to(param.device());
    return it->second;
  }
  Tensor t = zeros(param.sizes(), TensorOptions{}.dtype(param.dtype()).device(param.device()));
  st.emplace(key, t);
  return t;
}

TensorMap Optimizer::state_dict() const {
  TensorMap sd;
  for (size_t i = 0; i < state_.size(); ++i)
    for (const auto& [k, t] : state_[i]) sd["state." + std::to_string(i) + "." + k] = t;
  size_t first = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string pre = "param_groups." + std::to_string(g) + ".";
    for (const auto& [k, v] : groups_[g].options) sd[pre + k] = scalar_tensor(v, TensorOptions{}.dtype(DType::f64));
    const size_t n = groups_[g].params.size();
    Tensor idx = empty({static_cast<int64_t>(n)}, TensorOptions{}.dtype(DType::i64));
    for (size_t i = 0; i < n; ++i) idx.data<int64_t>()[i] = static_cast<int64_t>(first + i);
    sd[pre + "params"] = idx;
    first += n;
  }
  return sd;
}

namespace {

// A host copy of t, contiguous, converted to dtype.
Tensor host_copy(const Tensor& t, DType dtype) {
  Tensor h = t.detach();
  if (!h.device().is_cpu()) h = h.to(kCPU);
  if (h.dtype() != dtype) h = h.to(dtype);
  return h.clone();
}

}  // namespace

void Optimizer::load_state_dict(const TensorMap& sd) {
  // Validate the layout first so a failed load leaves the optimizer unchanged.
  std::vector<Options> new_options(groups_.size());
  size_t first = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string pre = "param_groups." + std::to_string(g) + ".";
    auto it = sd.find(pre + "params");
    MINIDL_CHECK(it != sd.end(), "optim::", name_, "::load_state_dict: missing '", pre, "params' (the checkpoint has ",
                 "fewer parameter groups than the optimizer's ", groups_.size(), ")");
    MINIDL_CHECK(it->second.dim() == 1 && it->second.size(0) == static_cast<int64_t>(groups_[g].params.size()),
                 "optim::", name_, "::load_state_dict: group ", g, " has ", groups_[g].params.size(),
                 " parameters, the checkpoint's has ", shape_str(it->second.sizes()));
    Tensor idx = host_copy(it->second, DType::i64);
    for (size_t i = 0; i < groups_[g].params.size(); ++i)
      MINIDL_CHECK(idx.data<int64_t>()[i] == static_cast<int64_t>(first + i), "optim::", name_,
                   "::load_state_dict: parameter order of group ", g, " does not match");
    first += groups_[g].params.size();
    for (const auto& [k, t] : sd) {
      if (k.rfind(pre, 0) != 0 || k == pre + "params") continue;
      const std::string opt = k.substr(pre.size());
      MINIDL_CHECK(t.numel() == 1, "optim::", name_, "::load_state_dict: '", k, "' must hold one value, has shape ",
                   shape_str(t.sizes()));
      new_options[g][opt] = host_copy(t, DType::f64).data<double>()[0];
    }
    for (const auto& [k, v] : defaults_)
      MINIDL_CHECK(new_options[g].count(k), "optim::", name_, "::load_state_dict: missing '", pre, k, "'");
  }
  MINIDL_CHECK(!sd.count("param_groups." + std::to_string(groups_.size()) + ".params"), "optim::", name_,
               "::load_state_dict: the checkpoint has more parameter groups than the optimizer's ", groups_.size());

  std::vector<Tensor> flat;
  for (auto& g : groups_)
    for (auto& p : g.params) flat.push_back(p);
  std::vector<std::map<std::string, Tensor>> new_state(state_.size());
  for (const auto& [k, t] : sd) {
    if (k.rfind("state.", 0) != 0) {
      MINIDL_CHECK(k.rfind("param_groups.", 0) == 0, "optim::", name_, "::load_state_dict: unexpected key '", k, "'");
      continue;
    }
    const size_t dot = k.find('.', 6);
    MINIDL_CHECK(dot != std::string::npos, "optim::", name_, "::load_state_dict: malformed key '", k, "'");
    size_t i = 0;
    try {
      i = std::stoul(k.substr(6, dot - 6));
    } catch (const std::exception&) {
      MINIDL_FAIL("optim::", name_, "::load_state_dict: malformed key '", k, "'");
    }
    MINIDL_CHECK(i < flat.size(), "optim::", name_, "::load_state_dict: '", k, "' refers to parameter ", i,
                 " but the optimizer has ", flat.size());
    const std::string name = k.substr(dot + 1);
    if (name == "step") {  // Adam's step count: a float64 scalar whatever the parameter's shape
      new_state[i][name] = host_copy(t, DType::f64);
    } else {
      MINIDL_CHECK(t.sizes() == flat[i].sizes(), "optim::", name_, "::load_state_dict: '", k, "' has shape ",
                   shape_str(t.sizes()), " but parameter ", i, " has shape ", shape_str(flat[i].sizes()));
      new_state[i][name] = host_copy(t, flat[i].dtype());
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].options = new_options[g];
  state_ = std::move(new_state);
}

}  // namespace minidl::optim
