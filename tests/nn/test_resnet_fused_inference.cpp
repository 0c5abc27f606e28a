// ResNet inference fusion (ResNetConfig::fuse_inference): in eval mode under NoGradGuard each conv + batch norm
// (+ shortcut add) (+ ReLU) runs as conv2d_bn_inference. These tests compare the fused forward against the
// separate ops on the same weights and trained-looking BN statistics, on the active backend and on ref, for
// both shortcut options and the ImageNet stem; and check the op's refusals.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/nn.h"
#include "ref_backend_guard.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::nn;

namespace {

// Non-trivial BN state: running statistics and affine parameters away from their initial 0/1 values, so a
// folding mistake (e.g. a missed eps or mean) shows.
void randomise_batch_norms(Module& net) {
  for (auto& [name, m] : net.named_modules()) {
    auto* bn = dynamic_cast<BatchNorm2d*>(m.get());
    if (!bn) continue;
    const int64_t c = bn->num_features;
    bn->running_mean.copy_(uniform({c}, -0.5, 0.5));
    bn->running_var.copy_(uniform({c}, 0.3, 2.0));
    bn->weight.detach().copy_(uniform({c}, 0.5, 1.5));
    bn->bias.detach().copy_(uniform({c}, -0.3, 0.3));
  }
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0, scale = 1e-12;
  for (size_t i = 0; i < va.size(); ++i) {
    m = std::max(m, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return m / scale;
}

// Logits of the same network fused and unfused.
std::pair<Tensor, Tensor> fused_and_plain(ResNetConfig cfg, bool cifar, const Tensor& x) {
  manual_seed(7);
  cfg.fuse_inference = true;
  auto fused = cifar ? resnet_cifar(cfg) : resnet18(cfg);
  randomise_batch_norms(*fused);
  cfg.fuse_inference = false;
  auto plain = cifar ? resnet_cifar(cfg) : resnet18(cfg);
  plain->load_state_dict(fused->state_dict());
  fused->eval();
  plain->eval();
  NoGradGuard no_grad;
  return {(*fused)(x), (*plain)(x)};
}

}  // namespace

TEST_CASE("fused eval forward equals the separate conv, batch norm, add and ReLU ops") {
  manual_seed(3);
  const Tensor x = randn({3, 3, 20, 20});
  for (const bool ref : {false, true}) {
    for (const Shortcut sc : {Shortcut::A, Shortcut::B}) {
      std::unique_ptr<RefBackendGuard> guard;
      if (ref) guard = std::make_unique<RefBackendGuard>();
      ResNetConfig cfg;
      cfg.depth = 8;
      cfg.shortcut = sc;
      auto [fused, plain] = fused_and_plain(cfg, true, x);
      INFO("backend ", cpu_backend_name(), ", shortcut ", sc == Shortcut::A ? "A" : "B");
      CHECK(max_rel_diff(fused, plain) < 1e-5);
    }
  }
}

TEST_CASE("fused eval forward of ResNet-18 (7x7 stem, max pool, projections)") {
  manual_seed(4);
  const Tensor x = randn({2, 3, 48, 40});
  auto [fused, plain] = fused_and_plain(imagenet_config(), false, x);
  CHECK(max_rel_diff(fused, plain) < 1e-5);
}

TEST_CASE("training mode or grad mode keeps the separate (differentiable) ops") {
  manual_seed(5);
  ResNetConfig cfg;
  cfg.depth = 8;
  auto net = resnet_cifar(cfg);
  net->eval();
  // grad mode on: the graph must exist, so the unfused ops ran
  Tensor out = (*net)(randn({2, 3, 8, 8}));
  CHECK(out.requires_grad());
  sum(out).backward();
  CHECK(net->named_parameters().front().second.grad().defined());
}

TEST_CASE("conv2d_bn_inference refuses inputs that require grad and mismatched statistics") {
  const Tensor x = randn({1, 2, 5, 5});
  Tensor w = randn({4, 2, 3, 3});
  const Tensor m = zeros({4}), v = ones({4});
  w.set_requires_grad(true);
  CHECK_THROWS_WITH(conv2d_bn_inference(x, w, {}, m, v, {}, {}, 1e-5, {}), doctest::Contains("inference only"));
  w.set_requires_grad(false);
  CHECK_THROWS_WITH(conv2d_bn_inference(x, w, {}, zeros({3}), v, {}, {}, 1e-5, {}),
                    doctest::Contains("running statistics must be (4)"));
  CHECK_THROWS_WITH(conv2d_bn_inference(x, w, {}, m, v, {}, {}, 1e-5, {}, zeros({1, 4, 2, 2})),
                    doctest::Contains("residual"));
}
