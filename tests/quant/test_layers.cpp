// QuantConv2d / QuantLinear, the quantized ResNet builder, show_params, parameter groups and progressive
// initialisation (a 5-bit checkpoint into a 4-bit model, a float checkpoint into a quantized one).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "quant/checkpoint.h"
#include "quant/param_groups.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "tensor/safetensors.h"

using namespace minidl;
using namespace minidl::quant;

namespace {
nn::ConvSpec conv_geom(int64_t in, int64_t out, int64_t k = 3, int64_t stride = 1, int64_t pad = 1) {
  nn::ConvSpec s;
  s.name = "test";
  s.in_channels = in;
  s.out_channels = out;
  s.kernel = k;
  s.stride = stride;
  s.padding = pad;
  return s;
}
double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
  return d;
}
std::vector<std::string> keys(const nn::Module& m) {
  std::vector<std::string> k;
  for (const auto& [name, p] : m.named_parameters()) k.push_back(name);
  return k;
}
}  // namespace

TEST_CASE("QuantConv2d = conv2d of the quantized input and the quantized standardised weight") {
  for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
    QuantConv2d conv(conv_geom(4, 6), QuantSpec::same(Scheme::APoT, 4, sem));
    CHECK(keys(conv) == std::vector<std::string>{"weight", "act_alpha", "weight_quant.wgt_alpha"});
    CHECK(conv.act_alpha.item<double>() == (sem == Semantics::APoT_C ? 8.0 : 6.0));
    CHECK(conv.weight_quant->wgt_alpha.item<double>() == 3.0);
    conv.act_alpha.detach().fill_(2.0);
    Tensor x = uniform({2, 4, 5, 5}, -0.5, 3.0);
    autograd::NoGradGuard ng;
    const Tensor wq = quantize_weight(weight_standardize(conv.weight, true), conv.weight_quant->wgt_alpha,
                                      LevelSet::make(Scheme::APoT, 4, true), sem);
    const Tensor xq = quantize_activation(x, conv.act_alpha, LevelSet::make(Scheme::APoT, 4, false), sem);
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    CHECK(max_abs_diff(conv(x), conv2d(xq, wq, Tensor(), p)) == 0.0);
  }
}

TEST_CASE("full precision, first/last 8-bit, binary and PACT layers") {
  QuantConv2d f(conv_geom(3, 4), QuantSpec::full_precision());
  CHECK(keys(f) == std::vector<std::string>{"weight"});
  Tensor x = randn({1, 3, 4, 4});
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  autograd::NoGradGuard ng;
  CHECK(max_abs_diff(f(x), conv2d(x, f.weight, Tensor(), p)) == 0.0);

  QuantConv2d e(conv_geom(3, 4), QuantSpec::first_last_int8());
  CHECK(keys(e) == std::vector<std::string>{"weight"});
  CHECK(max_abs_diff(e(x), conv2d(x, signed_max_int8(e.weight, true), Tensor(), p)) == 0.0);

  QuantSpec bin;
  bin.weight = WeightQuant::Binary;
  bin.weight_bits = 1;
  bin.act = ActQuant::PACT;
  bin.act_bits = 2;
  QuantConv2d b(conv_geom(3, 4), bin);
  CHECK(keys(b) == std::vector<std::string>{"weight", "act_alpha"});
  CHECK(b.act_alpha.item<double>() == 3.0);  // PACT init 2^b - 1
  CHECK(max_abs_diff(b.quantized_weight(), binarize(b.weight)) == 0.0);
  bin.binary_from_optimizer = true;
  QuantConv2d b2(conv_geom(3, 4), bin);
  CHECK(max_abs_diff(b2.quantized_weight(), b2.weight) == 0.0);

  nn::LinearSpec ls;
  ls.name = "fc";
  ls.in_features = 8;
  ls.out_features = 3;
  QuantLinear fc(ls, QuantSpec::first_last_int8(Semantics::APoT_C));
  Tensor h = randn({2, 8});
  CHECK(max_abs_diff(fc(h), linear(h, signed_max_int8(fc.weight, false), fc.bias)) == 0.0);
}

