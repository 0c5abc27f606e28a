// ActNN's adaptive bits through the packer on a real model: the output-gradient probe leaves forward and
// gradients untouched, the first iteration is uniform, later iterations give more bits to the samples with the
// larger ranges, the per-layer allocation runs after each backward within the budget, --usegradient needs the
// loader's indices, and the Overall Var measurement orders 2-bit above 4-bit (and is exactly 0 with nothing
// compressed).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/models/resnet.h"
#include "quant/actnn/adaptive_bits.h"
#include "quant/actnn/gradient_variance.h"
#include "quant/actnn/packer.h"
#include "quant/actnn/probed_layers.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::quant::actnn;

namespace {

std::shared_ptr<nn::ResNet> probed_resnet(const std::shared_ptr<AdaptiveBits>& policy, uint64_t seed = 5) {
  manual_seed(seed);
  nn::ResNetConfig rc;
  if (policy) {
    rc.conv = probed_conv_factory(policy);
    rc.linear = probed_linear_factory(policy);
  }
  auto m = nn::resnet20(rc);
  m->train();
  return m;
}

// A probed ResNet-20 whose L3 packer runs the adaptive policy made from `o` (what the tests below train with).
struct L3Run {
  std::shared_ptr<AdaptiveBits> policy;
  std::shared_ptr<nn::ResNet> m;
  Packer packer{Config::for_level(Level::L3)};
  explicit L3Run(const AdaptiveOptions& o) : policy(std::make_shared<AdaptiveBits>(o)), m(probed_resnet(policy)) {
    packer.set_bit_policy(policy);
  }
};

// A batch whose first sample has 8x the range of the others.
Tensor skewed_batch(int64_t n) {
  Tensor x = randn({n, 3, 16, 16});
  auto v = x.to_vector<float>();
  const size_t per = v.size() / static_cast<size_t>(n);
  for (size_t i = 0; i < per; ++i) v[i] *= 8.0f;
  return from_vector(v, {n, 3, 16, 16});
}

Tensor labels(int64_t n) {
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = i % 10;
  return from_vector(y, {n}, TensorOptions().dtype(DType::i64));
}

std::vector<float> step(nn::Module& m, const Tensor& x, const Tensor& y, Packer* packer,
                        std::vector<float>* conv1_grad = nullptr) {
  m.zero_grad();
  std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
  if (packer) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer->hooks());
  Tensor logits = m(x);
  cross_entropy(logits, y).backward();
  if (conv1_grad)
    for (auto& [name, p] : m.named_parameters())
      if (name == "conv1.weight") *conv1_grad = p.grad().to_vector<float>();
  return logits.to_vector<float>();
}

}  // namespace

TEST_CASE("the output-gradient probe changes neither forward nor gradients") {
  auto policy = std::make_shared<AdaptiveBits>(AdaptiveOptions{});
  auto probed = probed_resnet(policy);
  auto plain = probed_resnet(nullptr);
  const Tensor x = randn({4, 3, 16, 16}), y = labels(4);
  std::vector<float> g1, g2;
  CHECK(step(*probed, x, y, nullptr, &g1) == step(*plain, x, y, nullptr, &g2));
  CHECK(!g1.empty());
  CHECK(g1 == g2);
  // Same parameter names as the plain model (checkpoints stay interchangeable).
  CHECK(probed->state_dict().size() == plain->state_dict().size());
  CHECK(probed->state_dict().at("layer2.0.downsample.0.weight").sizes() == Shape{32, 16, 1, 1});
}

