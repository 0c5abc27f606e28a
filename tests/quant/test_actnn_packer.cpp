// The ActNN packer (quant/actnn/packer.h) through the tape: forward outputs bit-identical at every level, L0
// gradients bit-identical to no packer, conv / linear input gradients exact at every level (only weight
// gradients carry the rounding noise, unbiased), 1-bit masks and narrowed indices lossless, the byte accounting
// (everything returns to 0 when the graph dies), per-module bits, and the SaveInfo labels the packer relies on.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "actnn_test_step.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/models/resnet.h"
#include "quant/actnn/packer.h"
#include "quant/levels.h"
#include "quant/ops.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::quant::actnn;
using autograd::SaveInfo;
using autograd::SaveKind;

namespace {

const std::vector<Level> kLevels = {Level::L0, Level::L1, Level::L2, Level::L3};

using StepResult = minidl_test::ActnnStepResult;
using minidl_test::resnet_step;

std::shared_ptr<nn::ResNet> small_resnet() {
  manual_seed(7);
  auto m = nn::resnet20();
  m->train();
  return m;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST_CASE("actnn packer: ResNet-20 forward is bit-identical at every level, L0 gradients bit-identical") {
  auto model = small_resnet();
  manual_seed(1);
  const Tensor x = randn({8, 3, 16, 16});
  const Tensor y = from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8}, TensorOptions().dtype(DType::i64));
  const StepResult base = resnet_step(*model, x, y, nullptr);
  for (Level l : kLevels) {
    const std::string lname = level_name(l);
    CAPTURE(lname);
    Packer packer(Config::for_level(l));
    const StepResult r = resnet_step(*model, x, y, &packer);
    CHECK(r.logits == base.logits);
    CHECK(r.loss == base.loss);
    if (l == Level::L0) {
      for (auto& [name, g] : base.grads) CHECK_MESSAGE(r.grads.at(name) == g, name);
    } else {
      // compressed: weight gradients are noisy estimates of the exact ones (close, not equal)
      const double d = rel_diff(r.grads.at("conv1.weight"), base.grads.at("conv1.weight"));
      MESSAGE(lname, ": conv1.weight gradient relative difference ", d);
      CHECK(d > 0);
      CHECK(d < (l == Level::L3 ? 2.0 : 0.5));  // one step of 2-bit noise on an 8-sample batch is large
    }
    // everything the tape held is freed with the graph
    CHECK(packer.live().total() == 0);
    CHECK(packer.live().params == 0);
  }
}

TEST_CASE("actnn packer: saved bytes shrink with the level (ResNet-20, everything counted)") {
  auto model = small_resnet();
  manual_seed(2);
  const Tensor x = randn({16, 3, 32, 32});
  const Tensor y = zeros({16}, TensorOptions().dtype(DType::i64));
  std::map<Level, size_t> total;
  for (Level l : kLevels) {
    const std::string lname = level_name(l);
    Packer packer(Config::for_level(l));
    const StepResult r = resnet_step(*model, x, y, &packer);
    total[l] = r.peak.total();
    MESSAGE(lname, ": codes ", r.peak.codes, " meta ", r.peak.meta, " masks ", r.peak.masks, " indices ",
            r.peak.indices, " exact ", r.peak.exact, " total ", r.peak.total(), " (params ", r.peak.params, ")");
    if (l == Level::L3) MESSAGE(packer.bit_map());
  }
  CHECK(total[Level::L1] < total[Level::L0]);
  CHECK(total[Level::L2] < total[Level::L1]);
  CHECK(total[Level::L3] < total[Level::L2]);
  CHECK(static_cast<double>(total[Level::L0]) / static_cast<double>(total[Level::L3]) > 10.0);
}

