// Saved-tensor hooks: every tensor a backward needs goes through pack/unpack, with a SaveInfo describing it.
#include <doctest/doctest.h>

#include <map>

#include "autograd/ops.h"
#include "autograd/grad_mode.h"
#include "autograd/saved_tensor.h"
#include "tensor/generator.h"

using namespace minidl;
using autograd::SaveInfo;
using autograd::SaveKind;

TEST_CASE("a counting pack/unpack hook round-trips every saved tensor of a conv+bn+relu step") {
  manual_seed(3);
  const auto f32 = TensorOptions();  // float32: runs on whichever CPU backend is active
  Tensor x = randn({2, 3, 5, 5}, f32);
  Tensor w = randn({4, 3, 3, 3}, f32.requires_grad());
  Tensor gamma = ones({4}, f32.requires_grad());
  Tensor beta = zeros({4}, f32.requires_grad());
  Tensor rm = zeros({4}, f32), rv = ones({4}, f32);

  // Reference gradients without hooks.
  auto step = [&] {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor y = relu(batch_norm(conv2d(x, w, {}, p), rm, rv, gamma, beta, /*training=*/true));
    return (y * y).sum();
  };
  step().backward();
  const auto gw_ref = w.grad().to_vector<float>();
  w.set_grad({});
  gamma.set_grad({});
  beta.set_grad({});

  int packs = 0, unpacks = 0;
  std::map<SaveKind, int> kinds;
  std::map<std::string, int> ops;
  autograd::SavedTensorHooks hooks;
  hooks.pack = [&](const Tensor& t, const SaveInfo& info) -> std::any {
    ++packs;
    ++kinds[info.kind];
    ++ops[info.op];
    CHECK(info.node_seq > 0);
    // Store a deep copy, as a compressor would store codes: the original must not be needed again.
    NoGradGuard g;
    return t.clone();
  };
  hooks.unpack = [&](const std::any& payload) {
    ++unpacks;
    return std::any_cast<Tensor>(payload);
  };
  {
    autograd::SavedTensorHooksGuard guard(hooks);
    Tensor loss = step();
    CHECK(packs > 0);
    loss.backward();
  }
  CHECK(packs == unpacks);
  CHECK(kinds[SaveKind::Parameter] >= 2);   // conv weight, bn weight
  CHECK(kinds[SaveKind::Activation] >= 2);  // conv input, bn input
  CHECK(ops.count("conv2d") == 1);
  CHECK(ops.count("batch_norm") == 1);
  CHECK(ops.count("relu") == 1);
  const auto gw = w.grad().to_vector<float>();
  REQUIRE(gw.size() == gw_ref.size());
  for (size_t i = 0; i < gw.size(); ++i) CHECK(gw[i] == gw_ref[i]);  // the same computation on the same data: bit-identical
}

TEST_CASE("the innermost hook applies and guards pop in order") {
  int outer = 0, inner = 0;
  auto make = [](int& counter) {
    autograd::SavedTensorHooks h;
    h.pack = [&counter](const Tensor& t, const SaveInfo&) -> std::any {
      ++counter;
      return t;
    };
    h.unpack = [](const std::any& p) { return std::any_cast<Tensor>(p); };
    return h;
  };
  Tensor x = tensor({1.0, 2.0}, {}, TensorOptions().requires_grad());
  autograd::SavedTensorHooksGuard g1(make(outer));
  {
    autograd::SavedTensorHooksGuard g2(make(inner));
    Tensor y = x * x;
    CHECK(inner > 0);
    CHECK(outer == 0);
  }
  const int inner_before = inner;
  Tensor z = x * x;
  CHECK(outer > 0);
  CHECK(inner == inner_before);
}

TEST_CASE("SaveInfo names the running module") {
  std::string seen;
  autograd::SavedTensorHooks h;
  h.pack = [&](const Tensor& t, const SaveInfo& info) -> std::any {
    seen = info.module;
    return t;
  };
  h.unpack = [](const std::any& p) { return std::any_cast<Tensor>(p); };
  autograd::SavedTensorHooksGuard g(h);
  Tensor x = tensor({1.0}, {}, TensorOptions().requires_grad());
  {
    autograd::ModuleNameGuard m("layer1.0.conv1");
    Tensor y = x * x;
  }
  CHECK(seen == "layer1.0.conv1");
}