TEST_CASE("per-sample bits: uniform in the first iteration, then more bits for the larger-range sample") {
  AdaptiveOptions o;
  o.bits = 2;
  o.ibits = 8;
  L3Run run(o);
  auto& [policy, m, packer] = run;
  const Tensor x = skewed_batch(8), y = labels(8);
  auto plain = probed_resnet(nullptr);
  // Forward stays exact with adaptive bits.
  CHECK(step(*m, x, y, &packer) == step(*plain, x, y, nullptr));
  CHECK(policy->last_sample_bits("conv1") == std::vector<uint8_t>(8, 2));  // S = 0: uniform
  step(*m, x, y, &packer);
  const auto b = policy->last_sample_bits("conv1");
  REQUIRE(b.size() == 8);
  int sum = 0;
  for (uint8_t v : b) sum += v;
  CHECK(sum <= 16);  // the budget: floor(2 bits x 8 samples)
  for (size_t i = 1; i < 8; ++i) CHECK(b[0] > b[i]);
  // Batch norms are allocated too (their C is R^2 alone, known from the first iteration).
  CHECK(policy->last_sample_bits("bn1").size() == 8);
  CHECK(policy->allocations() == 0);  // no --perlayer
  CHECK(policy->bit_map().find("layer3.2.conv2") != std::string::npos);
}

TEST_CASE("per-sample ranges are taken over the codec's groups: logical order, whatever the layout") {
  // Two batch-norm inputs (their sensitivity is the range term alone), 64 channels of 8x8. Sample 0 has one loud
  // channel, sample 1 all channels at x10. Over the codec's groups (runs of the logical order) only one group
  // of sample 0 holds the loud channel and sample 1 has the larger summed squared range; over memory-order
  // groups of a channels-last tensor (whole pixels of 64 channels) every group of sample 0 would hold it, and
  // sample 0 would get the bits instead.
  struct Case {
    int64_t group;
    float loud;
  };
  const autograd::SaveInfo info{autograd::SaveKind::Activation, "batch_norm", "bn", 0};
  // groups of 64: one channel plane each (read per tile); of 128: two planes (read through a transpose)
  for (const Case cs : {Case{64, 30.0f}, Case{128, 24.0f}}) {
    CAPTURE(cs.group);
    AdaptiveOptions o;
    o.bits = 4;
    o.ibits = 8;
    o.group_size = cs.group;
    const Shape s{2, 64, 8, 8};
    std::vector<float> v = randn(s).to_vector<float>();
    for (int64_t k = 0; k < 64; ++k) v[static_cast<size_t>(k)] *= cs.loud;     // sample 0, channel 0
    for (int64_t k = 4096; k < 8192; ++k) v[static_cast<size_t>(k)] *= 10.0f;  // sample 1, every channel
    const Tensor x = from_vector(v, s);
    Tensor xl = empty(s, TensorOptions(), MemoryFormat::ChannelsLast);
    xl.copy_(x);
    REQUIRE(!xl.is_contiguous());
    AdaptiveBits a(o), b(o);
    const std::vector<uint8_t> bits_contiguous = a.sample_bits(info, x, 4);
    const std::vector<uint8_t> bits_channels_last = b.sample_bits(info, xl, 4);
    CHECK(bits_channels_last == bits_contiguous);
    REQUIRE(bits_contiguous.size() == 2);
    CHECK(bits_contiguous[1] > bits_contiguous[0]);
  }
}

