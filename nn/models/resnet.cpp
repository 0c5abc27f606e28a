// ResNet for CIFAR and ImageNet (see resnet.h). Module names and registration order follow torchvision's
// resnet.py (and the APoT CIFAR code), so state dicts match key for key.
#include "nn/models/resnet.h"

#include <typeinfo>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/modules/activation.h"
#include "nn/modules/conv.h"
#include "nn/modules/linear.h"
#include "nn/modules/pooling.h"

namespace minidl::nn {

ModulePtr default_conv(const ConvSpec& s) {
  return std::make_shared<Conv2d>(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, s.bias);
}

ModulePtr default_linear(const LinearSpec& s) {
  return std::make_shared<Linear>(s.in_features, s.out_features, s.bias);
}

namespace {

ModulePtr make_conv(const ResNetConfig& cfg, const ConvSpec& s) {
  ModulePtr m = cfg.conv ? cfg.conv(s) : default_conv(s);
  MINIDL_CHECK(m != nullptr, "nn::ResNet: the conv factory returned null for '", s.name, "'");
  return m;
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// True when conv -> bn can run as the fused inference op: a plain nn::Conv2d (not a quantized subclass or a
// factory's own module), a batch norm in eval mode with running statistics, and no autograd to record.
bool fusable(const ModulePtr& conv, const BatchNorm2d& bn) {
  if (!conv) return false;
  const Module& c = *conv;  // typeid of a named object: typeid(*conv) trips clang's -Wpotentially-evaluated-expression
  return typeid(c) == typeid(Conv2d) && !bn.is_training() && bn.running_mean.defined() &&
         !autograd::GradMode::is_enabled();
}

Tensor conv_bn_fused(const ModulePtr& conv, const BatchNorm2d& bn, const Tensor& x, const Tensor& residual, bool relu) {
  const auto& c = static_cast<const Conv2d&>(*conv);
  return conv2d_bn_inference(x, c.weight, c.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.options.eps,
                             c.params(), residual, relu);
}

}  // namespace

BasicBlock::BasicBlock(const std::string& prefix, int64_t in_p, int64_t p, int64_t s, const ResNetConfig& cfg)
    : Module("BasicBlock"), stride(s), in_planes(in_p), planes(p), fuse_inference(cfg.fuse_inference) {
  conv1 = register_module("conv1", make_conv(cfg, {join(prefix, "conv1"), in_p, p, 3, s, 1, false}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(p));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv2 = register_module("conv2", make_conv(cfg, {join(prefix, "conv2"), p, p, 3, 1, 1, false}));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(p));
  if (s != 1 || in_p != p) {
    if (cfg.shortcut == Shortcut::B) {
      auto ds = std::make_shared<Sequential>();
      ds->push_back(make_conv(cfg, {join(prefix, "downsample.0"), in_p, p, 1, s, 0, false}));
      ds->push_back(std::make_shared<BatchNorm2d>(p));
      downsample = register_module("downsample", ds);
    } else {
      MINIDL_CHECK(p >= in_p, "nn::BasicBlock: option-A shortcut cannot reduce channels (", in_p, " -> ", p, ")");
      pad_shortcut = true;
    }
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  if (fuse_inference && fusable(conv1, *bn1) && fusable(conv2, *bn2)) {
    // eval: two fused convs, the second adding the shortcut and applying the block's final ReLU
    const Tensor out = conv_bn_fused(conv1, *bn1, x, Tensor(), true);
    const Tensor identity = shortcut(x, true);
    check_shortcut(identity, out);
    return conv_bn_fused(conv2, *bn2, out, identity, true);
  }
  // training (or unfusable): bn1 + ReLU as one op, and the block's tail relu(bn2(conv2(out)) + identity) as one
  // (unless `relu` was replaced by another module, which then runs as itself). One statement per op, each result
  // replacing the last: a temporary of a nested call would live until the end of the whole expression, so
  // conv1's output would still be held while conv2 runs (an activation more at the peak when the tape keeps
  // only a compressed copy of it). The shortcut runs first, so that bn2 follows conv2 in forward as in the
  // unfused block (relu(bn2(conv2(...))) then + shortcut(x) in PyTorch): ActNN's per-layer allocation gives a
  // batch norm the budget of the conv saved just before it, which must be conv2, not the shortcut's conv.
  const Tensor identity = shortcut(x, false);
  Tensor out = (*conv1)(x);
  out = conv2->forward_after_bn_relu(*bn1, std::move(out));  // relu(bn1(out)) into conv2 (one op for a quantized conv2)
  check_shortcut(identity, out);
  const Module* act = relu.get();
  // conv2's output is handed over: under activation compression the tail writes its output over it
  if (act && typeid(*act) == typeid(ReLU)) return bn2->forward_add_relu(std::move(out), identity);
  return (*relu)((*bn2)(out) + identity);
}

void BasicBlock::check_shortcut(const Tensor& identity, const Tensor& out) const {
  MINIDL_CHECK(identity.sizes() == out.sizes(), "nn::BasicBlock ('", path(), "'): shortcut shape ",
               shape_str(identity.sizes()), " does not match the residual branch's ", shape_str(out.sizes()));
}

Tensor BasicBlock::shortcut(const Tensor& x, bool fused) {
  if (downsample) {
    const auto ds = downsample->children();
    const auto* bn = ds.size() == 2 ? dynamic_cast<const BatchNorm2d*>(ds[1].get()) : nullptr;
    if (fused && bn && fusable(ds[0], *bn)) return conv_bn_fused(ds[0], *bn, x, Tensor(), false);
    return (*downsample)(x);
  }
  if (!pad_shortcut) return x;
  return option_a_shortcut(x, stride, planes);
}

Tensor option_a_shortcut(const Tensor& x, int64_t stride, int64_t planes) {
  MINIDL_CHECK(x.dim() == 4 && stride >= 1 && planes >= x.size(1), "nn::option_a_shortcut: expected (N, C, H, W) ",
               "with C <= planes and stride >= 1, got ", shape_str(x.sizes()), ", planes ", planes, ", stride ",
               stride);
  Tensor sub = x;
  if (stride != 1) sub = x.slice(2, 0, x.size(2), stride).slice(3, 0, x.size(3), stride);
  const int64_t extra = planes - x.size(1), front = extra / 2, back = extra - front;
  auto opts = TensorOptions{}.dtype(x.dtype()).device(x.device());
  std::vector<Tensor> parts;
  if (front > 0) parts.push_back(zeros({sub.size(0), front, sub.size(2), sub.size(3)}, opts));
  parts.push_back(sub);
  if (back > 0) parts.push_back(zeros({sub.size(0), back, sub.size(2), sub.size(3)}, opts));
  return parts.size() == 1 ? sub : cat(parts, 1);
}

ResNet::ResNet(Kind k, const ResNetConfig& cfg) : Module("ResNet"), kind(k), config(cfg) {
  MINIDL_CHECK(cfg.in_channels > 0 && cfg.num_classes > 0, "nn::ResNet: in_channels (", cfg.in_channels,
               ") and num_classes (", cfg.num_classes, ") must be positive");
  std::vector<int64_t> widths, blocks;
  int64_t stem;
  if (k == Kind::Cifar) {
    MINIDL_CHECK(cfg.depth >= 8 && (cfg.depth - 2) % 6 == 0,
                 "nn::resnet_cifar: depth must be 6n+2 (20, 32, 56, ...), got ", cfg.depth);
    const int64_t n = (cfg.depth - 2) / 6;
    widths = {16, 32, 64};
    blocks = {n, n, n};
    stem = 16;
    conv1 = register_module("conv1", make_conv(cfg, {"conv1", cfg.in_channels, stem, 3, 1, 1, false}));
  } else {
    MINIDL_CHECK(cfg.depth == 18 || cfg.depth == 34, "nn::resnet (ImageNet): depth must be 18 or 34, got ", cfg.depth);
    MINIDL_CHECK(cfg.shortcut == Shortcut::B, "nn::resnet (ImageNet): torchvision's ResNet uses option-B shortcuts");
    widths = {64, 128, 256, 512};
    blocks = cfg.depth == 18 ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
    stem = 64;
    conv1 = register_module("conv1", make_conv(cfg, {"conv1", cfg.in_channels, stem, 7, 2, 3, false}));
  }
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(stem));
  relu = register_module("relu", std::make_shared<ReLU>());
  if (k == Kind::ImageNet) maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));

