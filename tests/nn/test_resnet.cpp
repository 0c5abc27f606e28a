// ResNets: parameter counts (by formula and the known 269,722 / 11,689,512), the names and shapes of the APoT
// ResNet-20 checkpoint and of torchvision's ResNet-18, the per-layer factory hook, option-A/B shortcuts,
// 28x28 single-channel inputs, BasicBlock gradients by finite differences, the training block (its fused
// bn2 + add + ReLU tail) against the separate ops, and the released float checkpoint reproducing its reference
// predictions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "nn/nn.h"
#include "ref_backend_guard.h"
#include "tensor/generator.h"
#include "tensor/safetensors.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::nn;

namespace {

// Parameters of a CIFAR ResNet-(6n+2), counted layer by layer from the paper's architecture.
int64_t cifar_param_count(int64_t n, int64_t in_ch, int64_t classes, bool option_b) {
  int64_t total = in_ch * 16 * 9 + 2 * 16;  // conv1 + bn1
  int64_t prev = 16;
  for (int64_t w : {16, 32, 64}) {
    total += prev * w * 9 + w * w * 9 + 4 * w;  // first block: two convs, two BNs
    if (option_b && prev != w) total += prev * w + 2 * w;
    total += (n - 1) * (2 * w * w * 9 + 4 * w);
    prev = w;
  }
  return total + 64 * classes + classes;
}

const std::string kApot = std::string(MINIDL_SHARED_DIR) + "/data/apot/";

}  // namespace

TEST_CASE("ResNet-20/32/56 parameter counts") {
  CHECK(cifar_param_count(3, 3, 10, false) == 269722);
  ResNetConfig a;
  a.shortcut = Shortcut::A;
  CHECK(resnet20(a)->num_parameters() == 269722);
  CHECK(resnet20()->num_parameters() == cifar_param_count(3, 3, 10, true));
  CHECK(resnet20()->num_parameters() == 272474);
  a.init = ResNetInit::PyTorchDefault;  // counting only: skip the second initialisation pass
  CHECK(resnet32(a)->num_parameters() == cifar_param_count(5, 3, 10, false));
  ResNetConfig b;
  b.init = ResNetInit::PyTorchDefault;
  CHECK(resnet56(b)->num_parameters() == cifar_param_count(9, 3, 10, true));
  ResNetConfig fm;
  fm.shortcut = Shortcut::A;
  fm.in_channels = 1;
  fm.num_classes = 100;
  CHECK(resnet20(fm)->num_parameters() == cifar_param_count(3, 1, 100, false));
  ResNetConfig bad;
  bad.depth = 21;
  CHECK_THROWS_WITH_AS(resnet_cifar(bad), doctest::Contains("6n+2"), Error);
  CHECK_THROWS_WITH_AS(resnet_by_name("resnet7"), doctest::Contains("unknown architecture 'resnet7'"), Error);
}

TEST_CASE("ResNet-20 option B has the APoT checkpoint's names and shapes") {
  const std::string path = kApot + "apot_res20_32bit.safetensors";
  if (!std::filesystem::exists(path)) {
    MINIDL_SKIP(path << " not found");
  }
  SafetensorsFile f = load_safetensors(path);
  auto net = resnet20();
  TensorMap sd = net->state_dict();
  std::set<std::string> ours, theirs;
  for (auto& [k, t] : sd) ours.insert(k);
  for (auto& [k, t] : f.tensors)
    if (k.find("alpha") == std::string::npos) theirs.insert(k);  // quant-only keys
  CHECK(ours == theirs);
  for (auto& k : theirs) {
    INFO(k);
    CHECK(sd.at(k).sizes() == f.tensors.at(k).sizes());
    CHECK(sd.at(k).dtype() == f.tensors.at(k).dtype());
  }
}