TEST_CASE("per-sample ranges of channels-last samples equal the contiguous ones for every group shape") {
  // Channels-last samples are read in segments of pixels between the cuts of every channel's plane: groups inside
  // one plane, groups of whole planes (a partial last group with its zero padding), and planes cut anywhere (the
  // Fashion-MNIST and ImageNet planes: 28 x 28, 14 x 14 and 7 x 7 pixels in groups of 256).
  // Values are positive, so a padding zero that went missing (or came in twice) moves a group's range by a lot;
  // in every other sample every other group sits 50 scales higher, so one element read into the wrong group moves
  // those samples' bits against the others'; and the 16 samples' scales spread the per-sample bits over 1..8.
  struct Case {
    Shape shape;
    int64_t group;
  };
  const autograd::SaveInfo info{autograd::SaveKind::Activation, "batch_norm", "bn", 0};
  const Case cases[] = {{{16, 3, 8, 8}, 128},  {{16, 64, 8, 8}, 256}, {{16, 5, 4, 4}, 64},     {{16, 20, 4, 4}, 64},
                        {{16, 6, 8, 8}, 64},   {{16, 3, 6, 6}, 64},   {{16, 16, 28, 28}, 256}, {{16, 32, 14, 14}, 256},
                        {{16, 64, 7, 7}, 256}, {{16, 19, 7, 7}, 256}, {{16, 5, 7, 7}, 100}};
  std::mt19937 rng(3);
  for (const Case& cs : cases) {
    CAPTURE(cs.group);
    CAPTURE(shape_str(cs.shape));
    AdaptiveOptions o;
    o.bits = 2;
    o.ibits = 8;
    o.group_size = cs.group;
    std::vector<float> v = randn(cs.shape).to_vector<float>();
    const int64_t f = static_cast<int64_t>(v.size()) / 16;
    for (int64_t s = 0; s < 16; ++s) {
      const float scale = std::exp(static_cast<float>(rng() % 1000) / 250.0f);
      for (int64_t i = s * f; i < (s + 1) * f; ++i) {
        const float step = s % 2 == 0 && ((i - s * f) / cs.group) % 2 == 1 ? 50.0f : 0.0f;
        v[static_cast<size_t>(i)] = 5.0f + scale * (std::abs(v[static_cast<size_t>(i)]) + step);
      }
    }
    v[7] = std::numeric_limits<float>::quiet_NaN();  // a NaN never wins a range
    const Tensor x = from_vector(v, cs.shape);
    Tensor xl = empty(cs.shape, TensorOptions(), MemoryFormat::ChannelsLast);
    xl.copy_(x);
    AdaptiveBits a(o), b(o);
    const std::vector<uint8_t> bits_contiguous = a.sample_bits(info, x, 2);
    CHECK(b.sample_bits(info, xl, 2) == bits_contiguous);
    CHECK(*std::max_element(bits_contiguous.begin(), bits_contiguous.end()) >
          *std::min_element(bits_contiguous.begin(), bits_contiguous.end()));
  }
}

TEST_CASE("per-layer allocation after each backward, within the budget") {
  AdaptiveOptions o;
  o.bits = 2;
  o.ibits = 8;
  o.per_layer = true;
  L3Run run(o);
  auto& [policy, m, packer] = run;
  const Tensor x = skewed_batch(4), y = labels(4);
  step(*m, x, y, &packer);
  CHECK(policy->allocations() == 1);
  step(*m, x, y, &packer);
  CHECK(policy->allocations() == 2);
  // Budgets moved away from the uniform 2 bits, and sum_l D_l bits_l stays within 2 bits per element.
  const std::vector<std::pair<std::string, double>> dims = {
      {"conv1", 3 * 16 * 16},         {"layer1.0.conv1", 16 * 16 * 16}, {"layer2.0.conv1", 16 * 16 * 16},
      {"layer3.0.conv1", 32 * 8 * 8}, {"layer3.2.conv2", 64 * 4 * 4},   {"fc", 64}};
  bool moved = false;
  for (const auto& [name, d] : dims) moved = moved || std::abs(policy->layer_budget(name) - 2.0) > 1e-9;
  CHECK(moved);
  // The batch norm after a conv copies its budget.
  CHECK(policy->layer_budget("layer1.0.bn1") == policy->layer_budget("layer1.0.conv1"));
}