  int64_t in_planes = stem;
  for (size_t li = 0; li < widths.size(); ++li) {
    const std::string lname = "layer" + std::to_string(li + 1);
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks[li]; ++b) {
      const int64_t s = (b == 0 && li > 0) ? 2 : 1;
      layer->push_back(std::make_shared<BasicBlock>(lname + "." + std::to_string(b), in_planes, widths[li], s, cfg));
      in_planes = widths[li];
    }
    layers.push_back(register_module(lname, layer));
  }
  // Global average pooling: the 8x8 pool of the CIFAR paper for 32x32 inputs, and any other size (28x28) too.
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  LinearSpec fs{"fc", in_planes, cfg.num_classes, true};
  fc = register_module("fc", cfg.linear ? cfg.linear(fs) : default_linear(fs));
  MINIDL_CHECK(fc != nullptr, "nn::ResNet: the linear factory returned null for 'fc'");

  if (cfg.init == ResNetInit::KaimingNormalFanOut) {
    for (auto& [name, m] : named_modules()) {
      if (m->type_name() == "BatchNorm2d" || !m->has_parameter("weight")) continue;
      Tensor w = m->parameter("weight");
      if (w.dim() == 4) init::kaiming_normal_(w, 0.0, init::FanMode::FanOut, "relu");
    }
  }
  if (cfg.zero_init_residual) {
    for (auto& layer : layers)
      for (auto& b : layer->children()) init::zeros_(std::static_pointer_cast<BasicBlock>(b)->bn2->weight);
  }
}