TEST_CASE("the released float ResNet-20 reproduces its reference predictions") {
  const std::string ck = kApot + "apot_res20_32bit.safetensors", ref = kApot + "apot_res20_32bit_reference.safetensors";
  if (!std::filesystem::exists(ck) || !std::filesystem::exists(ref)) {
    MINIDL_SKIP("APoT checkpoint not found at " << ck);
  }
  auto net = resnet20();
  net->load_state_dict(load_safetensors(ck).tensors);
  net->eval();
  SafetensorsFile r = load_safetensors(ref);
  NoGradGuard no_grad;
  Tensor logits = (*net)(r.tensors.at("input"));
  REQUIRE(logits.sizes() == Shape{16, 10});
  // The APoT code runs conv1 and fc with 8-bit weights even in this float model, so the logits agree closely
  // but not exactly.
  auto got = logits.to_vector<float>(), want = r.tensors.at("logits").to_vector<float>();
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(got[i] - want[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::abs(want[i])));
  }
  MESSAGE("max |logit difference| ", max_diff, " (largest |logit| ", max_abs, ")");
  // The predicted classes agree, except where the reference itself is a near tie that a perturbation of
  // max_diff in each logit can flip.
  int same = 0;
  for (int n = 0; n < 16; ++n) {
    auto argmax = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + n * 10, v.begin() + n * 10 + 10) - (v.begin() + n * 10);
    };
    const auto a = argmax(got), b = argmax(want);
    same += a == b;
    if (a != b) {
      INFO("image ", n, ": reference margin ", want[n * 10 + b] - want[n * 10 + a]);
      CHECK(want[n * 10 + b] - want[n * 10 + a] <= 2 * max_diff);
    }
  }
  MESSAGE(same, " of 16 predictions identical");
  CHECK(same >= 14);
  CHECK(max_diff < 0.05 * max_abs);
}

TEST_CASE("the conv and linear factories see every layer's dotted name") {
  std::vector<std::string> convs;
  std::vector<std::string> linears;
  ResNetConfig cfg;
  cfg.conv = [&](const ConvSpec& s) {
    convs.push_back(s.name + ":" + std::to_string(s.in_channels) + "-" + std::to_string(s.out_channels) + "/" +
                    std::to_string(s.kernel) + "s" + std::to_string(s.stride));
    return default_conv(s);
  };
  cfg.linear = [&](const LinearSpec& s) {
    linears.push_back(s.name);
    return default_linear(s);
  };
  auto net = resnet20(cfg);
  REQUIRE(convs.size() == 1 + 18 + 2);
  CHECK(convs[0] == "conv1:3-16/3s1");
  CHECK(convs[1] == "layer1.0.conv1:16-16/3s1");
  CHECK(std::find(convs.begin(), convs.end(), "layer2.0.conv1:16-32/3s2") != convs.end());
  CHECK(std::find(convs.begin(), convs.end(), "layer2.0.downsample.0:16-32/1s2") != convs.end());
  CHECK(std::find(convs.begin(), convs.end(), "layer3.2.conv2:64-64/3s1") != convs.end());
  CHECK(linears == std::vector<std::string>{"fc"});
  // The module a factory returns is what the model runs and names.
  CHECK(net->child("layer2")->child("0")->child("downsample")->child("0")->path() == "layer2.0.downsample.0");
}

TEST_CASE("option A and option B forward on 1x28x28 inputs, option A has no downsample") {
  for (Shortcut sc : {Shortcut::A, Shortcut::B}) {
    ResNetConfig cfg;
    cfg.in_channels = 1;
    cfg.shortcut = sc;
    auto net = resnet20(cfg);
    Tensor x = randn({2, 1, 28, 28});
    Tensor y = (*net)(x);
    CHECK(y.sizes() == Shape{2, 10});
    bool has_ds = false;
    for (auto& [k, t] : net->named_parameters()) has_ds |= k.find("downsample") != std::string::npos;
    CHECK(has_ds == (sc == Shortcut::B));
    y.sum().backward();
    for (auto& [k, t] : net->named_parameters()) {
      INFO(k);
      CHECK(t.grad().defined());
    }
  }
}

TEST_CASE("option-A shortcut: subsampled input with zero channels on both sides") {
  ResNetConfig cfg;
  cfg.shortcut = Shortcut::A;
  RefBackendGuard ref;  // float64 runs on the reference backend
  BasicBlock blk("layer2.0", 2, 4, 2, cfg);
  blk.to(DType::f64);
  // Zero the residual branch (bn2 weight and bias 0): the block computes relu(shortcut(x)).
  init::zeros_(blk.bn2->weight);
  init::zeros_(blk.bn2->bias);
  std::vector<double> v(2 * 4 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i) - 10.0;
  Tensor x = from_vector(v, {1, 2, 4, 4}, TensorOptions{}.dtype(DType::f64));
  auto y = blk(x).to_vector<double>();
  REQUIRE(y.size() == 4 * 2 * 2);
  // channel 0 and 3 are padding; channels 1, 2 are x[:, 0/1, ::2, ::2] through relu
  for (int i = 0; i < 4; ++i) {
    CHECK(y[i] == 0.0);
    CHECK(y[12 + i] == 0.0);
  }
  const int hw[4] = {0, 2, 8, 10};
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 4; ++i) CHECK(y[(c + 1) * 4 + i] == std::max(0.0, v[c * 16 + hw[i]]));
}

