// Pre-activation ResNet-56, the ActNN seed's network: its parameter count (855,578, the paper's 0.85M), the
// names and shapes of the seed's definition (ActNN's preact_resnet.py, listed here from that file), the
// factories' view of every layer, and a block's forward against the composed ops it is defined by.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/nn.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::nn;

namespace {

// Parameters of a pre-activation CIFAR ResNet-(6n+2) counted from the seed's definition: conv1 (no bias); per
// block bn1 over its input width, two 3x3 convs, bn2; a bias-free 1x1 downsample where the width changes; the
// final bn and the fc (with bias).
int64_t preact_param_count(int64_t n, int64_t in_ch, int64_t classes) {
  int64_t total = in_ch * 16 * 9;
  int64_t prev = 16;
  for (int64_t w : {16, 32, 64}) {
    for (int64_t b = 0; b < n; ++b) {
      const int64_t in = b == 0 ? prev : w;
      total += 2 * in + in * w * 9 + 2 * w + w * w * 9;
      if (in != w) total += in * w;
    }
    prev = w;
  }
  return total + 2 * 64 + 64 * classes + classes;
}

}  // namespace

TEST_CASE("pre-activation ResNet-56 has the seed's 855,578 parameters") {
  CHECK(preact_param_count(9, 3, 10) == 855578);
  CHECK(preact_resnet56()->num_parameters() == 855578);
  PreActResNetConfig c100;
  c100.num_classes = 100;
  CHECK(preact_resnet56(c100)->num_parameters() == preact_param_count(9, 3, 100));
  PreActResNetConfig r20;
  r20.depth = 20;
  r20.in_channels = 1;
  CHECK(PreActResNet(r20).num_parameters() == preact_param_count(3, 1, 10));
  PreActResNetConfig bad;
  bad.depth = 51;
  CHECK_THROWS_WITH_AS(PreActResNet{bad}, doctest::Contains("6n+2"), Error);
}

TEST_CASE("pre-activation ResNet-56 has the seed's names and shapes") {
  auto net = preact_resnet56();
  TensorMap sd = net->state_dict();
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"conv1.weight", {16, 3, 3, 3}},
      {"layer1.0.bn1.weight", {16}},
      {"layer1.0.bn1.running_var", {16}},
      {"layer1.0.conv1.weight", {16, 16, 3, 3}},
      {"layer1.0.bn2.bias", {16}},
      {"layer1.8.conv2.weight", {16, 16, 3, 3}},
      {"layer2.0.bn1.weight", {16}},  // pre-activation: the block's first BN sees the input width
      {"layer2.0.conv1.weight", {32, 16, 3, 3}},
      {"layer2.0.downsample.0.weight", {32, 16, 1, 1}},
      {"layer3.0.downsample.0.weight", {64, 32, 1, 1}},
      {"layer3.8.conv2.weight", {64, 64, 3, 3}},
      {"bn.weight", {64}},
      {"bn.running_mean", {64}},
      {"fc.weight", {10, 64}},
      {"fc.bias", {10}},
  };
  for (const auto& [k, shape] : expected) {
    INFO(k);
    REQUIRE(sd.count(k) == 1);
    CHECK(sd.at(k).sizes() == shape);
  }
  // The shortcut is a bare conv (no BN), only where the shape changes; convs carry no bias; no stem BN.
  CHECK(sd.count("layer1.0.downsample.0.weight") == 0);
  CHECK(sd.count("layer2.0.downsample.1.weight") == 0);
  CHECK(sd.count("layer2.1.downsample.0.weight") == 0);
  CHECK(sd.count("conv1.bias") == 0);
  CHECK(sd.count("bn1.weight") == 0);
  int64_t convs = 0, bns = 0;
  for (const auto& [k, t] : sd) {
    if (k.ends_with(".weight") && t.dim() == 4) ++convs;
    if (k.ends_with(".running_mean")) ++bns;
  }
  CHECK(convs == 1 + 54 + 2);
  CHECK(bns == 54 + 1);
}

TEST_CASE("the pre-activation ResNet's factories see every layer's dotted name") {
  std::vector<std::string> convs, linears;
  PreActResNetConfig cfg;
  cfg.conv = [&](const ConvSpec& s) {
    convs.push_back(s.name + ":" + std::to_string(s.in_channels) + "-" + std::to_string(s.out_channels) + "/" +
                    std::to_string(s.kernel) + "s" + std::to_string(s.stride));
    return default_conv(s);
  };
  cfg.linear = [&](const LinearSpec& s) {
    linears.push_back(s.name);
    return default_linear(s);
  };
  preact_resnet56(cfg);
  REQUIRE(convs.size() == 57);
  CHECK(convs.front() == "conv1:3-16/3s1");
  auto has = [&](const std::string& c) { return std::find(convs.begin(), convs.end(), c) != convs.end(); };
  CHECK(has("layer2.0.conv1:16-32/3s2"));
  CHECK(has("layer2.0.downsample.0:16-32/1s2"));
  CHECK(has("layer3.8.conv2:64-64/3s1"));
  CHECK(linears == std::vector<std::string>{"fc"});
}

TEST_CASE("a pre-activation block is bn1-relu-conv1-bn2-relu-conv2 plus a shortcut taken after the first relu") {
  manual_seed(3);
  autograd::NoGradGuard ng;
  PreActResNetConfig cfg;
  PreActBlock block("layer2.0", 16, 32, 2, cfg);
  // Non-trivial BN state so that a swapped order of ops would show.
  init::uniform_(block.bn1->weight, 0.5, 1.5);
  init::uniform_(block.bn1->bias, -0.5, 0.5);
  init::uniform_(block.bn2->weight, 0.5, 1.5);
  init::uniform_(block.bn2->bias, -0.5, 0.5);
  block.eval();
  Tensor x = randn({2, 16, 8, 8});
  ReLU relu;
  const Tensor pre = relu((*block.bn1)(x));
  const Tensor expect = (*block.conv2)(relu((*block.bn2)((*block.conv1)(pre)))) + (*block.downsample)(pre);
  const Tensor got = block(x);
  REQUIRE(got.sizes() == Shape{2, 32, 4, 4});
  const auto g = got.to_vector<float>(), e = expect.to_vector<float>();
  float worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - e[i]));
  CHECK(worst < 1e-5f);
  // The whole network: logits of the right shape, and on 1x28x28 Fashion-MNIST inputs too.
  auto net = preact_resnet56();
  net->eval();
  CHECK((*net)(randn({2, 3, 32, 32})).sizes() == Shape{2, 10});
  PreActResNetConfig fm;
  fm.in_channels = 1;
  CHECK((*preact_resnet56(fm))(randn({2, 1, 28, 28})).sizes() == Shape{2, 10});
}
