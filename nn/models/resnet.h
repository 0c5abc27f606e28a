// ResNets: ResNet-20/32/56 for CIFAR (He et al. 2016, 3 stages of n BasicBlocks, widths 16/32/64) and
// ResNet-18/34 for ImageNet, with PyTorch/torchvision state-dict names (conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0, fc, ...), so the APoT CIFAR checkpoints and torchvision weights load by name.
// Every conv and the fc are made by factories in ResNetConfig, so quant/ can build the same network with
// quantized layers (the factory gets the layer's dotted name, e.g. "layer1.0.conv1", to pick its bit widths).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "nn/module.h"
#include "nn/modules/batch_norm.h"
#include "nn/modules/container.h"

namespace minidl::nn {

/// A convolution a model asks for: its dotted name and geometry (square kernel, no dilation, groups 1).
struct ConvSpec {
  std::string name;
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel = 3, stride = 1, padding = 0;
  bool bias = false;
};
/// A fully connected layer a model asks for.
struct LinearSpec {
  std::string name;
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
};
using ConvFactory = std::function<ModulePtr(const ConvSpec&)>;
using LinearFactory = std::function<ModulePtr(const LinearSpec&)>;
/// nn::Conv2d / nn::Linear with PyTorch's default initialisation.
ModulePtr default_conv(const ConvSpec& s);
ModulePtr default_linear(const LinearSpec& s);

/// Shortcut when a block changes shape: A = parameter-free (subsample by the stride, zero-pad channels, as the
/// original CIFAR ResNet); B = projection, 1x1 conv (stride, no bias) + BN named downsample.0 / downsample.1.
enum class Shortcut { A, B };
/// Weight initialisation after construction. KaimingNormalFanOut is torchvision's and the APoT code's
/// (kaiming_normal_(mode=fan_out, relu) on every 4-d conv weight, BN ones/zeros, fc left at PyTorch's default);
/// PyTorchDefault keeps each layer's own default (kaiming_uniform_(a=sqrt(5))).
enum class ResNetInit { KaimingNormalFanOut, PyTorchDefault };

struct ResNetConfig {
  int64_t depth = 20;  // CIFAR: 6n+2 (20, 32, 44, 56, 110); ImageNet: 18 or 34
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  Shortcut shortcut = Shortcut::B;
  ResNetInit init = ResNetInit::KaimingNormalFanOut;
  bool zero_init_residual = false;  // bn2.weight = 0 in every block (torchvision's option)
  ConvFactory conv;                 // empty: default_conv
  LinearFactory linear;             // empty: default_linear
  /// In eval mode under NoGradGuard, run each plain Conv2d + BatchNorm2d (+ residual add) (+ ReLU) as one fused
  /// inference op (conv2d_bn_inference: batch norm folded into the conv). Same results up to float rounding;
  /// false keeps the separate ops (e.g. to compare against them).
  bool fuse_inference = true;
};

/// The option-A shortcut of the CIFAR ResNets: every stride-th pixel of x (N, C, H, W), then zero channels split
/// evenly before and after up to `planes` (planes = 2 C there: planes/4 on each side, as in the original code).
Tensor option_a_shortcut(const Tensor& x, int64_t stride, int64_t planes);

/// conv-bn-relu-conv-bn, plus the shortcut, then relu. Children: conv1, bn1, relu, conv2, bn2, [downsample].
class BasicBlock : public Module {
 public:
  /// `prefix` is the block's dotted name in the model (e.g. "layer2.0"), passed to the conv factory.
  BasicBlock(const std::string& prefix, int64_t in_planes, int64_t planes, int64_t stride, const ResNetConfig& cfg);
  Tensor forward(const Tensor& x) override;

  ModulePtr conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  ModulePtr relu;
  std::shared_ptr<Sequential> downsample;  // option B projection, or null
  bool pad_shortcut = false;               // option A when the shape changes
  int64_t stride, in_planes, planes;
  bool fuse_inference = true;  // ResNetConfig::fuse_inference

 private:
  Tensor shortcut(const Tensor& x, bool fused);
  void check_shortcut(const Tensor& identity, const Tensor& out) const;
};

class ResNet : public Module {
 public:
  enum class Kind { Cifar, ImageNet };
  ResNet(Kind kind, const ResNetConfig& cfg);
  /// (N, in_channels, H, W) -> logits (N, num_classes); any H, W that survives the strides (e.g. 28x28).
  Tensor forward(const Tensor& x) override;
  /// forward() that releases the input batch right after the stem's convolution (`model(std::move(x))`).
  Tensor forward_owned(Tensor x) override;

  Kind kind;
  ResNetConfig config;
  ModulePtr conv1, relu, maxpool, avgpool, fc;
  std::shared_ptr<BatchNorm2d> bn1;
  std::vector<std::shared_ptr<Sequential>> layers;  // layer1..layer3 (CIFAR) or layer1..layer4 (ImageNet)
};

/// CIFAR ResNet of cfg.depth (6n+2).
std::shared_ptr<ResNet> resnet_cifar(const ResNetConfig& cfg);
std::shared_ptr<ResNet> resnet20(ResNetConfig cfg = {});
std::shared_ptr<ResNet> resnet32(ResNetConfig cfg = {});
std::shared_ptr<ResNet> resnet56(ResNetConfig cfg = {});
/// The ImageNet defaults: 3 input channels, 1000 classes, option-B shortcuts.
ResNetConfig imagenet_config();
/// ImageNet ResNet-18/34 (cfg.depth is set; the shortcut must be B).
std::shared_ptr<ResNet> resnet18(ResNetConfig cfg = imagenet_config());
std::shared_ptr<ResNet> resnet34(ResNetConfig cfg = imagenet_config());
/// By name: "resnet20", "resnet32", "resnet56", "resnet18", "resnet34" (cfg.depth is overridden).
std::shared_ptr<ResNet> resnet_by_name(const std::string& name, ResNetConfig cfg = {});

}  // namespace minidl::nn