TEST_CASE("ResNet-18/34 with torchvision's state-dict names") {
  auto r18 = resnet18();
  CHECK(r18->num_parameters() == 11689512);
  TensorMap sd = r18->state_dict();
  CHECK(sd.size() == 122);
  CHECK(sd.at("conv1.weight").sizes() == Shape{64, 3, 7, 7});
  CHECK(sd.count("layer1.0.downsample.0.weight") == 0);
  CHECK(sd.at("layer2.0.downsample.0.weight").sizes() == Shape{128, 64, 1, 1});
  CHECK(sd.at("layer4.1.bn2.running_var").sizes() == Shape{512});
  CHECK(sd.at("layer3.0.downsample.1.num_batches_tracked").dtype() == DType::i64);
  CHECK(sd.at("fc.weight").sizes() == Shape{1000, 512});
  ResNetConfig fast = imagenet_config();
  fast.init = ResNetInit::PyTorchDefault;  // counting only: skip the second initialisation pass
  CHECK(resnet34(fast)->num_parameters() == 21797672);
  r18->eval();
  NoGradGuard no_grad;
  CHECK((*r18)(randn({1, 3, 32, 32})).sizes() == Shape{1, 1000});
  ResNetConfig a = imagenet_config();
  a.shortcut = Shortcut::A;
  CHECK_THROWS_AS(resnet18(a), Error);
}

TEST_CASE("BasicBlock gradients match finite differences (option A and option B, BN in training mode)") {
  for (Shortcut sc : {Shortcut::A, Shortcut::B}) {
    INFO("option ", sc == Shortcut::A ? "A" : "B");
    manual_seed(5);
    ResNetConfig cfg;
    cfg.shortcut = sc;
    auto blk = std::make_shared<BasicBlock>("layer2.0", 2, 4, 2, cfg);
    blk->to(DType::f64);
    Tensor x = randn({2, 2, 4, 4}, TensorOptions{}.dtype(DType::f64)).set_requires_grad(true);
    CHECK(autograd::gradcheck([&](const std::vector<Tensor>& in) { return (*blk)(in[0]); }, {x}));
  }
}

