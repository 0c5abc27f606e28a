// See model.h.
#include "model.h"

#include <minidl.h>
#include <optim/sgd.h>
#include <quant/quant_resnet.h>

#include <sstream>

namespace imagenet_resnet18 {

using namespace minidl;

std::shared_ptr<nn::ResNet> make_model(const Config& c, int64_t num_classes) {
  const int64_t depth = c.arch == "resnet34" ? 34 : 18;
  if (c.bit == 32) {
    nn::ResNetConfig rc = nn::imagenet_config();
    rc.num_classes = num_classes;
    return nn::resnet_by_name(c.arch, rc);
  }
  quant::QuantConfig qc = quant::QuantConfig::apot(c.bit, quant::Semantics::APoT_I);
  qc.num_classes = num_classes;
  qc.in_channels = 3;
  return quant::make_quant_resnet_imagenet(depth, qc);
}

std::unique_ptr<optim::Optimizer> make_optimizer(const nn::Module& model, const Config& c) {
  optim::SGDOptions so;
  so.lr = c.lr;
  so.momentum = c.momentum;
  so.weight_decay = c.wd;
  return std::make_unique<optim::SGD>(model.parameters(), so);
}

std::unique_ptr<optim::LRScheduler> make_scheduler(optim::Optimizer& opt, const Config& c, int64_t steps_per_epoch) {
  if (c.schedule == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(opt, std::max<int64_t>(1, c.epochs * steps_per_epoch));
  std::vector<int64_t> milestones;
  std::stringstream ss(c.schedule);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) milestones.push_back(std::stoll(item) * steps_per_epoch);
  return std::make_unique<optim::MultiStepLR>(opt, milestones, 0.1);
}

}  // namespace imagenet_resnet18