TEST_CASE("actnn packer: conv2d and linear input gradients are exact at every level, weight gradients unbiased") {
  manual_seed(4);
  const Tensor x0 = randn({6, 4, 9, 9});
  const Tensor w = randn({5, 4, 3, 3}).set_requires_grad();
  const Tensor gy = randn({6, 5, 9, 9});
  const Tensor xl0 = randn({6, 40});
  const Tensor wl = randn({7, 40}).set_requires_grad();
  const Tensor gyl = randn({6, 7});
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  auto run = [&](Packer* packer, uint64_t) {
    Tensor x = x0.clone().set_requires_grad(), xl = xl0.clone().set_requires_grad();
    w.set_grad({});
    wl.set_grad({});
    std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
    if (packer) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer->hooks());
    Tensor loss = (conv2d(x, w, {}, p) * gy).sum() + (linear(xl, wl) * gyl).sum();
    loss.backward();
    return std::vector<std::vector<float>>{x.grad().to_vector<float>(), xl.grad().to_vector<float>(),
                                           w.grad().to_vector<float>(), wl.grad().to_vector<float>()};
  };
  const auto exact = run(nullptr, 0);
  for (Level l : {Level::L1, Level::L2, Level::L3}) {
    const std::string lname = level_name(l);
    CAPTURE(lname);
    std::vector<double> mean_w(exact[2].size());
    const int seeds = 200;
    double single_sq = 0;  // mean squared relative error of one compressed gradient
    for (int s = 0; s < seeds; ++s) {
      Config cfg = Config::for_level(l);
      cfg.seed = static_cast<uint64_t>(s);
      Packer packer(cfg);
      const auto g = run(&packer, 0);
      CHECK(g[0] == exact[0]);  // conv dX: needs only W and g
      CHECK(g[1] == exact[1]);  // linear dX
      if (s == 0) CHECK(g[2] != exact[2]);
      single_sq += std::pow(rel_diff(g[2], exact[2]), 2) / seeds;
      for (size_t i = 0; i < mean_w.size(); ++i) mean_w[i] += g[2][i] / seeds;
    }
    // unbiased rounding: the average of S independent gradients has 1/S of one gradient's squared error (a bias
    // would stay as a floor); 2x slack for the estimate
    std::vector<float> mean_f(mean_w.begin(), mean_w.end());
    const double d = rel_diff(mean_f, exact[2]);
    MESSAGE(lname, ": one compressed conv weight gradient vs exact: rms relative error ", std::sqrt(single_sq),
            "; mean of ", seeds, ": ", d, " (unbiased: ~", std::sqrt(single_sq / seeds), ")");
    CHECK(d * d < 2 * single_sq / seeds);
  }
}

namespace {
// x0's gradient through max_pool2d(x0, pp) * g, saved through the packer's hooks when one is given
std::vector<float> max_pool_grad(const Tensor& x0, const Tensor& g, const Pool2dParams& pp, Packer* packer) {
  Tensor x = x0.clone().set_requires_grad();
  std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
  if (packer) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer->hooks());
  (max_pool2d(x, pp) * g).sum().backward();
  return x.grad().to_vector<float>();
}
}  // namespace

TEST_CASE("actnn packer B6: ReLU mask as 1 bit, max-pool positions narrowed, dropout mask as 1 bit: lossless") {
  Packer packer(Config::for_level(Level::L3));
  {
    Tensor x = from_vector<float>({-1, 0, 2}, {3}).set_requires_grad();
    Tensor g = from_vector<float>({5, 6, 7}, {3});
    {
      autograd::SavedTensorHooksGuard guard(packer.hooks());
      (relu(x) * g).sum().backward();
    }
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 7});
  }
  {
    manual_seed(9);
    Tensor x0 = randn({2, 3, 8, 8});
    Pool2dParams pp;
    pp.kernel_h = pp.kernel_w = 3;
    pp.stride_h = pp.stride_w = 2;
    pp.pad_h = pp.pad_w = 1;
    Tensor g = randn({2, 3, 4, 4});
    CHECK(max_pool_grad(x0, g, pp, &packer) == max_pool_grad(x0, g, pp, nullptr));
    CHECK(packer.bit_map().find("index") != std::string::npos);
  }
  // positions at the edge of the 8-bit form: a 1 x 256 plane's last index is 255 (u8), a 1 x 257 plane's 256 (i32);
  // a 1 x 1 pool keeps every position, so each index appears
  for (int64_t width : {256, 257}) {
    CAPTURE(width);
    Tensor x0 = randn({2, 2, 1, width});
    Pool2dParams pp;
    pp.kernel_h = pp.kernel_w = 1;
    pp.stride_h = pp.stride_w = 1;
    Tensor g = randn({2, 2, 1, width});
    CHECK(max_pool_grad(x0, g, pp, &packer) == max_pool_grad(x0, g, pp, nullptr));
  }
  {
    Tensor x0 = randn({4, 100});
    auto run = [&](bool with) {
      manual_seed(21);
      Tensor x = x0.clone().set_requires_grad();
      std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
      if (with) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer.hooks());
      (dropout(x, 0.3, true) * x0).sum().backward();
      return x.grad().to_vector<float>();
    };
    CHECK(run(true) == run(false));
  }
  CHECK(packer.live().total() == 0);
}

