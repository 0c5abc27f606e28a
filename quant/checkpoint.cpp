// show_params, progressive initialisation and strict checkpoint loading (see checkpoint.h).
#include "quant/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>

#include "quant/quant_layers.h"

namespace minidl::quant {

std::vector<LayerAlphas> layer_alphas(const nn::Module& model) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<LayerAlphas> out;
  auto add = [&](const std::string& name, const Tensor& wa, const Tensor& aa) {
    if (!wa.defined() && !aa.defined()) return;
    out.push_back({name, wa.defined() ? wa.item<double>() : nan, aa.defined() ? aa.item<double>() : nan});
  };
  for (const auto& [name, m] : model.named_modules()) {
    if (auto c = std::dynamic_pointer_cast<QuantConv2d>(m)) add(name, c->weight_quant->wgt_alpha, c->act_alpha);
    else if (auto l = std::dynamic_pointer_cast<QuantLinear>(m)) add(name, l->weight_quant->wgt_alpha, l->act_alpha);
  }
  return out;
}

std::vector<LayerAlphas> show_params(const nn::Module& model, std::ostream& os) {
  auto rows = layer_alphas(model);
  auto fmt = [](double v) {
    if (std::isnan(v)) return std::string("-");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return std::string(buf);
  };
  for (const auto& r : rows) os << "weight alpha: " << fmt(r.weight_alpha) << ", act alpha: " << fmt(r.act_alpha) << "\n";
  return rows;
}

bool is_quantizer_key(const std::string& key) {
  for (const char* suffix : {"act_alpha", "wgt_alpha", "weight_alpha"}) {
    const std::string s(suffix);
    if (key == s || (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0 &&
                     key[key.size() - s.size() - 1] == '.'))
      return true;
  }
  return false;
}

namespace {
std::string list_keys(const std::vector<std::string>& keys) {
  std::ostringstream os;
  os << keys.size() << " [";
  for (size_t i = 0; i < keys.size() && i < 5; ++i) os << (i ? ", " : "") << keys[i];
  if (keys.size() > 5) os << ", ...";
  os << "]";
  return os.str();
}

// Keys of the model missing from the checkpoint and keys of the checkpoint the model lacks.
nn::LoadResult compare_keys(const nn::Module& model, const TensorMap& ckpt) {
  nn::LoadResult r;
  const TensorMap sd = model.state_dict();
  for (const auto& [k, v] : sd)
    if (!ckpt.count(k)) r.missing_keys.push_back(k);
  for (const auto& [k, v] : ckpt)
    if (!sd.count(k)) r.unexpected_keys.push_back(k);
  return r;
}

void check_shapes(const nn::Module& model, const TensorMap& ckpt, const char* op) {
  for (const auto& [k, v] : model.state_dict()) {
    auto it = ckpt.find(k);
    if (it == ckpt.end()) continue;
    MINIDL_CHECK(it->second.numel() == v.numel() && (it->second.sizes() == v.sizes() || v.numel() == 1), op,
                 ": '", k, "' has shape ", shape_str(it->second.sizes()), " in the checkpoint but ",
                 shape_str(v.sizes()), " in the model (a checkpoint of another architecture?)");
  }
}
}  // namespace

nn::LoadResult load_progressive(nn::Module& model, const TensorMap& checkpoint) {
  nn::LoadResult r = compare_keys(model, checkpoint);
  std::vector<std::string> bad_missing, bad_unexpected;
  for (const auto& k : r.missing_keys)
    if (!is_quantizer_key(k)) bad_missing.push_back(k);
  for (const auto& k : r.unexpected_keys)
    if (!is_quantizer_key(k)) bad_unexpected.push_back(k);
  MINIDL_CHECK(bad_missing.empty() && bad_unexpected.empty(),
               "quant::load_progressive: the checkpoint does not match this model (another architecture?): "
               "missing keys ",
               list_keys(bad_missing), ", unexpected keys ", list_keys(bad_unexpected));
  check_shapes(model, checkpoint, "quant::load_progressive");
  TensorMap present;
  for (const auto& [k, v] : checkpoint)
    if (!is_quantizer_key(k) || std::find(r.unexpected_keys.begin(), r.unexpected_keys.end(), k) == r.unexpected_keys.end())
      present.emplace(k, v);
  model.load_state_dict(present, false);
  return r;
}

void load_checkpoint(nn::Module& model, const TensorMap& checkpoint) {
  const nn::LoadResult r = compare_keys(model, checkpoint);
  MINIDL_CHECK(r.missing_keys.empty() && r.unexpected_keys.empty(),
               "quant::load_checkpoint: the checkpoint does not match this model (another architecture or "
               "precision?): missing keys ",
               list_keys(r.missing_keys), ", unexpected keys ", list_keys(r.unexpected_keys));
  check_shapes(model, checkpoint, "quant::load_checkpoint");
  model.load_state_dict(checkpoint, true);
}

}  // namespace minidl::quant