TEST_CASE("per-layer budget: batch-norm codes count with the conv whose bits they copy, unless count_bn is off") {
  // ResNet-20's stem in small: a conv reading 3 channels whose batch norm stores 16, then a 16-channel conv and
  // its batch norm. The stem's output gradient is made 100x larger, so the allocation favours it; its input is
  // cheap in conv elements (3 x 64 per sample against 1024), so ActNN's weighting gives it many bits, and its
  // batch norm stores those bits over 16 channels.
  const int64_t n = 4;
  manual_seed(11);
  const Tensor x_stem = randn({n, 3, 8, 8}), y_stem = randn({n, 16, 8, 8}), x2 = randn({n, 16, 8, 8}),
               y2 = randn({n, 16, 8, 8});
  auto info = [](const char* module, const char* op) {
    autograd::SaveInfo i;
    i.module = module;
    i.op = op;
    return i;
  };
  auto stored_bits = [&](const AdaptiveBits& p) {  // code bits per sample over all four inputs, per element
    const double d_stem = 3 * 64, d_bn = 16 * 64, d2 = 16 * 64, d_bn2 = 16 * 64;
    return (p.layer_budget("stem") * d_stem + p.layer_budget("bn") * d_bn + p.layer_budget("conv2") * d2 +
            p.layer_budget("bn2") * d_bn2) /
           (d_stem + d_bn + d2 + d_bn2);
  };
  double average[2] = {};
  for (bool count_bn : {false, true}) {
    AdaptiveOptions o;
    o.bits = 2;
    o.ibits = 8;
    o.per_layer = true;
    o.count_bn = count_bn;
    AdaptiveBits p(o);
    p.set_auto_allocate(false);  // no backward pass runs here: allocate by hand below
    p.declare_conv("stem", 9, 1);
    p.declare_conv("conv2", 9, 1);
    for (int pass = 0; pass < 2; ++pass) {  // the second forward sees the gradient scales of the first backward
      p.sample_bits(info("stem", "conv2d"), x_stem, 2);
      p.sample_bits(info("bn", "batch_norm"), y_stem, 2);
      p.sample_bits(info("conv2", "conv2d"), x2, 2);
      p.sample_bits(info("bn2", "batch_norm"), y2, 2);
      p.record_output_grad("stem", y_stem * 100.0f);
      p.record_output_grad("conv2", y2);
    }
    REQUIRE(p.allocate_per_layer());
    CHECK(p.layer_budget("bn") == p.layer_budget("stem"));  // batch norms copy the budget either way
    CHECK(p.layer_budget("bn2") == p.layer_budget("conv2"));
    CHECK(p.layer_budget("stem") > p.layer_budget("conv2"));
    const double conv_only = (p.layer_budget("stem") * 3 * 64 + p.layer_budget("conv2") * 16 * 64) / (19.0 * 64);
    CHECK(conv_only <= 2.0 + 1e-9);  // both weightings keep the conv inputs within 2 bits
    average[count_bn ? 1 : 0] = stored_bits(p);
  }
  CHECK(average[0] > 2.2);          // ActNN's weighting: the batch norm's copy overshoots the 2-bit budget
  CHECK(average[1] <= 2.0 + 1e-9);  // counted: every code the allocation decides is within it
}

namespace {
// Identity whose backward fails: placed on the input, it throws after every probe of the pass has run.
struct FailingBackwardFn : autograd::Function<FailingBackwardFn> {
  static constexpr const char* kName = "failing_backward";
  static Tensor forward(autograd::Context&, const Tensor& x) { return x.detach(); }
  static std::vector<Tensor> backward(autograd::Context&, std::vector<Tensor>) {
    MINIDL_FAIL("failing_backward: this backward fails on purpose");
  }
};
}  // namespace

TEST_CASE("a failed backward pass does not stop the per-layer allocation") {
  // The pass drops its queued callbacks; the policy must queue a new one in the next pass (it once kept a
  // "queued" flag set forever, so a run recovering from an error, such as a memory-cap search, stopped adapting).
  AdaptiveOptions o;
  o.per_layer = true;
  L3Run run(o);
  auto& [policy, m, packer] = run;
  const Tensor x = skewed_batch(4), y = labels(4);
  step(*m, x, y, &packer);
  CHECK(policy->allocations() == 1);
  {
    autograd::SavedTensorHooksGuard guard(packer.hooks());
    Tensor xin = x.detach();
    xin.set_requires_grad(true);
    Tensor loss = cross_entropy((*m)(FailingBackwardFn::apply(xin)), y);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("fails on purpose"), Error);
  }
  CHECK(policy->allocations() == 1);  // the failed pass allocated nothing
  step(*m, x, y, &packer);
  CHECK(policy->allocations() == 2);
}

