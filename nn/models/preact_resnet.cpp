// Pre-activation ResNet (see preact_resnet.h).
#include "nn/models/preact_resnet.h"

#include <typeinfo>

#include "nn/init.h"
#include "nn/modules/activation.h"
#include "nn/modules/pooling.h"

namespace minidl::nn {
namespace {

ModulePtr make_conv(const PreActResNetConfig& cfg, const ConvSpec& s) {
  ModulePtr m = cfg.conv ? cfg.conv(s) : default_conv(s);
  MINIDL_CHECK(m != nullptr, "nn::PreActResNet: the conv factory returned null for '", s.name, "'");
  return m;
}

}  // namespace

PreActBlock::PreActBlock(const std::string& prefix, int64_t in_p, int64_t p, int64_t stride,
                         const PreActResNetConfig& cfg)
    : Module("PreActBlock") {
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in_p));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv1 = register_module("conv1", make_conv(cfg, {prefix + ".conv1", in_p, p, 3, stride, 1, false}));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(p));
  conv2 = register_module("conv2", make_conv(cfg, {prefix + ".conv2", p, p, 3, 1, 1, false}));
  if (stride != 1 || in_p != p) {
    auto ds = std::make_shared<Sequential>();
    ds->push_back(make_conv(cfg, {prefix + ".downsample.0", in_p, p, 1, stride, 0, false}));
    downsample = register_module("downsample", ds);
  }
}

Tensor PreActBlock::bn_relu(BatchNorm2d& bn, const Tensor& x) {
  // One fused op when `relu` is the plain ReLU (as in the post-activation ResNet); a replaced activation
  // module runs as itself.
  const Module* act = relu.get();
  if (act && typeid(*act) == typeid(ReLU)) return bn.forward_relu(x);
  return (*relu)(bn(x));
}

Tensor PreActBlock::forward(const Tensor& x) {
  Tensor pre = bn_relu(*bn1, x);
  const Tensor residual = downsample ? (*downsample)(pre) : x;
  // one op per statement, so that no nested temporary outlives its consumer (see BasicBlock::forward), and pre
  // released once conv1 has read it
  Tensor out = (*conv1)(pre);
  pre = Tensor();
  out = bn_relu(*bn2, out);
  out = (*conv2)(out);
  MINIDL_CHECK(residual.sizes() == out.sizes(), "nn::PreActBlock ('", path(), "'): shortcut shape ",
               shape_str(residual.sizes()), " does not match the residual branch's ", shape_str(out.sizes()));
  return out + residual;
}

PreActResNet::PreActResNet(const PreActResNetConfig& cfg) : Module("PreActResNet"), config(cfg) {
  MINIDL_CHECK(cfg.depth >= 8 && (cfg.depth - 2) % 6 == 0,
               "nn::PreActResNet: depth must be 6n+2 (20, 56, 110, ...), got ", cfg.depth);
  MINIDL_CHECK(cfg.in_channels > 0 && cfg.num_classes > 0, "nn::PreActResNet: in_channels (", cfg.in_channels,
               ") and num_classes (", cfg.num_classes, ") must be positive");
  const int64_t n = (cfg.depth - 2) / 6;
  conv1 = register_module("conv1", make_conv(cfg, {"conv1", cfg.in_channels, 16, 3, 1, 1, false}));
  int64_t in_planes = 16;
  const int64_t widths[] = {16, 32, 64};
  for (int li = 0; li < 3; ++li) {
    const std::string lname = "layer" + std::to_string(li + 1);
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < n; ++b) {
      const int64_t s = (b == 0 && li > 0) ? 2 : 1;
      layer->push_back(std::make_shared<PreActBlock>(lname + "." + std::to_string(b), in_planes, widths[li], s, cfg));
      in_planes = widths[li];
    }
    layers.push_back(register_module(lname, layer));
  }
  bn = register_module("bn", std::make_shared<BatchNorm2d>(in_planes));
  relu = register_module("relu", std::make_shared<ReLU>());
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  LinearSpec fs{"fc", in_planes, cfg.num_classes, true};
  fc = register_module("fc", cfg.linear ? cfg.linear(fs) : default_linear(fs));
  MINIDL_CHECK(fc != nullptr, "nn::PreActResNet: the linear factory returned null for 'fc'");
  // The seed's "-c fanin" / "-c quantize" init: kaiming_normal_(fan_in, relu) on every conv weight; BN ones and
  // zeros (BatchNorm2d's own); the fc keeps PyTorch's default.
  for (auto& [name, m] : named_modules()) {
    if (m->type_name() == "BatchNorm2d" || !m->has_parameter("weight")) continue;
    Tensor w = m->parameter("weight");
    if (w.dim() == 4) init::kaiming_normal_(w, 0.0, init::FanMode::FanIn, "relu");
  }
}

Tensor PreActResNet::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == config.in_channels, "nn::PreActResNet: expected input (N, ",
               config.in_channels, ", H, W), got ", shape_str(x.sizes()));
  Tensor y = (*conv1)(x);
  for (auto& layer : layers)  // block by block: y holds only the running block's input (see ResNet::forward)
    for (const auto& block : layer->children()) y = (*block)(y);
  const Module* act = relu.get();
  y = act && typeid(*act) == typeid(ReLU) ? bn->forward_relu(y) : (*relu)((*bn)(y));
  y = (*avgpool)(y).flatten(1);
  return (*fc)(y);
}

std::shared_ptr<PreActResNet> preact_resnet56(PreActResNetConfig cfg) {
  cfg.depth = 56;
  return std::make_shared<PreActResNet>(cfg);
}

}  // namespace minidl::nn