TEST_CASE("bad specs give one-line errors") {
  CHECK_THROWS_WITH_AS(QuantSpec::same(Scheme::APoT, 1), "APoT: bit width 1 is not supported (valid: 2..6 for weights)",
                       Error);
  CHECK_THROWS_WITH_AS(QuantSpec::same(Scheme::Uniform, 9), doctest::Contains("bit width 9"), Error);
  QuantSpec s = QuantSpec::same(Scheme::APoT, 4);
  s.act_bits = 7;
  CHECK_THROWS_WITH_AS(QuantConv2d(conv_geom(3, 4), s), doctest::Contains("APoT: bit width 7"), Error);
  CHECK_THROWS_WITH_AS(parse_semantics("APoT-X"), doctest::Contains("unknown APoT semantics"), Error);
}

TEST_CASE("quantized ResNet builder: defaults, per-layer overrides, float edges") {
  QuantConfig cfg = QuantConfig::apot(4);
  QuantSpec a2 = QuantSpec::same(Scheme::APoT, 4);
  a2.act_bits = 2;
  cfg.per_layer["layer1"] = a2;  // every conv of stage 1: w4a2 (seed 004's --quantized-layer1 2)
  auto m = make_quant_resnet_cifar(20, cfg);
  const auto lines = describe_layers(*m);
  REQUIRE(lines.size() == 22);  // 18 block convs + 2 shortcuts + first conv + fc
  CHECK(lines.front() == "conv1: w8a32 (int8/float, APoT-I)");
  CHECK(lines[1] == "layer1.0.conv1: w4a2 (apot/apot, APoT-I)");
  CHECK(lines[7] == "layer2.0.conv1: w4a4 (apot/apot, APoT-I)");
  CHECK(lines.back() == "fc: w8a32 (int8/float, APoT-I)");
  cfg.edges = EdgeLayers::Float;
  CHECK(cfg.spec_for("fc").str() == "w32a32 (float)");
  CHECK(cfg.spec_for("layer10.0.conv1").act_bits == 4);  // "layer1" is a prefix by dotted component only
  std::ostringstream os;
  const auto rows = show_params(*m, os);
  CHECK(rows.size() == 20);  // the 20 lines of the APoT programs
  std::istringstream is(os.str());
  std::string first;
  std::getline(is, first);
  CHECK(first == "weight alpha: 3.000000, act alpha: 6.000000");
}

TEST_CASE("a training step of a W4/A4 ResNet-20 gives gradients to weights and both alphas") {
  auto m = make_quant_resnet_cifar(20, QuantConfig::apot(4));
  Tensor x = randn({4, 3, 16, 16});
  Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 3}, {4}, TensorOptions().dtype(DType::i64));
  Tensor loss = cross_entropy((*m)(x), y);
  CHECK(std::isfinite(loss.item<double>()));
  loss.backward();
  auto c = std::dynamic_pointer_cast<QuantConv2d>(m->layers[0]->children()[0]->child("conv1"));
  REQUIRE(c != nullptr);
  CHECK(c->weight.grad().defined());
  CHECK(c->act_alpha.grad().defined());
  CHECK(c->weight_quant->wgt_alpha.grad().defined());
  const auto groups = alpha_param_groups(*m, {}, {{"lr", 0.1}, {"weight_decay", 1e-4}}, {{"lr", 0.02}});
  REQUIRE(groups.size() == 3);
  CHECK(groups[1].params.size() == 20);
  CHECK(groups[2].params.size() == 20);
}

TEST_CASE("hysteresis groups pick the binary weights") {
  QuantConfig cfg;
  cfg.edges = EdgeLayers::Float;
  cfg.body.weight = WeightQuant::Binary;
  cfg.body.weight_bits = 1;
  cfg.body.act = ActQuant::IntGrid;
  cfg.body.act_bits = 2;
  cfg.body.binary_from_optimizer = true;
  auto m = make_quant_resnet_cifar(20, cfg);
  const auto g = hysteresis_param_groups(*m);
  REQUIRE(g.size() == 2);
  CHECK(g[0].params.size() == 20);  // 18 block 3x3 convs + 2 shortcut 1x1 convs
  CHECK(g[0].options.at("binary") == 1.0);
}

