// Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep Residual Networks", 2016): the
// network of the ActNN seed (`--arch preact_resnet56`, spec/quant.md 2.9). Each block computes
// bn1 -> relu -> conv1 -> bn2 -> relu -> conv2, plus a shortcut taken *after* the first activation: the input
// itself, or a 1x1 strided conv (no BN) of relu(bn1(x)) where the shape changes. A final bn + relu precedes
// global average pooling and the fc. Layout and names follow ActNN's preact_resnet.py (conv1, layer1.0.bn1,
// layer1.0.conv1, layer2.0.downsample.0, bn, fc), so its state dicts map key for key; ResNet-56 has 855,578
// parameters for 10 classes (the paper's 0.85M).
#pragma once

#include <memory>
#include <string>

#include "nn/models/resnet.h"

namespace minidl::nn {

struct PreActResNetConfig {
  int64_t depth = 56;  // 6n+2: n blocks per stage (20, 56, 110)
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  ConvFactory conv;      // empty: default_conv (ActNN's QConv2d is this slot)
  LinearFactory linear;  // empty: default_linear
};

/// bn1-relu-conv1-bn2-relu-conv2 + shortcut. Children: bn1, relu, conv1, bn2, conv2, [downsample].
class PreActBlock : public Module {
 public:
  PreActBlock(const std::string& prefix, int64_t in_planes, int64_t planes, int64_t stride,
              const PreActResNetConfig& cfg);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> bn1, bn2;
  ModulePtr relu, conv1, conv2;
  std::shared_ptr<Sequential> downsample;  // 1x1 strided conv when the shape changes, else null

 private:
  Tensor bn_relu(BatchNorm2d& bn, const Tensor& x);
};

class PreActResNet : public Module {
 public:
  explicit PreActResNet(const PreActResNetConfig& cfg);
  /// (N, in_channels, H, W) -> logits (N, num_classes).
  Tensor forward(const Tensor& x) override;

  PreActResNetConfig config;
  ModulePtr conv1, relu, avgpool, fc;
  std::shared_ptr<BatchNorm2d> bn;
  std::vector<std::shared_ptr<Sequential>> layers;  // layer1..layer3
};

/// The seed's network: pre-activation ResNet-56 (cfg.depth is set to 56).
std::shared_ptr<PreActResNet> preact_resnet56(PreActResNetConfig cfg = {});

}  // namespace minidl::nn