Tensor ResNet::forward(const Tensor& x) { return forward_owned(x); }  // a second handle: the caller keeps x

Tensor ResNet::forward_owned(Tensor x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == config.in_channels, "nn::ResNet: expected input (N, ", config.in_channels,
               ", H, W), got ", shape_str(x.sizes()));
  const bool fused = config.fuse_inference && fusable(conv1, *bn1);
  Tensor y = fused ? conv_bn_fused(conv1, *bn1, x, Tensor(), true) : (*conv1)(x);
  // What backward needs of the input, the stem's conv saved (on the tape, compressed under an ActNN packer).
  // When the caller handed the batch over, this was its last handle: the batch is freed here, not held
  // through the whole forward (0.19 first-stage activations of ResNet-20's peak at ActNN L3).
  x = Tensor();
  if (!fused) y = bn1->forward_relu(y);
  if (maxpool) y = (*maxpool)(y);
  // Block by block rather than through each stage's Sequential: y then holds only the running block's input,
  // where calling the Sequential would keep the stage's input alive until the whole stage returns.
  for (auto& layer : layers)
    for (const auto& block : layer->children()) y = (*block)(y);
  y = (*avgpool)(y).flatten(1);
  return (*fc)(y);
}

std::shared_ptr<ResNet> resnet_cifar(const ResNetConfig& cfg) {
  return std::make_shared<ResNet>(ResNet::Kind::Cifar, cfg);
}

std::shared_ptr<ResNet> resnet20(ResNetConfig cfg) {
  cfg.depth = 20;
  return resnet_cifar(cfg);
}
std::shared_ptr<ResNet> resnet32(ResNetConfig cfg) {
  cfg.depth = 32;
  return resnet_cifar(cfg);
}
std::shared_ptr<ResNet> resnet56(ResNetConfig cfg) {
  cfg.depth = 56;
  return resnet_cifar(cfg);
}
ResNetConfig imagenet_config() {
  ResNetConfig cfg;
  cfg.depth = 18;
  cfg.num_classes = 1000;
  return cfg;
}

std::shared_ptr<ResNet> resnet18(ResNetConfig cfg) {
  cfg.depth = 18;
  return std::make_shared<ResNet>(ResNet::Kind::ImageNet, cfg);
}
std::shared_ptr<ResNet> resnet34(ResNetConfig cfg) {
  cfg.depth = 34;
  return std::make_shared<ResNet>(ResNet::Kind::ImageNet, cfg);
}

std::shared_ptr<ResNet> resnet_by_name(const std::string& name, ResNetConfig cfg) {
  if (name == "resnet20") return resnet20(cfg);
  if (name == "resnet32") return resnet32(cfg);
  if (name == "resnet56") return resnet56(cfg);
  if (name == "resnet18") return resnet18(cfg);
  if (name == "resnet34") return resnet34(cfg);
  MINIDL_FAIL("nn::resnet_by_name: unknown architecture '", name,
              "' (expected resnet20, resnet32, resnet56, resnet18 or resnet34)");
}

}  // namespace minidl::nn