TEST_CASE("make_adaptive_bits: ActNN's L3 adapts (ibits 8, per-layer), other levels keep fixed bits") {
  const Config l3 = Config::for_level(Level::L3);
  CHECK(l3.bits == 2);
  CHECK(l3.ibits == 8);
  CHECK(l3.per_layer);
  auto p = make_adaptive_bits(l3, 100);
  REQUIRE(p != nullptr);
  CHECK(p->options().per_layer);
  CHECK(p->options().ibits == 8);
  CHECK(p->options().bits == 2);
  CHECK(p->options().dataset_size == 100);
  CHECK(l3.str().find("adaptive bits (ibits 8, perlayer)") != std::string::npos);
  CHECK(Config::for_level(Level::L2).str().find("fixed bits") != std::string::npos);
  CHECK(make_adaptive_bits(Config::for_level(Level::L2)) == nullptr);  // ActNN's L1 / L2 have no adaptive scheme
  CHECK(make_adaptive_bits(Config::for_level(Level::L0)) == nullptr);
  Config fixed = l3;
  fixed.ibits = 2;
  fixed.per_layer = false;
  CHECK(make_adaptive_bits(fixed) == nullptr);
  Config off = l3;
  off.compress = false;  // --ca=false behaves as L0
  CHECK(make_adaptive_bits(off) == nullptr);
  Config per_sample = l3;
  per_sample.per_layer = false;
  REQUIRE(make_adaptive_bits(per_sample) != nullptr);
  CHECK(!make_adaptive_bits(per_sample)->options().per_layer);
}

TEST_CASE("--usegradient needs the loader's sample indices") {
  AdaptiveOptions o;
  o.use_gradient = true;
  L3Run run(o);
  auto& [policy, m, packer] = run;
  const Tensor x = skewed_batch(4), y = labels(4);
  CHECK_THROWS_WITH_AS(step(*m, x, y, &packer), doctest::Contains("training set's size"), Error);
  policy->set_dataset_size(100);
  CHECK_THROWS_WITH_AS(step(*m, x, y, &packer), doctest::Contains("Batch::indices"), Error);
  policy->set_batch({10, 20, 30, 40});
  step(*m, x, y, &packer);
  step(*m, x, y, &packer);
  const auto b = policy->last_sample_bits("conv1");
  CHECK(b[0] > b[1]);
}

TEST_CASE("Overall Var: 0 with nothing compressed, 2-bit above 4-bit, per-group below one range per tensor") {
  auto measure = [](Config cfg, std::shared_ptr<AdaptiveBits> policy) {
    auto m = probed_resnet(policy, 11);
    manual_seed(12);
    std::vector<VarianceBatch> batches;
    for (int i = 0; i < 2; ++i)
      batches.push_back({skewed_batch(4), labels(4), {4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3}});
    Packer packer(cfg);
    if (policy) packer.set_bit_policy(policy);
    return measure_gradient_variance(*m, batches, packer.hooks(), policy);
  };
  const VarianceReport none = measure(Config::for_level(Level::L0), nullptr);
  CHECK(none.var == 0.0);
  CHECK(none.bias == 0.0);
  CHECK(none.sample_var > 0.0);
  const VarianceReport two = measure(Config::for_level(Level::L3), nullptr);
  const VarianceReport four = measure(Config::for_level(Level::L2), nullptr);
  Config tensor_range = Config::for_level(Level::L3);
  tensor_range.per_group = false;
  const VarianceReport global = measure(tensor_range, nullptr);
  CHECK(two.var > 0);
  CHECK(four.var < two.var);
  CHECK(two.var < global.var);
  CHECK(two.sample_var == doctest::Approx(none.sample_var).epsilon(1e-6));  // exact gradients either way
  CHECK(two.overall().rfind("Overall Bias = ", 0) == 0);
  CHECK(two.layers.size() == 1 + 18 + 2 + 1);  // every conv and the fc
}