TEST_CASE("actnn packer: per-module bits by name, printable bit map, bad configs are clear errors") {
  auto model = small_resnet();
  Config cfg = Config::for_level(Level::L3);
  cfg.parse_module_bits("conv1=8,layer1.0.conv2=4");
  Packer packer(cfg);
  const Tensor x = randn({4, 3, 16, 16});
  const Tensor y = zeros({4}, TensorOptions().dtype(DType::i64));
  resnet_step(*model, x, y, &packer);
  const std::string map = packer.bit_map();
  MESSAGE(map);
  auto line_of = [&](const std::string& module, const std::string& op) {
    std::istringstream is(map);
    std::string line;
    while (std::getline(is, line))
      if (line.rfind(module + " ", 0) == 0 && line.find(op) != std::string::npos) return line;
    return std::string();
  };
  CHECK(line_of("conv1", "conv2d").find(" codes ") != std::string::npos);
  CHECK(line_of("conv1", "conv2d").find("     8 ") != std::string::npos);
  CHECK(line_of("layer1.0.conv2", "conv2d").find("     4 ") != std::string::npos);
  CHECK(line_of("layer1.0.conv1", "conv2d").find("     2 ") != std::string::npos);
  CHECK(line_of("layer1.0.bn1", "statistic").find("exact") != std::string::npos);
  CHECK(line_of("layer1.0.bn1", "mask").find("1-bit mask") != std::string::npos);

  Config bad;
  CHECK_THROWS_WITH_AS(bad.parse_module_bits("conv1=9"), doctest::Contains("not in 1..8"), Error);
  CHECK_THROWS_WITH_AS(bad.parse_module_bits("conv1"), doctest::Contains("not name=bits"), Error);
  CHECK_THROWS_WITH_AS(parse_level("L4"), doctest::Contains("GPU-only"), Error);
  bad.group_size = 100;
  CHECK_THROWS_WITH_AS(Packer{bad}, doctest::Contains("multiple of 8"), Error);
}

