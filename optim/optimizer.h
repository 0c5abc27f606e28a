// Optimizer base: parameter groups, each with its own hyper-parameters (lr, weight_decay, momentum, ...; the
// quant schemes train clipping parameters with other settings than weights), per-parameter state tensors, and a
// checkpointable state dict. Updates run as plain tensor code, outside autograd (optim/ never includes it).
//
// State-dict layout (one flat TensorMap, so it goes into the same safetensors file as the model):
//   "state.<i>.<name>"          per-parameter state, i = parameter index over all groups in order
//                               (e.g. "state.3.momentum_buffer", "state.3.exp_avg": the parameter's shape and
//                               dtype; "state.3.step": a float64 scalar)
//   "param_groups.<g>.<option>" 0-dim float64 hyper-parameters (lr, momentum, ...)
//   "param_groups.<g>.params"   int64 indices of the group's parameters
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tensor/safetensors.h"
#include "tensor/tensor.h"

namespace minidl::optim {

using Options = std::map<std::string, double>;

struct ParamGroup {
  std::vector<Tensor> params;
  /// Hyper-parameters by name. Keys left out take the optimizer's defaults; an unknown key is an error.
  Options options;

  double get(const std::string& key) const;
  double lr() const { return get("lr"); }
  void set_lr(double lr) { options["lr"] = lr; }
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient (parameters without one are skipped, like PyTorch).
  virtual void step() = 0;
  /// Drops every parameter's gradient (set_to_none, PyTorch's default).
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  void add_param_group(ParamGroup g);
  const std::string& name() const { return name_; }
  const Options& defaults() const { return defaults_; }

  /// Per-parameter state by parameter index (over all groups in order).
  const std::map<std::string, Tensor>& state(size_t param_index) const;

  TensorMap state_dict() const;
  /// Restores hyper-parameters and state saved by state_dict() of an optimizer over the same parameter layout
  /// (same group count and sizes, same shapes); anything else throws naming the key.
  void load_state_dict(const TensorMap& sd);

 protected:
  Optimizer(std::string name, std::vector<ParamGroup> groups, Options defaults);

  /// Calls fn(group, param, index) for every parameter with a gradient.
  template <typename F>
  void for_each_param_with_grad(F&& fn) {
    size_t idx = 0;
    for (auto& g : groups_)
      for (auto& p : g.params) {
        if (p.grad().defined()) fn(g, p, idx);
        ++idx;
      }
  }
  /// The state tensor `key` of parameter `idx`, created as zeros on the host (param's dtype and shape) when
  /// absent; `created` tells whether it was just made.
  Tensor state_tensor(size_t idx, const std::string& key, const Tensor& param, bool* created = nullptr);
  std::map<std::string, Tensor>& mutable_state(size_t idx) { return state_.at(idx); }

 private:
  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, Tensor>> state_;  // one per parameter, host tensors
};

}  // namespace minidl::optim