TEST_CASE("progressive init: a 5-bit checkpoint loads into a 4-bit model, a float one keeps alpha inits") {
  auto m5 = make_quant_resnet_cifar(20, QuantConfig::apot(5));
  // Make the 5-bit model's state distinctive: alphas 1.25 / 2.5, and save it as a checkpoint file.
  for (auto& [name, p] : m5->named_parameters()) {
    if (name.size() > 9 && name.substr(name.size() - 9) == "act_alpha") p.detach().fill_(2.5);
    if (name.size() > 9 && name.substr(name.size() - 9) == "wgt_alpha") p.detach().fill_(1.25);
  }
  const std::string path = "/tmp/minidl_test_quant_progressive_5bit.safetensors";
  save_safetensors(path, m5->state_dict(), {{"bit", "5"}});
  const SafetensorsFile ck = load_safetensors(path);
  std::remove(path.c_str());

  auto m4 = make_quant_resnet_cifar(20, QuantConfig::apot(4));
  const nn::LoadResult r = load_progressive(*m4, ck.tensors);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  const TensorMap s4 = m4->state_dict(), s5 = m5->state_dict();
  CHECK(max_abs_diff(s4.at("layer2.1.conv1.weight"), s5.at("layer2.1.conv1.weight")) == 0.0);
  CHECK(max_abs_diff(s4.at("layer3.0.downsample.1.running_var"), s5.at("layer3.0.downsample.1.running_var")) == 0.0);
  CHECK(s4.at("layer1.0.conv1.act_alpha").item<double>() == 2.5);
  CHECK(s4.at("layer1.0.conv1.weight_quant.wgt_alpha").item<double>() == 1.25);

  // Float checkpoint (no alpha keys) into the 4-bit model: weights copied, alphas at their initial values.
  auto f = make_quant_resnet_cifar(20, QuantConfig::apot(32));
  auto q = make_quant_resnet_cifar(20, QuantConfig::apot(4));
  const nn::LoadResult r2 = load_progressive(*q, f->state_dict());
  CHECK(r2.missing_keys.size() == 40);
  CHECK(q->state_dict().at("layer1.0.conv1.act_alpha").item<double>() == 6.0);
  CHECK(max_abs_diff(q->state_dict().at("conv1.weight"), f->state_dict().at("conv1.weight")) == 0.0);
  // And a quantized checkpoint into a float model: the alphas are extra, nothing else is.
  const nn::LoadResult r3 = load_progressive(*f, q->state_dict());
  CHECK(r3.unexpected_keys.size() == 40);
}

TEST_CASE("configs from the seeds' command-line vocabulary") {
  const QuantConfig a = QuantConfig::from_scheme("apot", 3, 3);
  CHECK(a.body.str() == "w3a3 (apot/apot, APoT-I)");
  CHECK(QuantConfig::from_scheme("uniform", 4, 4, Semantics::APoT_C).body.str() == "w4a4 (uniform/uniform, APoT-C)");
  QuantConfig b = QuantConfig::from_scheme("binary", 1, 2, Semantics::APoT_I, true);
  CHECK(b.body.str() == "w1a2 (binary/pact)");
  CHECK(b.body.binary_from_optimizer);
  CHECK(b.spec_for("conv1").str() == "w32a32 (float)");
  b.set_stage_act_bits(3, 4);
  CHECK(b.spec_for("layer3.2.conv2").act_bits == 4);
  CHECK(b.spec_for("layer2.2.conv2").act_bits == 2);
  CHECK_THROWS_WITH_AS(QuantConfig::from_scheme("apot", 1, 1), "APoT: bit width 1 is not supported (valid: 2..6 for weights)",
                       Error);
  CHECK_THROWS_WITH_AS(QuantConfig::from_scheme("uniform", 9, 9), doctest::Contains("Uniform: bit width 9"), Error);
  CHECK_THROWS_WITH_AS(QuantConfig::from_scheme("lloyd", 4, 4), "quant: unknown scheme 'lloyd' (valid: apot, pot, uniform, pact, binary)",
                       Error);
  CHECK(QuantConfig::from_scheme("apot", 32, 32).body.str() == "w32a32 (float)");
}

TEST_CASE("quantized ImageNet ResNet-18: 19 quantized convs between the 8-bit first conv and fc") {
  QuantConfig cfg = QuantConfig::apot(5);
  cfg.num_classes = 1000;
  auto m = make_quant_resnet_imagenet(18, cfg);
  const auto lines = describe_layers(*m);
  REQUIRE(lines.size() == 21);
  CHECK(lines.front() == "conv1: w8a32 (int8/float, APoT-I)");
  CHECK(lines[1] == "layer1.0.conv1: w5a5 (apot/apot, APoT-I)");
  CHECK(layer_alphas(*m).size() == 19);
  CHECK_THROWS_WITH_AS(make_quant_resnet_imagenet(50, cfg), doctest::Contains("depth 50 is not supported"), Error);
}
