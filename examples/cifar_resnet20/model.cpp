// Model and optimizer construction (see model.h).
#include "model.h"

#include <minidl.h>
#include <optim/hysteresis.h>
#include <optim/sgd.h>
#include <quant/actnn/probed_layers.h>
#include <quant/param_groups.h>
#include <quant/quant_resnet.h>

namespace cifar_resnet20 {

using namespace minidl;

namespace {
int64_t depth_of(const std::string& arch) { return std::stoll(arch.substr(std::string("resnet").size())); }
quant::Semantics semantics_of(const Config& c) {
  return c.semantics == "apot-c" ? quant::Semantics::APoT_C : quant::Semantics::APoT_I;
}
}  // namespace

bool is_quantized(const Config& c) { return c.scheme != "float"; }

std::shared_ptr<nn::Module> make_model_for_weights(const Config& c, const TensorMap& weights,
                                                   const Metadata* checkpoint_meta) {
  auto dim_of = [&](const std::string& key, int64_t d, int64_t fallback) {
    auto it = weights.find(key);
    return it == weights.end() ? fallback : it->second.size(d);
  };
  return make_model(c, dim_of("conv1.weight", 1, 3), dim_of("fc.weight", 0, 10), checkpoint_meta);
}

std::shared_ptr<nn::Module> make_model(const Config& c, int64_t in_channels, int64_t num_classes,
                                       const Metadata* checkpoint_meta,
                                       std::shared_ptr<quant::actnn::AdaptiveBits> probes) {
  if (c.arch == "preact_resnet56") {
    // The ActNN seed's network (float weights; ActNN compresses its activations, not its weights).
    MINIDL_CHECK(!is_quantized(c) && !(checkpoint_meta && checkpoint_meta->count("bit")),
                 "--arch preact_resnet56 is a float network: --scheme ", c.scheme, " is not available for it");
    nn::PreActResNetConfig pc;
    pc.in_channels = in_channels;
    pc.num_classes = num_classes;
    if (probes) {
      pc.conv = quant::actnn::probed_conv_factory(probes);
      pc.linear = quant::actnn::probed_linear_factory(probes);
    }
    return nn::preact_resnet56(pc);
  }
  const auto shortcut = c.shortcut == "A" ? nn::Shortcut::A : nn::Shortcut::B;
  if (checkpoint_meta && checkpoint_meta->count("bit")) {
    // A foreign quantized checkpoint: its metadata decides bits and semantics (APoT-C for the APoT release).
    quant::QuantConfig qc = quant::config_from_metadata(*checkpoint_meta);
    qc.in_channels = in_channels;
    qc.num_classes = num_classes;
    qc.shortcut = shortcut;
    return quant::make_quant_resnet_cifar(depth_of(c.arch), qc);
  }
  if (!is_quantized(c)) {
    nn::ResNetConfig rc;
    rc.in_channels = in_channels;
    rc.num_classes = num_classes;
    rc.shortcut = shortcut;
    if (probes) {
      rc.conv = quant::actnn::probed_conv_factory(probes);
      rc.linear = quant::actnn::probed_linear_factory(probes);
    }
    return nn::resnet_by_name(c.arch, rc);
  }
  quant::QuantConfig qc =
      quant::QuantConfig::from_scheme(c.scheme, c.bit, c.act_bit, semantics_of(c), c.use_quantize_weight);
  qc.in_channels = in_channels;
  qc.num_classes = num_classes;
  qc.shortcut = shortcut;
  if (c.float_first_last) qc.edges = quant::EdgeLayers::Float;
  for (size_t s = 0; s < c.stage_act_bits.size(); ++s) {
    if (c.stage_act_bits[s] > 0) qc.set_stage_act_bits(static_cast<int>(s) + 1, c.stage_act_bits[s]);
  }
  return quant::make_quant_resnet_cifar(depth_of(c.arch), qc);
}

std::unique_ptr<optim::Optimizer> make_optimizer(const nn::Module& model, const Config& c) {
  if (c.scheme == "binary" && c.use_quantize_weight) {
    optim::HysteresisOptions ho;
    ho.lr = c.lr;
    ho.momentum = c.momentum;
    ho.weight_decay = c.wd;
    ho.threshold = c.weight_thres > 0 ? c.weight_thres : 0.1;
    return std::make_unique<optim::Hysteresis>(quant::hysteresis_param_groups(model), ho);
  }
  optim::SGDOptions so;
  so.lr = c.lr;
  so.momentum = c.momentum;
  so.weight_decay = c.wd;
  if (!is_quantized(c)) return std::make_unique<optim::SGD>(model.parameters(), so);
  // APoT CIFAR (spec 1.12): act_alpha lr 0.1, wgt_alpha lr 0.02, both wd 1e-4, unless --alpha-lr/--alpha-wd.
  const double alpha_wd = c.alpha_wd >= 0 ? c.alpha_wd : 1e-4;
  const optim::Options act{{"lr", c.alpha_lr > 0 ? c.alpha_lr : 0.1}, {"weight_decay", alpha_wd}};
  const optim::Options wgt{{"lr", c.alpha_lr > 0 ? 0.2 * c.alpha_lr : 0.02}, {"weight_decay", alpha_wd}};
  return std::make_unique<optim::SGD>(quant::alpha_param_groups(model, {}, act, wgt), so);
}

}  // namespace cifar_resnet20