namespace {

// The block's training forward as separate ops (no fusion): relu(bn1(conv1(x))), bn2(conv2(.)), the shortcut
// (identity, option-A subsample and zero channels, or the option-B projection), add, relu.
Tensor unfused_block(BasicBlock& b, const Tensor& x) {
  Tensor out = relu((*b.bn1)((*b.conv1)(x)));
  out = (*b.bn2)((*b.conv2)(out));
  Tensor id = x;
  if (b.downsample) {
    id = (*b.downsample)(x);
  } else if (b.pad_shortcut) {
    Tensor sub = x.slice(2, 0, x.size(2), b.stride).slice(3, 0, x.size(3), b.stride);
    const int64_t extra = b.planes - b.in_planes, front = extra / 2;
    auto opts = TensorOptions{}.dtype(x.dtype());
    Shape pad{sub.size(0), front, sub.size(2), sub.size(3)}, pad2{sub.size(0), extra - front, sub.size(2), sub.size(3)};
    id = cat({zeros(pad, opts), sub, zeros(pad2, opts)}, 1);
  }
  return relu(out + id);
}

// max |a - b| / max(1, max |b|)
double max_scaled_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double m = 0, scale = 1;
  for (size_t i = 0; i < va.size(); ++i) {
    m = std::max(m, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return m / scale;
}

}  // namespace

TEST_CASE("BasicBlock training: the fused bn2 + add + ReLU tail equals the separate ops (output, gradients, stats)") {
  struct Case {
    const char* name;
    Shortcut sc;
    int64_t in_planes, planes, stride, hw;
    bool x_channels_last;
  };
  // on the cpu backend, f32: 4-16 channels get channels-last conv outputs, 96 channels plain NCHW (ResNet-18's
  // layout); the block input plain or channels-last, so the identity comes in either layout
  const Case cases[] = {
      {"identity, x plain", Shortcut::A, 4, 4, 1, 6, false},
      {"identity, x channels-last", Shortcut::A, 4, 4, 1, 6, true},
      {"option A", Shortcut::A, 4, 8, 2, 7, true},
      {"option B", Shortcut::B, 8, 16, 2, 6, true},
      {"option B, 96 channels (NCHW)", Shortcut::B, 48, 96, 2, 4, false},
      {"identity, 96 channels (NCHW)", Shortcut::B, 96, 96, 1, 3, false},
  };
  for (const std::string backend : {"cpu", "ref"}) {
    const auto names = available_backends();
    if (std::find(names.begin(), names.end(), backend) == names.end()) continue;
    const std::string prev = cpu_backend_name();
    set_cpu_backend(backend);
    const DType dt = backend == "ref" ? DType::f64 : DType::f32;
    for (const Case& c : cases) {
      INFO(backend << ": " << c.name);
      manual_seed(11);
      ResNetConfig cfg;
      cfg.shortcut = c.sc;
      auto fused = std::make_shared<BasicBlock>("layer2.0", c.in_planes, c.planes, c.stride, cfg);
      for (auto& [name, m] : fused->named_modules()) {  // affine parameters away from 1 / 0
        auto* bn = dynamic_cast<BatchNorm2d*>(m.get());
        if (!bn) continue;
        bn->weight.detach().copy_(uniform({bn->num_features}, 0.5, 1.5));
        bn->bias.detach().copy_(uniform({bn->num_features}, -0.3, 0.3));
      }
      auto plain = std::make_shared<BasicBlock>("layer2.0", c.in_planes, c.planes, c.stride, cfg);
      plain->load_state_dict(fused->state_dict());
      fused->to(dt);
      plain->to(dt);
      const auto opts = TensorOptions{}.dtype(dt);
      Tensor x0 = randn({3, c.in_planes, c.hw, c.hw}, opts);
      if (c.x_channels_last) {
        Tensor cl = empty(x0.sizes(), opts, MemoryFormat::ChannelsLast);
        cl.copy_(x0);
        x0 = cl;
      }
      const Tensor xa = x0.detach().set_requires_grad(true), xb = x0.clone().detach().set_requires_grad(true);
      const Tensor ya = (*fused)(xa), yb = unfused_block(*plain, xb);
      REQUIRE(ya.grad_fn());
      CHECK(ya.grad_fn()->name() == "batch_norm_add_relu");
      CHECK(max_scaled_diff(ya, yb) < 1e-5);
      Tensor w = randn(ya.sizes(), opts);  // a non-uniform upstream gradient
      (ya * w).sum().backward();
      (yb * w).sum().backward();
      CHECK(max_scaled_diff(xa.grad(), xb.grad()) < 1e-5);
      const auto pa = fused->named_parameters(), pb = plain->named_parameters();
      REQUIRE(pa.size() == pb.size());
      for (size_t i = 0; i < pa.size(); ++i) {
        INFO(pa[i].first);
        CHECK(max_scaled_diff(pa[i].second.grad(), pb[i].second.grad()) < 1e-5);
      }
      const TensorMap sa = fused->state_dict(), sb = plain->state_dict();
      for (const auto& [k, t] : sa) {
        INFO(k);
        if (k.find("running") != std::string::npos) CHECK(max_scaled_diff(t, sb.at(k)) < 1e-5);
      }
    }
    set_cpu_backend(prev);
  }
}

TEST_CASE("a ResNet handed its input (model(std::move(x))) frees it after the stem, with the same results") {
  // The stem's conv saves what backward needs of the input; a batch the caller handed over is then released
  // instead of being held through the whole forward (ActNN's tape keeps only a compressed copy of it).
  ResNetConfig cfg;
  cfg.in_channels = 1;
  manual_seed(3);
  auto a = resnet20(cfg);
  manual_seed(3);
  auto b = resnet20(cfg);
  const Tensor x = randn({4, 1, 28, 28});
  {
    NoGradGuard no_grad;  // nothing saved: the handed-over batch must be gone when forward returns
    Tensor handed = x.clone();
    const std::weak_ptr<Storage> probe = handed.storage();
    const Tensor y = (*b)(std::move(handed));
    CHECK_FALSE(handed.defined());
    CHECK(probe.expired());
    Tensor kept = x.clone();
    const std::weak_ptr<Storage> kept_probe = kept.storage();
    (*b)(kept);  // an lvalue: the caller's tensor is left alone
    CHECK_FALSE(kept_probe.expired());
  }
  const Tensor ya = (*a)(x);
  const Tensor yb = (*b)(x.clone());
  CHECK(ya.to_vector<float>() == yb.to_vector<float>());
  ya.sum().backward();
  yb.sum().backward();
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(pa[i].second.grad().to_vector<float>() == pb[i].second.grad().to_vector<float>());
  }
}