TEST_CASE("actnn packer: a tensor saved at two bit widths is stored once, at the higher one") {
  // A block input is read by the shortcut's conv (which ActNN's allocation may give 1 bit) and by conv1 (2 bits):
  // one set of codes at the per-sample maximum serves both.
  Config cfg = Config::for_level(Level::L3);
  cfg.parse_module_bits("low=1,high=4");
  manual_seed(3);
  const Tensor x = randn({2, 512});  // two samples of two 256-element groups
  auto info = [](const char* module) {
    SaveInfo i;
    i.op = "conv2d";
    i.module = module;
    return i;
  };
  // Distinct values in each group of a restored tensor: at most 2^bits.
  auto max_levels = [](const Tensor& t) {
    const auto v = t.to_vector<float>();
    size_t most = 0;
    for (size_t g = 0; g < v.size(); g += 256) {
      std::vector<float> grp(v.begin() + static_cast<long>(g), v.begin() + static_cast<long>(g + 256));
      std::sort(grp.begin(), grp.end());
      most = std::max(most, static_cast<size_t>(std::unique(grp.begin(), grp.end()) - grp.begin()));
    }
    return most;
  };
  size_t one_copy_at_4 = 0;
  {
    Packer only(cfg);
    const auto h = only.hooks();
    const std::any a = h.pack(x, info("high"));
    one_copy_at_4 = only.live().codes + only.live().meta;
  }
  for (bool low_first : {true, false}) {
    CAPTURE(low_first);
    Packer packer(cfg);
    const auto h = packer.hooks();
    std::any first = h.pack(x, info(low_first ? "low" : "high"));
    std::any second = h.pack(x, info(low_first ? "high" : "low"));
    CHECK(packer.live().codes + packer.live().meta == one_copy_at_4);  // one copy, whichever came first
    const Tensor r1 = h.unpack(first), r2 = h.unpack(second);
    CHECK(r1.to_vector<float>() == r2.to_vector<float>());
    CHECK(max_levels(r1) > 2);  // the 1-bit save restores the 4-bit codes
    CHECK(max_levels(r1) <= 16);
    const std::string map = packer.bit_map();
    CHECK(map.find("codes (shared)") != std::string::npos);
    first.reset();
    CHECK(packer.live().total() > 0);  // the other save still holds the codes
    second.reset();
    CHECK(packer.live().total() == 0);
  }
  {  // a tensor written between the two saves is a different tensor: two copies
    Packer packer(cfg);
    const auto h = packer.hooks();
    Tensor y = x.clone();
    const std::any a = h.pack(y, info("low"));
    const size_t one = packer.live().total();
    y.add_(x);
    const std::any b = h.pack(y, info("low"));
    CHECK(packer.live().total() == 2 * one);
  }
}

TEST_CASE("SaveInfo labels: batch-norm statistics, ReLU outputs, quantizer masks and coefficients") {
  std::vector<std::pair<std::string, SaveKind>> seen;
  autograd::SavedTensorHooks h;
  h.pack = [&](const Tensor& t, const SaveInfo& info) -> std::any {
    seen.emplace_back(info.op, info.kind);
    return t;
  };
  h.unpack = [](const std::any& a) { return std::any_cast<Tensor>(a); };
  auto kinds_of = [&](const std::string& op) {
    std::vector<SaveKind> k;
    for (auto& [o, kind] : seen)
      if (o == op) k.push_back(kind);
    return k;
  };
  manual_seed(5);
  Tensor x = randn({4, 3, 5, 5}).set_requires_grad();
  Tensor gamma = ones({3}).set_requires_grad(), beta = zeros({3}).set_requires_grad();
  Tensor alpha = full({}, 2.0).set_requires_grad();
  {
    autograd::SavedTensorHooksGuard guard(h);
    batch_norm_relu(x, {}, {}, gamma, beta, true, 0.1, 1e-5);
    batch_norm(x, {}, {}, gamma, beta, true, 0.1, 1e-5);
    relu(x);
    quant::quantize_activation(x, alpha, quant::LevelSet::make(quant::Scheme::APoT, 4, false), quant::Semantics::APoT_I,
                               1.0);
    quant::pact(x, alpha, 4);
  }
  CHECK(kinds_of("batch_norm_relu") == std::vector<SaveKind>{SaveKind::Activation, SaveKind::Parameter,
                                                             SaveKind::Statistic, SaveKind::Statistic, SaveKind::Mask});
  CHECK(kinds_of("batch_norm") ==
        std::vector<SaveKind>{SaveKind::Activation, SaveKind::Parameter, SaveKind::Statistic, SaveKind::Statistic});
  CHECK(kinds_of("relu") == std::vector<SaveKind>{SaveKind::Mask});
  CHECK(kinds_of("quant_activation") == std::vector<SaveKind>{SaveKind::Mask, SaveKind::Coefficient});
  CHECK(kinds_of("quant_pact") == std::vector<SaveKind>{SaveKind::Mask, SaveKind::Coefficient});
}
