// Model construction. Float models come straight from nn/models; quantized ones (issue 5) from quant/.
#include "model.h"

#include <minidl.h>

namespace cifar_resnet20 {

using namespace minidl;

std::shared_ptr<nn::Module> make_model(const Config& c, int64_t in_channels, int64_t num_classes) {
  MINIDL_CHECK(c.scheme == "float" || c.bit == 32, "--scheme ", c.scheme,
               ": quantized training is not available in this build of cifar_resnet20 yet");
  nn::ResNetConfig rc;
  rc.in_channels = in_channels;
  rc.num_classes = num_classes;
  rc.shortcut = c.shortcut == "A" ? nn::Shortcut::A : nn::Shortcut::B;
  return nn::resnet_by_name(c.arch, rc);
}

std::vector<optim::ParamGroup> param_groups(const nn::Module& model, const Config& c) {
  optim::ParamGroup weights, alphas;
  for (auto& [name, p] : model.named_parameters()) {
    const bool is_alpha = name.find("alpha") != std::string::npos;
    (is_alpha ? alphas : weights).params.push_back(p);
  }
  weights.options = {{"lr", c.lr}, {"weight_decay", c.wd}};
  std::vector<optim::ParamGroup> groups{weights};
  if (!alphas.params.empty()) {
    alphas.options = {{"lr", c.alpha_lr > 0 ? c.alpha_lr : c.lr}, {"weight_decay", c.alpha_wd >= 0 ? c.alpha_wd : c.wd}};
    groups.push_back(alphas);
  }
  return groups;
}

}  // namespace cifar_resnet20
