// Parameter groups for the quantization recipes (see param_groups.h).
#include "quant/param_groups.h"

#include <set>

#include "quant/quant_layers.h"

namespace minidl::quant {

namespace {
bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
}  // namespace

std::vector<optim::ParamGroup> alpha_param_groups(const nn::Module& model, const optim::Options& rest,
                                                  const optim::Options& act, const optim::Options& wgt) {
  optim::ParamGroup r, a, w;
  r.options = rest;
  a.options = act;
  w.options = wgt;
  for (const auto& [name, p] : model.named_parameters()) {
    if (ends_with(name, "act_alpha")) a.params.push_back(p);
    else if (ends_with(name, "wgt_alpha")) w.params.push_back(p);
    else r.params.push_back(p);
  }
  std::vector<optim::ParamGroup> out;
  for (auto* g : {&r, &a, &w})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

std::vector<optim::ParamGroup> hysteresis_param_groups(const nn::Module& model) {
  std::set<const TensorImpl*> binary;
  for (const auto& [name, m] : model.named_modules()) {
    if (auto c = std::dynamic_pointer_cast<QuantConv2d>(m)) {
      if (c->spec.weight_quantized() && c->spec.weight == WeightQuant::Binary) binary.insert(c->weight.impl_ptr().get());
    } else if (auto l = std::dynamic_pointer_cast<QuantLinear>(m)) {
      if (l->spec.weight_quantized() && l->spec.weight == WeightQuant::Binary) binary.insert(l->weight.impl_ptr().get());
    }
  }
  optim::ParamGroup b, f;
  b.options["binary"] = 1.0;
  f.options["binary"] = 0.0;
  for (const auto& p : model.parameters()) (binary.count(p.impl_ptr().get()) ? b : f).params.push_back(p);
  std::vector<optim::ParamGroup> out;
  for (auto* g : {&b, &f})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

}  // namespace minidl::quant
